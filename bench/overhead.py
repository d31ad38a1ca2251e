"""Overhead: `dltrain fit configs/mnist_cnn.yaml` against the hand-written Keras script.

Both on the full real Fashion-MNIST (Debian's dataset-fashion-mnist, put into a private Keras
cache so `keras.datasets.fashion_mnist.load_data()` and dltrain read the same files offline),
batch 128 and 32 (the classic examples' default), validation_split 0.1, default threads, as
separate processes alternating round by round. An epoch's time runs from the previous epoch's
end (or the start of training) to its own end, so it includes everything dltrain does per
epoch: validation, history, checkpoints, TensorBoard. The first epoch (graph tracing) is
reported apart from the steady state.

Usage: python bench/overhead.py [--quick]   (--quick: 1 round of 2 epochs per batch size)
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
SCRIPT = "hand-written script (NumPy arrays, verbose=0)"
TOOL = "dltrain fit"


def keras_home(folder: Path) -> dict[str, str]:
    """An environment whose Keras cache holds the Debian Fashion-MNIST files."""
    cache = folder / "keras" / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    for file in DEBIAN.glob("*.gz"):
        (cache / file.name).symlink_to(file)
    return {**os.environ, "KERAS_HOME": str(folder / "keras"), "CI": "1"}


def script_epochs(env: dict[str, str], folder: Path, epochs: int, batch: int = 128,
                  validation: float = 0.1) -> list[float]:
    out = folder / "script.json"
    subprocess.run([sys.executable, str(ROOT / "bench" / "classic_script.py"), "fashion_mnist",
                    str(epochs), str(out), str(batch), str(validation)], env=env, check=True,
                   capture_output=True)
    return json.loads(out.read_text())


def dltrain_epochs(env: dict[str, str], folder: Path, epochs: int, run: int,
                   batch: int = 128) -> list[float]:
    run_dir = folder / f"run{run}-{batch}"
    subprocess.run([str(Path(sys.executable).parent / "dltrain"), "fit",
                    str(ROOT / "configs" / "mnist_cnn.yaml"), "--set", "dataset.name=fashion_mnist",
                    "--epochs", str(epochs), "--batch-size", str(batch), "--run-dir", str(run_dir)],
                   env=env, check=True, capture_output=True, cwd=folder)
    with open(run_dir / "history.csv", encoding="utf-8") as file:
        return [float(row["seconds"]) for row in csv.DictReader(file)]


def run(repeats: int = 3, epochs: int = 4, batch: int = 128) -> list[tuple[str, float, float]]:
    """Median first-epoch and steady-state seconds per epoch of each side, and the ratio."""
    if not DEBIAN.is_dir():
        raise SystemExit(f"needs {DEBIAN}: apt-get install dataset-fashion-mnist")
    samples: dict[str, list[list[float]]] = {SCRIPT: [], TOOL: []}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        env = keras_home(folder)
        for index in range(repeats):
            samples[SCRIPT].append(script_epochs(env, folder, epochs, batch))
            samples[TOOL].append(dltrain_epochs(env, folder, epochs, index, batch))
    first = {name: statistics.median(r[0] for r in runs) for name, runs in samples.items()}
    steady = {name: statistics.median(s for r in runs for s in r[1:])
              for name, runs in samples.items()}
    rows = []
    for label, medians in (("first epoch", first), ("steady state", steady)):
        rows += [(f"{name}, batch {batch}, {label}", seconds, medians[SCRIPT] / seconds)
                 for name, seconds in medians.items()]
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for batch in (128, 32):
        for name, seconds, ratio in run(1, 2, batch) if quick else run(3, 4, batch):
            print(f"{name:60s} {seconds:7.2f} s  {ratio:.2f}x")
