"""Batch 32 against the hand-written script: dltrain with steps_per_execution 1 and auto.

mnist_cnn on the full Fashion-MNIST (as bench/overhead.py: the same script, data and private
Keras cache), batch 32 (or --batch), rounds alternating the script and both dltrain
settings (auto, the default, is 8 steps a call at batch 32); each round's epochs after the first are its
steady ones. Prints the medians and each side's time against
the script's.

Usage: python bench/batch32.py [--rounds 2] [--epochs 3] [--batch 32]
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


def dltrain_epochs(env: dict[str, str], folder: Path, run: str, epochs: int,
                   steps: str, batch: int) -> list[float]:
    run_dir = folder / run
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit",
                    str(ROOT / "configs" / "mnist_cnn.yaml"), "--set", "dataset.name=fashion_mnist",
                    "--epochs", str(epochs), "--batch-size", str(batch), "--set",
                    f"training.steps_per_execution={steps}", "--run-dir", str(run_dir)],
                   env=env, check=True, capture_output=True, cwd=folder, timeout=1800)
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch", type=int, default=32)
    options = parser.parse_args()
    sides: dict[str, list[float]] = {"script": [], "steps_per_execution 1": [],
                                     "steps_per_execution auto": []}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        env = keras_home(folder)
        for round_ in range(options.rounds):
            sides["script"] += script_epochs(env, folder, options.epochs, options.batch)[1:]
            for steps in ("1", "auto"):
                sides[f"steps_per_execution {steps}"] += dltrain_epochs(
                    env, folder, f"run{round_}-{steps}", options.epochs, steps, options.batch)[1:]
    base = statistics.median(sides["script"])
    for name, seconds in sides.items():
        median = statistics.median(seconds)
        print(f"{name}: {median:.3f} s/epoch, {median / base:.3f}x the script's time")


if __name__ == "__main__":
    main()
