"""ImageDataGenerator's augmentation vocabulary, implemented with Keras preprocessing layers.

| ImageDataGenerator          | Keras 3 layer                                   | difference            |
|-----------------------------|-------------------------------------------------|-----------------------|
| horizontal_flip             | RandomFlip("horizontal")                        | none                  |
| vertical_flip               | RandomFlip("vertical")                          | none                  |
| rotation_range: d (degrees) | RandomRotation(d / 360)                         | none (uniform ±d)     |
| width/height_shift_range: f | RandomTranslation(f_h, f_w)                     | fractions only        |
| zoom_range: z or [lo, hi]   | RandomZoom(lo - 1 .. hi - 1, both axes)         | same scale semantics  |
| fill_mode, cval             | fill_mode, fill_value of the layers above       | none                  |
| brightness_range: [lo, hi]  | multiply by U(lo, hi) per image, clip to range  | none (backend op)     |

Keras 3's RandAugment, RandomErasing, MixUp and CutMix follow them (model.augment_mix).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dltrain.backend import (
    brightness_seed,
    keras_module,
    let_augmentation_compile,
    random_brightness,
)
from dltrain.config.dataset_section import AugmentationConfig
from dltrain.config.schema import Config
from dltrain.model.augment_mix import LabelMixes, draw, extra_layers, mix_labels, mixes_labels
from dltrain.model.compile import compiled_metrics, make_loss


def augmentation_layers(cfg: AugmentationConfig, seed: int) -> list[Any]:
    """The preprocessing layers for the training split, in ImageDataGenerator's order."""
    layers = keras_module().layers
    fill = {"fill_mode": cfg.fill_mode, "fill_value": cfg.cval, "seed": seed}
    out: list[Any] = []
    if cfg.rotation_range:
        out.append(layers.RandomRotation(cfg.rotation_range / 360, **fill))
    if cfg.width_shift_range or cfg.height_shift_range:
        out.append(layers.RandomTranslation(cfg.height_shift_range, cfg.width_shift_range, **fill))
    if cfg.zoom_range:
        low, high = _zoom_bounds(cfg.zoom_range)
        # ImageDataGenerator's zoom scales the sampling grid, as RandomZoom's factor + 1 does.
        out.append(layers.RandomZoom((low - 1, high - 1), (low - 1, high - 1), **fill))
    flip = {(True, False): "horizontal", (False, True): "vertical",
            (True, True): "horizontal_and_vertical"}.get((cfg.horizontal_flip, cfg.vertical_flip))
    if flip:
        out.append(layers.RandomFlip(flip, seed=seed))
    return out


def _zoom_bounds(zoom: float | tuple[float, float]) -> tuple[float, float]:
    if isinstance(zoom, (int, float)):
        return 1 - zoom, 1 + zoom
    return zoom


def make_augmenter(cfg: AugmentationConfig, seed: int,
                   value_max: float = 1.0) -> Callable[..., Any] | None:
    """A function from a batch of images to an augmented batch; None when nothing is asked.

    Given the batch's `step` too (its number in the whole run, a tensor), each draw is a pure
    function of (seed, step), so an epoch's draws are the same whenever it is trained (a
    resumed run's too, and in tf.data's parallel map); without, the layers' own seed state.
    Given the batch's `labels` too, it returns (images, labels), the labels mixed as MixUp and
    CutMix mixed the images.
    """
    layers = augmentation_layers(cfg, seed)
    extra = extra_layers(cfg, seed, value_max)
    if not layers and not extra and cfg.brightness_range is None:
        return None
    brightness = brightness_seed(seed)

    def augment(images: Any, step: Any = None, labels: Any = None) -> Any:
        for part, layer in enumerate(layers):
            if step is None:
                images = layer(images, training=True)
            else:
                images = draw(layer, images, StepSeed(seed, part, step))[0]
        if cfg.brightness_range is not None:
            images = scale_brightness(images, cfg.brightness_range, value_max,
                                      brightness if step is None
                                      else StepSeed(seed, len(layers), step))
        mixes = []
        for part, layer in enumerate(extra, start=len(layers) + 1):
            images, drawn = draw(layer, images, None if step is None
                                 else StepSeed(seed, part, step))
            mixes += [(layer, drawn)] if mixes_labels(layer) else []
        return images if labels is None else (images, mix_labels(labels, mixes))

    return augment


class StepSeed(keras_module().random.SeedGenerator):  # type: ignore[misc,name-defined]
    """Seeds for one batch's draws, a function of the run's seed, the drawing part and the
    batch's step: Keras's random layers take a SeedGenerator, whose state is a variable that
    tf.data's map may not advance in order (and a resumed run would restart). Each `next`
    gives the next seed of the batch, as a generator would."""

    def __init__(self, seed: int, part: int, step: Any) -> None:  # no state variable
        self.base, self.step, self.draws = seed * 1009 + part * 64, step, 0

    def next(self, ordered: bool = True) -> Any:
        ops = keras_module().ops
        self.draws += 1
        first = ops.convert_to_tensor(self.base + self.draws, dtype="int64")
        return ops.stack([first, ops.cast(self.step, "int64")])


def epoch_seed(seed: int, epoch: int, part: int) -> int:
    """The seed of one part's draws in one epoch, the same whenever the epoch is trained."""
    return int(np.random.default_rng([seed, epoch, part]).integers(2**31))


class ReseedAugmentation(keras_module().callbacks.Callback):  # type: ignore[misc,name-defined]
    """At each epoch's start, the augmentation's seed state in the training step (in_step's)
    from (seed, epoch): it was the state the previous epoch left, which a resumed run, whose
    checkpoint holds the model without its augmentation, restarted from the seed."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.seed = seed

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        generators = [generator for layer in getattr(self.model, "augmentation", [])
                      for generator in layer._seed_generators]
        brightness = getattr(self.model, "brightness", None)  # TensorFlow's is an op seed
        if isinstance(brightness, keras_module().random.SeedGenerator):
            generators.append(brightness)
        for part, generator in enumerate(generators):
            state = generator.state
            state.assign(np.array([epoch_seed(self.seed, epoch, part), 0], dtype=state.dtype))


def scale_brightness(images: Any, bounds: tuple[float, float], value_max: float, seed: Any) -> Any:
    """ImageDataGenerator's brightness_range: each image times one factor, kept in range."""
    return random_brightness(images, bounds, value_max, seed)


def in_step(model: Any, config: Config, value_max: float) -> Any:
    """The model to train when augmentation runs inside the compiled training step (JAX, torch).

    A Keras model around `model` that augments its inputs in training calls and is `model`
    otherwise; compiled with `model`'s own optimizer, so the weights and the optimizer state
    that are trained are the ones saved (`.saved`: what checkpoints write, without the
    augmentation). On a GPU the draws then run in the step instead of eagerly per batch from
    the host (BENCHMARKS.md, GPU). `model` itself when nothing is to be augmented.
    """
    cfg = config.augmentation
    layers = augmentation_layers(cfg, config.seed)
    extra = extra_layers(cfg, config.seed, value_max)
    if not layers and not extra and cfg.brightness_range is None:
        return model
    let_augmentation_compile([*layers, *extra])  # before compile resolves jit_compile: auto
    keras = keras_module()

    class Augmented(keras.Model):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__(name=f"{model.name}_augmented")
            self.saved = model
            self.augmentation = [*layers, *extra]  # attributes: Keras tracks their seed state
            self.brightness = (None if cfg.brightness_range is None
                               else brightness_seed(config.seed))
            self.label_mixes = LabelMixes()

        def build(self, input_shape: Any) -> None:
            for layer in self.augmentation:
                layer.build(input_shape)

        def call(self, images: Any, training: bool = False) -> Any:
            if training:
                for layer in self.augmentation[:len(layers)]:
                    images = layer(images, training=True)
                if cfg.brightness_range is not None:
                    images = scale_brightness(images, cfg.brightness_range, value_max,
                                              self.brightness)
                self.label_mixes.mixes = []  # this batch's alone
                for layer in self.augmentation[len(layers):]:
                    images, drawn = draw(layer, images)
                    if mixes_labels(layer):
                        self.label_mixes.mixes.append((layer, drawn))
            return self.saved(images, training=training)

        def compute_loss(self, x: Any = None, y: Any = None, y_pred: Any = None,
                         sample_weight: Any = None, training: bool = True) -> Any:
            # The labels of the images the call mixed, mixed alike (augment_mix).
            return super().compute_loss(x, mix_labels(y, self.label_mixes.take()), y_pred,
                                        sample_weight, training)

    trainer = Augmented()
    training = config.training
    trainer.compile(optimizer=model.optimizer, loss=make_loss(config.loss),
                    metrics=compiled_metrics(config),
                    steps_per_execution=config.steps_per_execution(),
                    jit_compile=training.jit_compile)
    return trainer


def saved_model(model: Any) -> Any:
    """What a checkpoint writes of the model being trained: never the augmentation around it."""
    return getattr(model, "saved", model)
