"""The hand-written script against dltrain at one batch size, per steady epoch.

mnist_cnn on the full Fashion-MNIST (as bench/overhead.py: the same script, data and private
Keras cache), batch 32 (or --batch), rounds alternating the script and dltrain at each
`training.steps_per_execution` in --steps (default 1 and auto; auto is about 256 samples a call:
8 steps at batch 32, 4 at 64, 2 at 128); each round's epochs after the first are its steady ones.
--validation 0 takes the validation pass out of both sides (the script's validation_split and
dltrain's dataset.validation_split, both 0.1 otherwise), to price it. Prints the medians and each
side's time against the script's.

Usage: python bench/batch32.py [--rounds 2] [--epochs 3] [--batch 32] [--steps 1 auto 8]
                               [--validation 0.1]
"""

from __future__ import annotations

import argparse
import csv
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from overhead import ROOT, keras_home, script_epochs


def dltrain_epochs(env: dict[str, str], folder: Path, run: str, options: argparse.Namespace,
                   steps: str) -> list[float]:
    run_dir = folder / run
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit",
                    str(ROOT / "configs" / "mnist_cnn.yaml"), "--set", "dataset.name=fashion_mnist",
                    "--epochs", str(options.epochs), "--batch-size", str(options.batch),
                    "--set", f"training.steps_per_execution={steps}",
                    "--set", f"dataset.validation_split={options.validation}",
                    "--run-dir", str(run_dir)],
                   env=env, check=True, capture_output=True, cwd=folder, timeout=1800)
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", nargs="+", default=["1", "auto"])
    parser.add_argument("--validation", type=float, default=0.1)
    options = parser.parse_args()
    sides: dict[str, list[float]] = {"script": []}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = keras_home(folder)
        for round_ in range(options.rounds):
            sides["script"] += script_epochs(env, folder, options.epochs, options.batch,
                                             options.validation)[1:]
            for steps in options.steps:
                sides.setdefault(f"steps_per_execution {steps}", []).extend(dltrain_epochs(
                    env, folder, f"run{round_}-{steps}", options, steps)[1:])
    base = statistics.median(sides["script"])
    print(f"batch {options.batch}, validation_split {options.validation}")
    for name, seconds in sides.items():
        median = statistics.median(seconds)
        print(f"{name}: {median:.3f} s/epoch, {median / base:.3f}x the script's time")


if __name__ == "__main__":
    main()
