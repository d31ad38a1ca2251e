"""Augmentation cost: dltrain's tf.data pipeline vs the old ImageDataGenerator.flow() path.

One epoch of the cifar_cnn model on CIFAR-shaped data, three ways, alternating in one process:
dltrain's pipeline with horizontal flips, the same pipeline without augmentation, and Keras's
legacy ImageDataGenerator(horizontal_flip=True).flow(). Each side is warmed up (graph tracing)
before its timed epochs.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.augment import make_augmenter
from dltrain.build import build_model, keras_module
from dltrain.config import load_config
from dltrain.schema import AugmentationConfig
from dltrain.train import pipeline

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cifar_cnn.yaml"


def _data(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(count, 32, 32, 3)).astype(np.float32) / 255
    return x, (np.arange(count) % 10).astype(np.int64)


def _sides(x: np.ndarray, y: np.ndarray, batch: int) -> dict[str, tuple[Any, Any]]:
    """name -> (model, training data); each side gets its own model of the same architecture."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    config = load_config(CONFIG).config
    keras_module().utils.set_random_seed(0)
    flips = make_augmenter(AugmentationConfig(horizontal_flip=True), seed=0)
    return {
        "dltrain pipeline, flips": (build_model(config),
                                    pipeline(x, y, batch, shuffle=True, augmenter=flips)),
        "dltrain pipeline, no augmentation": (build_model(config),
                                              pipeline(x, y, batch, shuffle=True)),
        "ImageDataGenerator.flow, flips": (
            build_model(config),
            ImageDataGenerator(horizontal_flip=True).flow(x, y, batch_size=batch, seed=0)),
    }


def _epoch(model: Any, data: Any) -> float:
    started = time.perf_counter()
    model.fit(data, epochs=1, verbose=0)
    return time.perf_counter() - started


def run(repeats: int = 3, count: int = 10_000, batch: int = 32) -> list[tuple[str, float, float]]:
    """Median seconds per epoch for each side, and its speed relative to ImageDataGenerator."""
    x, y = _data(count)
    sides = _sides(x, y, batch)
    for model, data in sides.values():
        _epoch(model, data)  # warm-up: tracing and the first pass over the data
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, (model, data) in sides.items():
            samples[name].append(_epoch(model, data))
    medians = {name: statistics.median(values) for name, values in samples.items()}
    baseline = medians["ImageDataGenerator.flow, flips"]
    return [(name, seconds, baseline / seconds) for name, seconds in medians.items()]
