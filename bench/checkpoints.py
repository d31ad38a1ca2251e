"""How long the training loop waits at each epoch's end for last.keras: in place vs background.

The checkpoint callback's own time at an epoch's end is what the accelerator idles for: the next
epoch starts after it. Side by side in one process, alternating, on fashion_mnist_gpu's model
(1.7 M parameters, AdamW state: a 20 MB .keras file) after one training step per epoch.

Usage: KERAS_BACKEND=jax python bench/checkpoints.py [--epochs 12]; `python bench/run.py --only
checkpoints` runs it on JAX and adds its table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from dltrain.backend import keras_module  # noqa: E402
from dltrain.config.load import load_config  # noqa: E402
from dltrain.model.build import build_model  # noqa: E402
from dltrain.train.checkpoints import LastCheckpoint  # noqa: E402
from dltrain.train.events import EpochEnded  # noqa: E402


def waits(background: bool, epochs: int, folder: Path) -> list[float]:
    """Seconds epoch_ended kept the loop, per epoch after the first (which saves in place)."""
    config = load_config(ROOT / "configs" / "fashion_mnist_gpu.yaml").config
    model = build_model(config)
    rng = np.random.default_rng(0)
    x = rng.random((64, 28, 28, 1), dtype=np.float32)
    y = keras_module().utils.to_categorical(rng.integers(0, 10, 64), 10)
    last = LastCheckpoint(folder, lambda epoch: None, background=background)
    seconds = []
    for epoch in range(epochs):
        model.fit(x, y, batch_size=64, epochs=1, verbose=0)
        started = time.perf_counter()
        last.epoch_ended(EpochEnded(epoch + 1, {"loss": 1.0}, 0.0, model))
        seconds.append(time.perf_counter() - started)
    last.close()
    return seconds[1:]


def measure(epochs: int) -> dict[str, float]:
    results: dict[bool, list[float]] = {False: [], True: []}
    with tempfile.TemporaryDirectory() as scratch:
        for round_ in range(2):
            for background in (False, True):
                folder = Path(scratch) / f"{background}-{round_}"
                folder.mkdir()
                results[background] += waits(background, epochs, folder)
    return {"in_place_ms": statistics.median(results[False]) * 1000,
            "background_ms": statistics.median(results[True]) * 1000}


def run(epochs: int = 12) -> list[tuple[str, float, float]]:
    """bench/run.py's rows: this script on JAX in its own process."""
    done = subprocess.run([sys.executable, __file__, "--epochs", str(epochs), "--json"],
                          env={**os.environ, "KERAS_BACKEND": "jax"}, capture_output=True,
                          text=True, check=True, timeout=900)
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return [("last.keras saved in place", found["in_place_ms"], 1.0),
            ("last.keras written in the background", found["background_ms"],
             found["in_place_ms"] / found["background_ms"])]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--json", action="store_true")
    options = parser.parse_args()
    found = measure(options.epochs)
    if options.json:
        print(json.dumps(found))
        return
    print(f"{keras_module().backend.backend()}: the loop waits at each epoch's end for "
          f"last.keras: in place {found['in_place_ms']:.1f} ms, background "
          f"{found['background_ms']:.1f} ms: {found['in_place_ms'] / found['background_ms']:.1f}x"
          f" less")


if __name__ == "__main__":
    main()
