"""Keras 3's own augmentation layers beyond ImageDataGenerator's vocabulary: RandAugment,
RandomErasing (cutout), and MixUp and CutMix, which mix each image with another of its batch
and the labels with it.

| config key                 | Keras 3 layer                                 | labels        |
|----------------------------|-----------------------------------------------|---------------|
| rand_augment: n            | RandAugment(num_ops=n, factor=rand_augment_factor) | unchanged |
| random_erasing: p          | RandomErasing(factor=p), noise in the range   | unchanged     |
| mixup: alpha               | MixUp(alpha)                                  | mixed, one-hot |
| cutmix: f                  | CutMix(factor=f)                              | mixed, one-hot |

They run after the ImageDataGenerator ones, in this order. MixUp and CutMix need one-hot
labels (the config refuses them with a sparse loss): each layer draws one transformation per
batch, applied to the images and to the labels alike. In the training step (JAX, torch) the
model's call draws it and its loss mixes the labels (`LabelMixes`); in tf.data's map
(TensorFlow) the augmenter mixes both. The training metrics compare the predictions with the
unmixed labels.
"""

from __future__ import annotations

from typing import Any

from dltrain.backend import keras_module
from dltrain.config.dataset_section import AugmentationConfig

MIXING_LAYERS = ("MixUp", "CutMix")


def extra_layers(cfg: AugmentationConfig, seed: int, value_max: float) -> list[Any]:
    """The Keras 3 layers the section asks for, in the order they run."""
    layers = keras_module().layers
    value_range = (0.0, value_max)
    out: list[Any] = []
    if cfg.rand_augment:
        out.append(layers.RandAugment(value_range=value_range, num_ops=cfg.rand_augment,
                                      factor=cfg.rand_augment_factor, seed=seed))
    if cfg.random_erasing:
        out.append(layers.RandomErasing(factor=cfg.random_erasing, value_range=value_range,
                                        seed=seed))
    if cfg.mixup:
        out.append(layers.MixUp(alpha=cfg.mixup, seed=seed))
    if cfg.cutmix:
        out.append(layers.CutMix(factor=cfg.cutmix, seed=seed))
    return out


def mixes_labels(layer: Any) -> bool:
    return type(layer).__name__ in MIXING_LAYERS


def draw(layer: Any, images: Any, seed: Any = None) -> tuple[Any, Any]:
    """The layer's transformation of this batch, drawn from `seed` (a SeedGenerator; None: the
    layer's own), and the images it gives."""
    drawn = layer.get_random_transformation(images, training=True, seed=seed)
    return layer.transform_images(images, drawn, training=True), drawn


def mix_labels(labels: Any, mixes: list[tuple[Any, Any]]) -> Any:
    """The labels mixed as the images were: each (layer, transformation) in turn."""
    if not mixes:
        return labels
    labels = keras_module().ops.cast(labels, "float32")
    for layer, drawn in mixes:
        labels = layer.transform_labels(labels, drawn, training=True)
    return labels


class LabelMixes:
    """What the training step's call drew for MixUp and CutMix, kept for its loss: Keras calls
    the model, then compute_loss, in the same traced step (JAX) or eagerly (torch). A plain
    object, so Keras does not track the transformations as the model's state."""

    def __init__(self) -> None:
        self.mixes: list[tuple[Any, Any]] = []

    def take(self) -> list[tuple[Any, Any]]:
        mixes, self.mixes = self.mixes, []
        return mixes
