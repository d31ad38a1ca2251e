"""Keras 3's RandAugment, RandomErasing, MixUp and CutMix in the augmentation vocabulary."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import yaml

from conftest import to_numpy
from dltrain.config.dataset_section import AugmentationConfig
from dltrain.config.schema import Config, json_schema
from dltrain.errors import ConfigError
from dltrain.model.augment import in_step, make_augmenter
from dltrain.model.augment_mix import extra_layers
from dltrain.model.build import build_model

NEW_KEYS = {"rand_augment", "rand_augment_factor", "random_erasing", "mixup", "cutmix"}


def batch() -> np.ndarray:
    return np.random.default_rng(0).random((8, 8, 8, 3)).astype(np.float32)


def one_hot() -> np.ndarray:
    return np.eye(3, dtype=np.float32)[np.arange(8) % 3]


def tiny_config(augmentation: str, loss: str = "categorical_crossentropy") -> Config:
    return Config.model_validate(yaml.safe_load(f"""
name: tiny
seed: 3
dataset: {{name: fashion_mnist_mini}}
augmentation: {augmentation}
model:
  input_shape: [8, 8, 3]
  layers: [Flatten, {{Dense: {{units: 3, activation: softmax}}}}]
loss: {loss}
metrics: [accuracy]
"""))


def test_each_key_builds_its_keras_layer_with_the_config_s_arguments() -> None:
    cfg = AugmentationConfig(rand_augment=3, rand_augment_factor=0.3, random_erasing=0.4,
                             mixup=0.2, cutmix=0.7)
    layers = {type(layer).__name__: layer for layer in extra_layers(cfg, seed=1, value_max=255)}
    assert list(layers) == ["RandAugment", "RandomErasing", "MixUp", "CutMix"]
    rand = layers["RandAugment"]
    assert (rand.num_ops, rand.value_range) == (3, (0.0, 255))
    assert rand.factor == pytest.approx((0.0, 0.3))
    erasing = layers["RandomErasing"]
    assert erasing.factor == pytest.approx((0.0, 0.4)) and erasing.value_range == (0.0, 255)
    assert layers["MixUp"].alpha == pytest.approx(0.2)
    assert layers["CutMix"].factor == pytest.approx((0.0, 0.7))
    assert all(layer.seed == 1 for layer in layers.values())
    assert extra_layers(AugmentationConfig(rand_augment_factor=0.9), 1, 1.0) == []


@pytest.mark.parametrize("key, value", [("rand_augment", 2), ("random_erasing", 1.0),
                                        ("mixup", 0.4), ("cutmix", 1.0)])
def test_seeded_draws_repeat_and_change_the_images(key: str, value: float) -> None:
    cfg = AugmentationConfig(**{key: value})
    images, labels = batch(), one_hot()
    first, again = make_augmenter(cfg, seed=5), make_augmenter(cfg, seed=5)
    assert first is not None and again is not None
    out, mixed = (to_numpy(part) for part in first(images, labels=labels))
    np.testing.assert_array_equal(to_numpy(again(images, labels=labels)[0]), out)
    assert not np.allclose(out, images)
    np.testing.assert_allclose(mixed.sum(axis=1), 1.0, atol=1e-5)  # still distributions


@pytest.mark.parametrize("key, value", [("mixup", 1.0), ("cutmix", 1.0)])
def test_mixup_and_cutmix_mix_the_labels_with_the_images(key: str, value: float) -> None:
    augmenter = make_augmenter(AugmentationConfig(**{key: value}), seed=2)
    assert augmenter is not None
    _, mixed = augmenter(batch(), labels=one_hot())
    mixed = to_numpy(mixed)
    assert ((mixed > 0.01) & (mixed < 0.99)).any()  # blends of two classes
    erasing = make_augmenter(AugmentationConfig(random_erasing=1.0), 2)
    assert erasing is not None
    untouched = to_numpy(erasing(batch(), labels=one_hot())[1])
    np.testing.assert_array_equal(untouched, one_hot())  # erasing keeps the labels


@pytest.mark.parametrize("key", ["cutmix", "rand_augment"])
def test_tf_data_s_map_augments_and_mixes_labels_with_images(key: str) -> None:
    from dltrain.backend import input_is_tf_data
    from dltrain.data.pipeline import pipeline

    if not input_is_tf_data():  # JAX and torch augment in the training step
        pytest.skip("the pipeline augments on TensorFlow only")
    augmenter = make_augmenter(AugmentationConfig(**{key: 1}), seed=2)
    batches = list(pipeline(batch(), one_hot(), 8, augmenter=augmenter))
    labels = np.concatenate([to_numpy(y) for _, y in batches])
    assert not np.allclose(np.concatenate([to_numpy(x) for x, _ in batches]), batch())
    assert labels.shape == (8, 3)
    assert ((labels > 0.01) & (labels < 0.99)).any() == (key == "cutmix")
    np.testing.assert_allclose(labels.sum(axis=1), 1.0, atol=1e-5)


def test_in_step_loss_sees_the_labels_mixed_as_the_call_mixed_the_images() -> None:
    from dltrain.backend import keras_module

    config = tiny_config("{mixup: 1.0}")
    trainer = in_step(build_model(config), config, value_max=1.0)
    images, labels = batch(), one_hot()
    predicted = trainer(images, training=True)
    [(layer, drawn)] = trainer.label_mixes.mixes
    mixed = layer.transform_labels(labels, drawn)
    assert not np.allclose(to_numpy(mixed), labels)
    crossentropy = keras_module().losses.categorical_crossentropy
    expected = float(np.mean(to_numpy(crossentropy(mixed, predicted))))
    unmixed = float(np.mean(to_numpy(crossentropy(labels, predicted))))
    assert float(to_numpy(trainer.compute_loss(images, labels, predicted))) == pytest.approx(
        expected, rel=1e-5)
    # The draw is used once: a loss without a new training call sees the labels as they are.
    assert float(to_numpy(trainer.compute_loss(images, labels, predicted))) == pytest.approx(
        unmixed, rel=1e-5)


def test_class_ids_are_refused_with_the_fix() -> None:
    from dltrain.config.load import validate

    for key in ("mixup", "cutmix"):
        with pytest.raises(ConfigError, match=f"augmentation.{key}.*needs one-hot labels.*"
                           "Use loss: categorical_crossentropy"):
            validate(yaml.safe_load(f"""
name: tiny
dataset: {{name: fashion_mnist_mini}}
augmentation: {{{key}: 0.5}}
model: {{input_shape: [8, 8, 3], layers: [Flatten, {{Dense: {{units: 3}}}}]}}
loss: sparse_categorical_crossentropy
"""), "tiny.yaml")


def test_the_json_schema_knows_the_new_keys() -> None:
    augmentation = json_schema()["$defs"]["AugmentationConfig"]["properties"]
    assert NEW_KEYS <= set(augmentation)
    assert all(augmentation[key].get("description") for key in NEW_KEYS)


@pytest.fixture(scope="module")
def trained() -> tuple[Any, Any]:
    """One tiny in-step fit with every new layer at once."""
    config = tiny_config("{rand_augment: 2, random_erasing: 0.5, mixup: 0.2, cutmix: 1.0}")
    model = build_model(config)
    before = [w.copy() for w in model.get_weights()]
    trainer = in_step(model, config, value_max=1.0)
    history = trainer.fit(batch(), one_hot(), epochs=1, batch_size=4, verbose=0)
    return (model, before), history.history


@pytest.mark.slow  # a compiled fit: 3 s
def test_a_fit_with_every_new_layer_trains_the_saved_model(trained: tuple[Any, Any]) -> None:
    (model, before), history = trained
    assert np.isfinite(history["loss"]).all()
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense"]


@pytest.mark.parametrize(("backend", "compiles"), [("tensorflow", False), ("jax", True)])
def test_augmentation_layers_compile_where_the_backend_compiles_their_image_transforms(
        monkeypatch: pytest.MonkeyPatch, backend: str, compiles: bool) -> None:
    # Keras marks RandomZoom, RandomRotation and kin supports_jit False on every backend (for
    # TensorFlow's ImageProjectiveTransform), so JAX ran the training step around them op by op.
    from dltrain.backend import augment_ops
    from dltrain.model.augment import augmentation_layers

    monkeypatch.setattr(augment_ops, "active_backend", lambda: backend)
    cfg = AugmentationConfig(rotation_range=10, zoom_range=0.1, width_shift_range=0.1,
                             rand_augment=2)
    layers = [*augmentation_layers(cfg, 1), *extra_layers(cfg, 1, 1.0)]
    inner = [part for layer in layers for part in layer._flatten_layers()]
    assert {"RandomRotation", "RandomZoom", "RandomTranslation", "RandomShear"} <= {
        type(part).__name__ for part in inner}  # RandAugment's own among them
    as_keras_made_them = [part.supports_jit for part in inner]
    assert not all(as_keras_made_them)
    augment_ops.let_augmentation_compile(layers)
    after = [part.supports_jit for part in inner]
    assert after == ([True] * len(inner) if compiles else as_keras_made_them)
