"""Augmentation: ImageDataGenerator's vocabulary mapped to Keras layers, on the training split only."""

from __future__ import annotations

import numpy as np
import pytest

from dltrain.augment import augmentation_layers, make_augmenter
from dltrain.schema import AugmentationConfig
from dltrain.train import pipeline


def batch() -> np.ndarray:
    return np.random.default_rng(0).random((16, 8, 8, 3)).astype(np.float32)


def test_no_augmentation_means_no_layers() -> None:
    assert make_augmenter(AugmentationConfig(), seed=1) is None


def test_horizontal_flip_mirrors_the_width_axis_exactly() -> None:
    images = batch()
    augmenter = make_augmenter(AugmentationConfig(horizontal_flip=True), seed=3)
    out = np.asarray(augmenter(images, training=True))
    mirrored = images[:, :, ::-1, :]
    flipped = [np.array_equal(o, m) for o, m in zip(out, mirrored, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)  # 16 coin flips: both outcomes appear for this seed


def test_vertical_flip_mirrors_the_height_axis() -> None:
    images = batch()
    out = np.asarray(make_augmenter(AugmentationConfig(vertical_flip=True), seed=3)(
        images, training=True))
    assert all(np.array_equal(o, i) or np.array_equal(o, i[::-1]) for o, i in zip(out, images, strict=True))


def test_augmentation_is_off_outside_training() -> None:
    images = batch()
    augmenter = make_augmenter(AugmentationConfig(horizontal_flip=True, rotation_range=30), 3)
    np.testing.assert_array_equal(np.asarray(augmenter(images, training=False)), images)


def test_only_the_training_pipeline_augments() -> None:
    images, labels = batch(), np.arange(16)
    augmenter = make_augmenter(AugmentationConfig(horizontal_flip=True), seed=5)
    train = np.concatenate([x for x, _ in pipeline(images, labels, 16, augmenter=augmenter)])
    test = np.concatenate([x for x, _ in pipeline(images, labels, 16)])
    np.testing.assert_array_equal(test, images)
    assert not np.array_equal(train, images)


def test_imagedatagenerator_arguments_map_to_layer_factors() -> None:
    cfg = AugmentationConfig(rotation_range=18, width_shift_range=0.1, height_shift_range=0.2,
                             zoom_range=0.25, fill_mode="constant", cval=0.5)
    layers = {type(layer).__name__: layer for layer in augmentation_layers(cfg, seed=1)}
    assert set(layers) == {"RandomRotation", "RandomTranslation", "RandomZoom"}
    assert layers["RandomRotation"].factor == pytest.approx((-0.05, 0.05))  # 18/360 of a turn
    shift = layers["RandomTranslation"]
    assert (shift.width_lower, shift.width_upper) == pytest.approx((-0.1, 0.1))
    assert (shift.height_lower, shift.height_upper) == pytest.approx((-0.2, 0.2))
    zoom = layers["RandomZoom"]
    assert (zoom.height_lower, zoom.height_upper) == pytest.approx((-0.25, 0.25))
    assert (zoom.width_lower, zoom.width_upper) == pytest.approx((-0.25, 0.25))
    assert layers["RandomZoom"].fill_mode == "constant"
    assert layers["RandomZoom"].fill_value == 0.5
