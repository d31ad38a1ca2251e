"""tf.data autotuning on and off: the same short fits of fashion_mnist_best's net, alternating.

Each round fits 30 steps (batch 128, random 28x28 images) once from an autotuned pipeline and
once from dltrain's (`runtime.pipeline`: autotuning off, fixed parallelism), each fit with a new
iterator as Keras makes one per `fit` call. Per fit: ms per step and the process's CPU time over
its wall time (2.0 is both cores busy). Tells whether an autotuned iterator starves the model.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.config.load import load_config
from dltrain.data.pipeline import pipeline
from dltrain.model.build import build_model

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "fashion_mnist_best.yaml"
ON = "tf.data autotuning on (tf.data's default)"
OFF = "dltrain pipeline (autotuning off)"
SLOW = 1.3  # a fit this much slower than the fastest of all counts as a slow one


def _autotuned(x: np.ndarray, y: np.ndarray, batch: int) -> Any:
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices((x, y)).batch(batch).repeat().prefetch(
        tf.data.AUTOTUNE)


def _timed_fit(model: Any, data: Any, steps: int) -> tuple[float, float]:
    cpu, wall = time.process_time(), time.perf_counter()
    model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
    wall = time.perf_counter() - wall
    return wall / steps * 1000, (time.process_time() - cpu) / wall


def run(rounds: int = 8, steps: int = 30, batch: int = 128) -> list[tuple[str, float, float]]:
    """Rows: median ms/step per side and its speed vs autotuning on, then slow fits and CPU use."""
    config = load_config(CONFIG).config
    rng = np.random.default_rng(0)
    x = rng.random((batch * steps, 28, 28, 1), dtype=np.float32)
    y = np.eye(10, dtype=np.float32)[rng.integers(0, 10, batch * steps)]
    sides = {ON: (build_model(config), lambda: _autotuned(x, y, batch)),
             OFF: (build_model(config), lambda: pipeline(x, y, batch, repeat=True))}
    for model, data in sides.values():
        model.fit(data(), steps_per_epoch=5, epochs=1, verbose=0)  # tracing, not timed
    fits: dict[str, list[tuple[float, float]]] = {name: [] for name in sides}
    for _ in range(rounds):
        for name, (model, data) in sides.items():
            fits[name].append(_timed_fit(model, data(), steps))
    fastest = min(ms for samples in fits.values() for ms, _ in samples)
    medians = {name: statistics.median(ms for ms, _ in samples) for name, samples in fits.items()}
    rows = [(name, medians[name], medians[ON] / medians[name]) for name in sides]
    for name, samples in fits.items():
        for label, is_slow in (("slow", True), ("fast", False)):
            group = [(ms, use) for ms, use in samples if (ms > SLOW * fastest) == is_slow]
            if group:
                ms = statistics.median(ms for ms, _ in group)
                rows.append((f"{name}: {len(group)} of {len(samples)} fits {label}, "
                             f"CPU/wall {statistics.median(use for _, use in group):.2f}",
                             ms, medians[ON] / ms))
    return rows


if __name__ == "__main__":
    for row in run():
        print(f"{row[0]}: {row[1]:.0f} ms/step, {row[2]:.2f}x")
