"""Augmentation: ImageDataGenerator's vocabulary mapped to Keras layers, on the training split only."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from conftest import to_numpy
from dltrain.config.dataset_section import AugmentationConfig
from dltrain.config.schema import Config
from dltrain.data.pipeline import pipeline
from dltrain.model.augment import augmentation_layers, in_step, make_augmenter
from dltrain.model.build import build_model


def batch() -> np.ndarray:
    return np.random.default_rng(0).random((16, 8, 8, 3)).astype(np.float32)


def test_no_augmentation_means_no_layers() -> None:
    assert make_augmenter(AugmentationConfig(), seed=1) is None


def test_horizontal_flip_mirrors_the_width_axis_exactly() -> None:
    images = batch()
    augmenter = make_augmenter(AugmentationConfig(horizontal_flip=True), seed=3)
    out = to_numpy(augmenter(images))
    mirrored = images[:, :, ::-1, :]
    flipped = [np.array_equal(o, m) for o, m in zip(out, mirrored, strict=True)]
    kept = [np.array_equal(o, i) for o, i in zip(out, images, strict=True)]
    assert all(f or k for f, k in zip(flipped, kept, strict=True))
    assert any(flipped) and any(kept)  # 16 coin flips: both outcomes appear for this seed


def test_vertical_flip_mirrors_the_height_axis() -> None:
    images = batch()
    out = to_numpy(make_augmenter(AugmentationConfig(vertical_flip=True), seed=3)(images))
    assert all(np.array_equal(o, i) or np.array_equal(o, i[::-1]) for o, i in zip(out, images, strict=True))


def test_brightness_range_scales_each_image_by_one_factor_in_range() -> None:
    images = batch() * 0.5 + 0.25  # in [0.25, 0.75]: a factor up to 1.3 stays below 1
    out = to_numpy(make_augmenter(AugmentationConfig(brightness_range=(0.7, 1.3)), 2)(images))
    factors = out / images
    per_image = factors.reshape(16, -1)
    np.testing.assert_allclose(per_image, np.repeat(per_image[:, :1], per_image.shape[1], 1),
                               rtol=1e-5)  # one factor per image
    assert per_image.min() >= 0.7 - 1e-6 and per_image.max() <= 1.3 + 1e-6
    assert per_image[:, 0].std() > 0.05  # not one factor for the whole batch


def test_brightness_is_clipped_to_the_value_range() -> None:
    out = to_numpy(make_augmenter(AugmentationConfig(brightness_range=(2.0, 2.0)), 2,
                                  value_max=1.0)(np.full((2, 4, 4, 1), 0.8, np.float32)))
    np.testing.assert_array_equal(out, np.ones((2, 4, 4, 1), np.float32))


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


def tiny_config(augmentation: str) -> Config:
    return Config.model_validate(yaml.safe_load(f"""
name: tiny
dataset: {{name: fashion_mnist_mini}}
augmentation: {augmentation}
model:
  input_shape: [8, 8, 3]
  layers: [Flatten, {{Dense: {{units: 3, activation: softmax}}}}]
loss: sparse_categorical_crossentropy
metrics: [accuracy]
"""))


def test_in_step_augmentation_flips_in_training_and_is_the_model_otherwise() -> None:
    config = tiny_config("{horizontal_flip: true, brightness_range: [0.9, 0.9]}")
    model = build_model(config)
    trainer = in_step(model, config, value_max=1.0)
    images = batch() * 0.5
    plain = to_numpy(model(images))
    np.testing.assert_array_equal(to_numpy(trainer(images)), plain)  # inference: no change
    out = to_numpy(trainer(images, training=True))
    mirrored = to_numpy(model(images[:, :, ::-1, :] * 0.9))
    kept = to_numpy(model(images * 0.9))
    flipped = [np.allclose(o, m, atol=1e-6) for o, m in zip(out, mirrored, strict=True)]
    unflipped = [np.allclose(o, k, atol=1e-6) for o, k in zip(out, kept, strict=True)]
    assert all(f or k for f, k in zip(flipped, unflipped, strict=True))
    assert any(flipped) and any(unflipped)


def test_in_step_training_trains_the_saved_model_and_adds_no_layer_to_it() -> None:
    config = tiny_config("{vertical_flip: true}")
    model = build_model(config)
    before = [w.copy() for w in model.get_weights()]
    trainer = in_step(model, config, value_max=1.0)
    assert trainer.saved is model and trainer.optimizer is model.optimizer
    trainer.fit(batch(), np.arange(16) % 3, epochs=1, batch_size=8, verbose=0)
    assert any(not np.array_equal(a, b) for a, b in zip(before, model.get_weights(), strict=True))
    assert [type(layer).__name__ for layer in model.layers] == ["Flatten", "Dense"]
    assert int(model.optimizer.iterations) == 2  # the one optimizer: the state --resume reads


def test_no_in_step_wrapper_without_augmentation() -> None:
    config = tiny_config("{}")
    model = build_model(config)
    assert in_step(model, config, value_max=1.0) is model


def test_in_step_training_scores_with_the_models_own_metrics() -> None:
    """A binary classifier on logits: accuracy cuts at logit 0, and Keras 2's `crossentropy`
    is the loss's; the wrapper compiled the bare names, which Keras reads otherwise (accuracy
    cut at 0.5) or not at all (crossentropy)."""
    config = Config.model_validate(yaml.safe_load("""
name: tiny
dataset: {name: fashion_mnist_mini}
augmentation: {horizontal_flip: true}
model:
  input_shape: [8, 8, 3]
  layers: [Flatten, {Dense: {units: 1}}]
loss: {name: binary_crossentropy, from_logits: true}
metrics: [accuracy, crossentropy]
"""))
    model = build_model(config)
    for variable in model.weights:  # every logit 0.25: probability 0.56, class 1
        variable.assign(np.full(variable.shape, 0.25 if len(variable.shape) == 1 else 0.0,
                                dtype="float32"))
    trainer = in_step(model, config, value_max=1.0)
    images, labels = batch(), np.ones((16, 1), dtype="float32")
    expected = model.evaluate(images, labels, verbose=0, return_dict=True)
    assert expected["accuracy"] == 1.0
    assert trainer.evaluate(images, labels, verbose=0, return_dict=True) == pytest.approx(expected)


def test_a_batch_s_draws_are_a_function_of_the_seed_and_its_step() -> None:
    # tf.data's map (TensorFlow) draws with the batch's step: a resumed run's batch 7 is the
    # uninterrupted run's batch 7, whatever was drawn before it.
    images = batch()
    cfg = AugmentationConfig(horizontal_flip=True, brightness_range=(0.5, 1.5))
    first, again = make_augmenter(cfg, seed=5), make_augmenter(cfg, seed=5)
    assert first is not None and again is not None
    drawn = [to_numpy(first(images, step)) for step in (7, 8)]
    np.testing.assert_array_equal(to_numpy(again(images, 8)), drawn[1])
    np.testing.assert_array_equal(to_numpy(again(images, 7)), drawn[0])
    assert not np.array_equal(drawn[0], drawn[1])


def test_in_step_draws_restart_each_epoch_from_the_seed_and_the_epoch() -> None:
    # JAX and torch draw in the training step, from the layers' seed state, which a resumed
    # run (its checkpoint holds the model alone) had restarted from the seed.
    from dltrain.model.augment import ReseedAugmentation

    config = tiny_config("{horizontal_flip: true}")  # brightness too on JAX (test_train_resume)
    images = batch() * 0.5
    outputs, weights = [], build_model(config).get_weights()
    for warm_up in (0, 3):  # draws already made before the epoch, as a longer run made them
        model = build_model(config)
        model.set_weights(weights)
        trainer = in_step(model, config, value_max=1.0)
        for _ in range(warm_up):
            trainer(images, training=True)
        reseed = ReseedAugmentation(config.seed)
        reseed.set_model(trainer)
        reseed.on_epoch_begin(2)
        outputs.append(to_numpy(trainer(images, training=True)))
    np.testing.assert_array_equal(outputs[0], outputs[1])
