"""Augmentation cost: dltrain's tf.data pipeline against the old ImageDataGenerator.flow() path.

The cifar_cnn model on 10,000 CIFAR-shaped images (batch 32), the sides alternating round by
round in one process, each fitting 3 epochs per round (the first is dropped as warm-up):
dltrain's pipeline with horizontal flips (with the config's steps_per_execution, auto, and with
one step a call) and without augmentation, fed as `dltrain fit` feeds Keras; the flips inside
the compiled training step instead (model.augment.in_step, what JAX and torch runs do); and
Keras's legacy ImageDataGenerator(horizontal_flip=True).flow() as a hand-written script passes
it to fit. Two more rows time the data alone, one pass without a model: what augmentation
costs by itself.
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.backend import keras_module
from dltrain.config.dataset_section import AugmentationConfig
from dltrain.config.load import load_config
from dltrain.config.schema import Config
from dltrain.data.pipeline import pipeline
from dltrain.model.augment import in_step, make_augmenter
from dltrain.model.build import build_model

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "cifar_cnn.yaml"
IDG = "ImageDataGenerator.flow, flips"


def _data(count: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(count, 32, 32, 3)).astype(np.float32) / 255
    return x, (np.arange(count) % 10).astype(np.int64)


def _sides(x: np.ndarray, y: np.ndarray, batch: int) -> dict[str, tuple[Any, Any, int | None]]:
    """name -> (model, training data, steps per epoch); one model of the same net per side.

    dltrain's sides are compiled and fed as `dltrain fit` does it, with the config's
    steps_per_execution (auto); the ImageDataGenerator side as a hand-written script is, with
    Keras's default of one step a call, and so is one more dltrain side, to show auto's part."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    config = load_config(CONFIG).config
    one_step = config.model_copy(update={"training": config.training.model_copy(
        update={"steps_per_execution": 1})})
    flipping = config.model_copy(update={"augmentation": AugmentationConfig(horizontal_flip=True)})
    keras_module().utils.set_random_seed(0)
    flips = make_augmenter(AugmentationConfig(horizontal_flip=True), seed=0)

    def fed(chosen: Config, augmenter: Any = None) -> tuple[Any, int | None]:
        """As fit feeds it: endless with steps per epoch at one step a call (one iterator for
        the whole fit), else one pass per epoch (train.fit.fit_inputs)."""
        endless = chosen.steps_per_execution() == 1
        return (pipeline(x, y, batch, shuffle=True, augmenter=augmenter, repeat=endless),
                math.ceil(len(x) / batch) if endless else None)

    return {
        "dltrain pipeline, flips": (build_model(config), *fed(config, flips)),
        "dltrain pipeline, flips, steps_per_execution 1": (
            build_model(one_step), *fed(one_step, flips)),
        "dltrain pipeline, no augmentation": (build_model(config), *fed(config)),
        "dltrain, flips in the training step": (
            in_step(build_model(flipping), flipping, 1.0), *fed(flipping)),
        IDG: (build_model(one_step),
              ImageDataGenerator(horizontal_flip=True).flow(x, y, batch_size=batch, seed=0), None),
    }


class _EpochClock(keras_module().callbacks.Callback):  # type: ignore[misc]
    def on_train_begin(self, logs: Any = None) -> None:
        self.last, self.seconds = time.perf_counter(), []

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self.last)
        self.last = now


def _steady_epochs(model: Any, data: Any, steps: int | None, epochs: int = 3) -> list[float]:
    clock = _EpochClock()
    model.fit(data, epochs=epochs, steps_per_epoch=steps, verbose=0, callbacks=[clock])
    return clock.seconds[1:]


def _data_only(x: np.ndarray, y: np.ndarray, batch: int) -> list[tuple[str, float]]:
    """Seconds for one pass over the flipped data without a model, median of 3."""
    from keras.src.legacy.preprocessing.image import ImageDataGenerator

    flips = make_augmenter(AugmentationConfig(horizontal_flip=True), seed=0)
    data = pipeline(x, y, batch, shuffle=True, augmenter=flips)
    flow = ImageDataGenerator(horizontal_flip=True).flow(x, y, batch_size=batch, seed=0)

    def timed(read: Any) -> float:
        started = time.perf_counter()
        read()
        return time.perf_counter() - started

    sides = {"data alone: dltrain pipeline, flips": lambda: [None for _ in data],
             "data alone: ImageDataGenerator.flow, flips":
                 lambda: [flow[i] for i in range(len(flow))]}
    return [(name, statistics.median(timed(read) for _ in range(3))) for name, read in sides.items()]


def run(repeats: int = 3, count: int = 10_000, batch: int = 32) -> list[tuple[str, float, float]]:
    """Median seconds per epoch for each side, and its speed relative to ImageDataGenerator."""
    x, y = _data(count)
    sides = _sides(x, y, batch)
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, (model, data, steps) in sides.items():
            samples[name] += _steady_epochs(model, data, steps)
    medians = {name: statistics.median(values) for name, values in samples.items()}
    rows = [(name, seconds, medians[IDG] / seconds) for name, seconds in medians.items()]
    alone = _data_only(x, y, batch)
    return rows + [(name, seconds, alone[1][1] / seconds) for name, seconds in alone]
