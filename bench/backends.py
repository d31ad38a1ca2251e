"""Backends side by side: steady epoch time of `dltrain fit` on TensorFlow and on JAX.

configs/mnist_cnn.yaml and configs/fashion_mnist_best.yaml on the real Fashion-MNIST (Debian's
dataset-fashion-mnist, as bench/overhead.py reads it), each backend a separate process, the
backends alternating round by round. The first epoch (tracing and XLA compilation) is reported
apart from the steady state; JAX's compilation cache is off, so every round compiles afresh.

Usage: python bench/backends.py [--quick]   (--quick: 6,000 training images, 1 round, 2 epochs)
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

from overhead import DEBIAN, ROOT, keras_home

CONFIGS = ("mnist_cnn", "fashion_mnist_best")
BACKENDS = ("tensorflow", "jax")


def epochs_of(env: dict[str, str], folder: Path, config: str, backend: str, epochs: int,
              extra: list[str], run: str) -> list[float]:
    run_dir = folder / run
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit",
                    str(ROOT / "configs" / f"{config}.yaml"), "--set", "dataset.name=fashion_mnist",
                    "--backend", backend, "--epochs", str(epochs), "--run-dir", str(run_dir),
                    *extra], env={**env, "DLTRAIN_JAX_CACHE": "0"}, check=True,
                   capture_output=True, cwd=folder, timeout=3600)
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file)]


def run(repeats: int = 2, epochs: int = 3, quick: bool = False) -> list[tuple[str, float, float]]:
    """(config and backend and which epochs, median seconds, TensorFlow's seconds / these)."""
    if not DEBIAN.is_dir():
        raise SystemExit(f"needs {DEBIAN}: apt-get install dataset-fashion-mnist")
    backends = [name for name in BACKENDS if importlib.util.find_spec(name) is not None]
    extra = ["--set", "dataset.train_limit=6000", "--set", "dataset.test_limit=1000"] if quick else []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = keras_home(folder)
        for config in CONFIGS:
            samples: dict[str, list[list[float]]] = {name: [] for name in backends}
            for index in range(repeats):
                for backend in backends:
                    samples[backend].append(epochs_of(env, folder, config, backend, epochs, extra,
                                                      f"{config}-{backend}-{index}"))
            for label, pick in (("first epoch", lambda r: r[:1]), ("steady state", lambda r: r[1:])):
                medians = {name: statistics.median(s for r in runs for s in pick(r))
                           for name, runs in samples.items()}
                rows += [(f"{config} on {name}, {label}", seconds, medians["tensorflow"] / seconds)
                         for name, seconds in medians.items()]
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    for name, seconds, ratio in (run(1, 2, quick=True) if args.quick else run()):
        print(f"{name:60s} {seconds:7.2f} s  {ratio:.2f}x")
