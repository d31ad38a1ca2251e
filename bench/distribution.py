"""What data_parallel costs, and (on a machine with several devices) what it gains.

Steady-state epoch time of `dltrain fit` with distribution.strategy none against data_parallel
over 1, 2, ... devices, on TensorFlow and JAX side by side, each fit its own process and the
sides alternating round by round so that drift in the machine hits them alike. The first
epoch (tracing, compiling) is left out; JAX's compilation cache is off.

Usage: python bench/distribution.py [--devices 1 2 4 8] [--repeats 3] [--epochs 5]
           [--config configs/quickstart.yaml] [--backends tensorflow jax] [--set KEY=VALUE ...]
The default (--devices 1) is the cost of data_parallel on one device against none (target:
within 3%). On N GPUs, --devices 1 2 ... N gives the scaling; training.batch_size is the
global batch, so pass --set training.batch_size=... large enough to keep N devices busy.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def steady_epochs(folder: Path, backend: str, sides: list[str], extra: list[str],
                  epochs: int) -> list[float]:
    run_dir = folder / f"run-{len(list(folder.iterdir()))}"
    subprocess.run([sys.executable, "-c", "import sys; from dltrain.cli import main; "
                    "sys.exit(main())", "fit", *extra, "--backend", backend, "--epochs",
                    str(epochs), "--run-dir", str(run_dir), "--set", "training.tensorboard=false",
                    *sides], check=True, capture_output=True, cwd=folder, timeout=3600,
                   env={**_environ(), "DLTRAIN_JAX_CACHE": "0", "CI": "1"})
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file)][1:]


def _environ() -> dict[str, str]:
    import os

    return {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}


def sides_of(devices: list[int]) -> dict[str, list[str]]:
    sides = {"none": ["--set", "distribution.strategy=none"]}
    for count in devices:
        sides[f"data_parallel x{count}"] = ["--set", "distribution.strategy=data_parallel",
                                            "--set", f"distribution.devices={count}"]
    return sides


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, nargs="+", default=[1])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--config", default=str(ROOT / "configs" / "quickstart.yaml"))
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"])
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args()
    backends = [name for name in args.backends if importlib.util.find_spec(name) is not None]
    extra = [str(Path(args.config).resolve())]
    for override in args.overrides:
        extra += ["--set", override]
    sides = sides_of(args.devices)
    samples = {(backend, side): [] for backend in backends for side in sides}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            for backend in backends:
                for side, options in sides.items():
                    samples[backend, side] += steady_epochs(Path(tmp), backend, options, extra,
                                                            args.epochs)
    print(f"{'backend':12s} {'side':22s} {'median epoch s':>15s} {'vs none':>9s}")
    for backend in backends:
        none = statistics.median(samples[backend, "none"])
        for side in sides:
            seconds = statistics.median(samples[backend, side])
            print(f"{backend:12s} {side:22s} {seconds:15.3f} {seconds / none:8.3f}x")


if __name__ == "__main__":
    main()
