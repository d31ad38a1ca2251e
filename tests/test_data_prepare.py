"""Raw arrays to model-ready splits: subset, hold-out, scaling, relabelling, encoding, checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import images, write_idx
from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.keras_files import IDX_FILES
from dltrain.data.prepare import (
    Preparation,
    Splits,
    check_fits_model,
    hold_out,
    load_splits,
    preparation_for,
    relabel,
    standardized,
    subset,
)
from dltrain.data.raw import Raw
from dltrain.errors import DataError


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def skewed_labels(counts: list[int], seed: int = 0) -> np.ndarray:
    """Labels with counts[c] samples of class c, in a shuffled order."""
    y = np.repeat(np.arange(len(counts)), counts)
    return y[np.random.default_rng(seed).permutation(len(y))]


# --- subset ----------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", [4, 10, 20, 33, 57, 99])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subset_is_stratified(limit: int, seed: int) -> None:
    counts = [40, 30, 20, 10]
    y = skewed_labels(counts)
    x = np.arange(len(y))
    x_sub, y_sub = subset(x, y, limit, rng(seed))
    assert len(x_sub) == len(y_sub) == limit
    np.testing.assert_array_equal(y_sub, y[x_sub])  # rows stay paired
    assert len(set(x_sub.tolist())) == limit
    got = np.bincount(y_sub, minlength=4)
    expected = limit * np.array(counts) / len(y)
    assert (got >= 1).all()
    assert np.abs(got - expected).max() <= 1


def test_subset_keeps_every_class_even_when_rare() -> None:
    y = skewed_labels([50, 3, 2, 45])
    _, y_sub = subset(y, y, 4, rng())
    assert sorted(y_sub.tolist()) == [0, 1, 2, 3]


def test_subset_keeps_the_original_order() -> None:
    y = skewed_labels([10, 10, 10])
    x_sub, _ = subset(np.arange(30), y, 12, rng())
    assert (np.diff(x_sub) > 0).all()


def test_subset_is_deterministic_for_a_seed_and_differs_across_seeds() -> None:
    y = skewed_labels([25, 25, 25, 25])
    x = np.arange(100)
    first, _ = subset(x, y, 20, rng(7))
    again, _ = subset(x, y, 20, rng(7))
    other, _ = subset(x, y, 20, rng(8))
    np.testing.assert_array_equal(first, again)
    assert first.tolist() != other.tolist()


@pytest.mark.parametrize("limit", [None, 30, 31, 1000])
def test_subset_returns_everything_when_limit_is_none_or_large(limit: int | None) -> None:
    y = skewed_labels([10, 20])
    x = np.arange(30)
    x_sub, y_sub = subset(x, y, limit, rng())
    assert x_sub is x and y_sub is y


# --- hold_out --------------------------------------------------------------------------------


def hold_out_indices(split: float | str, seed: int, n: int = 40) -> tuple:
    x = np.arange(n)
    y = x % 4
    cfg = DatasetConfig(name="mnist", validation_split=split)
    return hold_out(x, y, x[:5] + 1000, y[:5], cfg, rng(seed))


def test_hold_out_fraction_gives_disjoint_sets_of_the_right_size() -> None:
    x_train, y_train, x_val, y_val = hold_out_indices(0.25, seed=3)
    assert len(x_train) == len(y_train) == 30 and len(x_val) == len(y_val) == 10
    assert set(x_train.tolist()).isdisjoint(x_val.tolist())
    assert sorted(x_train.tolist() + x_val.tolist()) == list(range(40))
    np.testing.assert_array_equal(y_train, x_train % 4)
    np.testing.assert_array_equal(y_val, x_val % 4)


def test_hold_out_is_seeded() -> None:
    first = hold_out_indices(0.25, seed=3)[2]
    np.testing.assert_array_equal(first, hold_out_indices(0.25, seed=3)[2])
    assert first.tolist() != hold_out_indices(0.25, seed=4)[2].tolist()


def test_hold_out_rounds_and_keeps_at_least_one() -> None:
    assert len(hold_out_indices(0.01, seed=0, n=10)[2]) == 1
    assert len(hold_out_indices(0.15, seed=0, n=10)[2]) == 2


def test_hold_out_test_uses_the_test_arrays() -> None:
    x_train, _, x_val, y_val = hold_out_indices("test", seed=0)
    assert x_train.tolist() == list(range(40))
    assert x_val.tolist() == [1000, 1001, 1002, 1003, 1004]
    assert y_val.tolist() == [0, 1, 2, 3, 0]


def test_hold_out_zero_means_no_validation() -> None:
    x_train, _, x_val, y_val = hold_out_indices(0.0, seed=0)
    assert len(x_train) == 40 and x_val is None and y_val is None


def test_hold_out_that_leaves_no_training_data() -> None:
    with pytest.raises(DataError) as caught:
        hold_out_indices(0.99, seed=0, n=10)
    assert str(caught.value) == ("dataset.validation_split 0.99 leaves no training data "
                                 "from 10 samples.")


# --- scale -----------------------------------------------------------------------------------


def scale(x_train: np.ndarray, x_test: np.ndarray, cfg: DatasetConfig) -> tuple:
    preparation = preparation_for(x_train, cfg)
    return preparation.apply(x_train), preparation.apply(x_test)


def test_preparation_survives_a_json_round_trip() -> None:
    x = rng(2).normal(3, 2, size=(50, 4)).astype(np.float32)
    preparation = preparation_for(x, DatasetConfig(name="mnist", standardize=True, rescale=0.5))
    again = Preparation.from_json(json.loads(json.dumps(preparation.to_json())))
    np.testing.assert_allclose(again.apply(x), preparation.apply(x), rtol=1e-6)


def test_scale_uint8_to_unit_float32_with_a_channel_axis() -> None:
    x_train = np.array([[[0, 255], [51, 102]]] * 3, dtype=np.uint8)
    x_test = np.full((2, 2, 2), 255, dtype=np.uint8)
    out_train, out_test = scale(x_train, x_test, DatasetConfig(name="mnist"))
    assert out_train.dtype == np.float32 and out_test.dtype == np.float32
    assert out_train.shape == (3, 2, 2, 1) and out_test.shape == (2, 2, 2, 1)
    np.testing.assert_allclose(out_train[0, ..., 0], [[0, 1], [0.2, 0.4]], rtol=1e-6)
    assert out_train.min() >= 0 and out_train.max() <= 1
    np.testing.assert_allclose(out_test, 1.0)


def test_scale_leaves_colour_images_four_dimensional() -> None:
    x = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    out, _ = scale(x, x, DatasetConfig(name="cifar10"))
    assert out.shape == (2, 4, 4, 3)


def test_scale_rescale_overrides_the_default() -> None:
    x = np.array([[10, 20]], dtype=np.uint8)
    out, _ = scale(x, x, DatasetConfig(name="mnist", rescale=0.5))
    np.testing.assert_allclose(out, [[5, 10]])


def test_scale_leaves_float_data_alone_by_default() -> None:
    x = np.array([[10.0, 300.0]], dtype=np.float64)
    out, _ = scale(x, x, DatasetConfig(name="mnist"))
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[10, 300]])


def test_standardize_uses_train_statistics() -> None:
    generator = rng(4)
    x_train = generator.normal(5, 3, size=(200, 3)).astype(np.float32)
    x_train[:, 2] = 7  # a constant feature must not divide by zero
    x_test = generator.normal(5, 3, size=(20, 3)).astype(np.float32)
    out_train, out_test = scale(x_train, x_test, DatasetConfig(name="mnist", standardize=True))
    np.testing.assert_allclose(out_train[:, :2].mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(out_train[:, :2].std(axis=0), 1, atol=1e-5)
    np.testing.assert_array_equal(out_train[:, 2], 0)
    mean, std = x_train[:, :2].mean(axis=0), x_train[:, :2].std(axis=0)
    np.testing.assert_allclose(out_test[:, :2], (x_test[:, :2] - mean) / std, rtol=1e-5)
    np.testing.assert_allclose(out_test[:, 2], x_test[:, 2] - 7, rtol=1e-5)
    assert np.isfinite(out_test).all()


# --- relabel ---------------------------------------------------------------------------------

EVEN_ODD = {digit: digit % 2 for digit in range(10)}


def test_relabel_even_odd() -> None:
    x = np.zeros((10, 2))
    raw = Raw(x, np.arange(10, dtype=np.uint8), x[:3], np.array([9, 4, 7]), ["a"] * 10)
    out = relabel(raw, EVEN_ODD)
    assert out.y_train.tolist() == [0, 1] * 5
    assert out.y_test.tolist() == [1, 0, 1]
    assert out.x_train is x
    assert out.class_names is None


def test_relabel_missing_entry_is_an_error() -> None:
    x = np.zeros((4, 2))
    raw = Raw(x, np.array([0, 1, 2, 3]), x, np.array([0, 1, 2, 5]))
    with pytest.raises(DataError, match=r"no entry for train label\(s\) \[2, 3\]"):
        relabel(raw, {0: 0, 1: 1})
    with pytest.raises(DataError) as caught:
        relabel(raw, {0: 0, 1: 1, 2: 0, 3: 1})
    assert str(caught.value) == "dataset.label_map has no entry for test label(s) [5]."


# --- load_splits -----------------------------------------------------------------------------


def mnist(folder: Path, **fields: object) -> DatasetConfig:
    return DatasetConfig(name="mnist", data_dir=folder, **fields)  # type: ignore[arg-type]


def test_load_splits_one_hot_for_categorical_crossentropy(mnist_dir: Path) -> None:
    splits = load_splits(mnist(mnist_dir), seed=0, loss_kind="categorical")
    assert splits.x_train.shape == (300, 28, 28, 1) and splits.x_train.dtype == np.float32
    assert splits.y_train.shape == (300, 10) and splits.y_train.dtype == np.float32
    np.testing.assert_array_equal(splits.y_train.sum(axis=1), 1)
    np.testing.assert_array_equal(splits.y_train.argmax(axis=1), np.arange(300) % 10)
    assert splits.y_test.shape == (100, 10)
    assert splits.num_classes == 10 and splits.validation is None
    assert splits.class_names == [str(digit) for digit in range(10)]


def test_load_splits_sparse_loss_keeps_integer_labels(mnist_dir: Path) -> None:
    splits = load_splits(mnist(mnist_dir), seed=0, loss_kind="sparse_categorical")
    assert splits.y_train.shape == (300,) and np.issubdtype(splits.y_train.dtype, np.integer)
    np.testing.assert_array_equal(splits.y_train, np.arange(300) % 10)


def test_load_splits_one_hot_setting_overrides_the_loss(mnist_dir: Path) -> None:
    forced = load_splits(mnist(mnist_dir, one_hot=True), seed=0,
                         loss_kind="sparse_categorical")
    assert forced.y_train.shape == (300, 10)
    plain = load_splits(mnist(mnist_dir, one_hot=False), seed=0,
                        loss_kind="categorical")
    assert plain.y_train.shape == (300,)


def test_load_splits_limits_and_validation(mnist_dir: Path) -> None:
    cfg = mnist(mnist_dir, train_limit=100, test_limit=50, validation_split=0.2)
    splits = load_splits(cfg, seed=5, loss_kind="categorical")
    assert splits.x_train.shape == (80, 28, 28, 1) and splits.y_train.shape == (80, 10)
    assert splits.x_val.shape == (20, 28, 28, 1) and splits.y_val.shape == (20, 10)
    assert splits.x_test.shape == (50, 28, 28, 1)
    # 100 of 300 balanced training images: exactly 10 per class before the hold-out.
    total = splits.y_train.sum(axis=0) + splits.y_val.sum(axis=0)
    assert total.tolist() == [10] * 10
    again = load_splits(cfg, seed=5, loss_kind="categorical")
    np.testing.assert_array_equal(again.x_val, splits.x_val)


def test_load_splits_validation_from_test(mnist_dir: Path) -> None:
    splits = load_splits(mnist(mnist_dir, validation_split="test"), seed=0,
                         loss_kind="sparse_categorical")
    assert splits.validation is not None
    np.testing.assert_array_equal(splits.x_val, splits.x_test)
    np.testing.assert_array_equal(splits.y_val, splits.y_test)
    assert len(splits.x_train) == 300


def test_load_splits_label_map_drops_class_names(mnist_dir: Path) -> None:
    splits = load_splits(mnist(mnist_dir, label_map=EVEN_ODD), seed=0,
                         loss_kind="categorical")
    assert splits.num_classes == 2 and splits.class_names is None
    assert splits.y_train.shape == (300, 2)
    np.testing.assert_array_equal(splits.y_train.argmax(axis=1), np.arange(300) % 2)


def test_load_splits_num_classes_counts_named_classes(tmp_path: Path) -> None:
    # Only labels 0-4 occur, but fashion_mnist names ten classes.
    x, y = images(rng(), 20, (28, 28))
    y = y % 5
    for key, name in IDX_FILES.items():
        write_idx(tmp_path / name, x if key.startswith("x") else y)
    splits = load_splits(DatasetConfig(name="fashion_mnist", data_dir=tmp_path), seed=0,
                         loss_kind="categorical")
    assert splits.num_classes == 10 and splits.y_train.shape == (20, 10)


def regression_csv(folder: Path, **fields: object) -> DatasetConfig:
    """80 rows of 3 features and a target, skewed so that any 20 of them move the statistics."""
    generator = rng(3)
    x = generator.exponential(5.0, size=(80, 3))
    y = x @ np.array([1.0, -2.0, 0.5]) + generator.normal(size=80)
    lines = ["a,b,c,y"] + [",".join(f"{v:.6f}" for v in (*row, target))
                           for row, target in zip(x, y, strict=True)]
    (folder / "d.csv").write_text("\n".join(lines) + "\n")
    return DatasetConfig(name="csv", path=folder / "d.csv", label_column="y",  # type: ignore[arg-type]
                         test_split=0.2, standardize=True, standardize_target=True, **fields)


def test_standardisation_statistics_come_from_the_training_rows_only(tmp_path: Path) -> None:
    # The validation rows shaped the mean and std the model trained with.
    splits = load_splits(regression_csv(tmp_path, validation_split=0.25), seed=1,
                         loss_kind="regression")
    assert len(splits.x_train) == 48 and len(splits.x_val) == 16
    np.testing.assert_allclose(splits.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(splits.x_train.std(axis=0), 1, atol=1e-5)
    np.testing.assert_allclose(splits.y_train.mean(axis=0), 0, atol=1e-5)
    assert np.abs(splits.x_val.mean(axis=0)).max() > 1e-3  # scaled by the training rows' figures
    # The columns by name, for predict (preprocessing.json): a CSV's order may differ.
    assert splits.preparation.feature_names == ["a", "b", "c"]
    assert Preparation.from_json(splits.preparation.to_json()).feature_names == ["a", "b", "c"]


def test_a_fold_is_standardised_by_the_rows_it_trains_on(tmp_path: Path) -> None:
    from dltrain.data.folds import fold_splits, make_folds

    cfg = regression_csv(tmp_path)
    raw = load_splits(cfg.model_copy(update={"standardize": False, "standardize_target": False}),
                      seed=1, loss_kind="regression")
    whole = load_splits(cfg, seed=1, loss_kind="regression")
    folds = make_folds(raw.y_train, 3, 1, False)
    means = []
    for fold in folds:
        split = fold_splits(raw, fold)
        done = standardized(split, cfg)
        np.testing.assert_allclose(done.x_train.mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(done.preparation.mean, split.x_train.mean(axis=0), rtol=1e-6)
        np.testing.assert_allclose(done.x_val, (split.x_val - done.preparation.mean)
                                   / done.preparation.std, rtol=1e-5)
        np.testing.assert_allclose(done.preparation.undo_target(done.y_val), split.y_val,
                                   rtol=1e-5)
        means.append(done.preparation.mean)
    assert not np.allclose(means[0], means[1])
    # All the training rows standardised alike give load_splits's own preparation.
    np.testing.assert_allclose(standardized(raw, cfg).x_train, whole.x_train, atol=1e-5)


# --- check_fits_model ------------------------------------------------------------------------


def splits_of(y_train: list[int], y_test: list[int] | None = None,
              shape: tuple[int, ...] = (4, 4, 1)) -> Splits:
    y_test = y_train if y_test is None else y_test
    num_classes = max(y_train + y_test) + 1
    return Splits(np.zeros((len(y_train), *shape), np.float32), np.array(y_train), None, None,
                  np.zeros((len(y_test), *shape), np.float32), np.array(y_test), num_classes, None,
                  Preparation(1.0))


@pytest.mark.parametrize(("labels", "input_shape", "units", "kind"), [
    ([0, 1, 2], (4, 4, 1), 3, "sparse_categorical"),
    ([0, 1, 2], [4, 4, 1], 5, "sparse_categorical"),
    ([0, 1, 1], (4, 4, 1), 1, "binary"),
])
def test_check_fits_model_accepts_matching_data(labels: list[int], input_shape: Any, units: int,
                                                kind: Any) -> None:
    splits = splits_of(labels)
    check_fits_model(splits, input_shape, units, kind)
    # Data that fits is left as it is: not flattened, nothing noted, the labels unchanged.
    assert splits.x_train.shape == splits.x_test.shape == (3, 4, 4, 1)
    assert splits.y_train.tolist() == labels and splits.num_classes == max(labels) + 1
    assert splits.preparation.flatten_from is None and splits.notes == []


def test_check_fits_model_wrong_input_shape() -> None:
    with pytest.raises(DataError) as caught:
        check_fits_model(splits_of([0, 1]), (4, 4), 2, "sparse_categorical")
    assert str(caught.value) == ("model.input_shape is [4, 4] but the data's samples have shape "
                                 "[4, 4, 1]. Set model.input_shape to match.")


def test_check_fits_model_binary_loss_needs_zero_one_labels() -> None:
    with pytest.raises(DataError) as caught:
        check_fits_model(splits_of([0, 1, 2, 3, 2]), (4, 4, 1), 1, "binary")
    assert str(caught.value) == (
        "a binary loss needs labels 0 and 1; the data has labels [0, 1, 2, 3]. 4 classes need "
        "sparse_categorical_crossentropy and as many output units; or map them to 0 and 1 with "
        "dataset.label_map.")


def test_check_fits_model_binary_loss_names_every_label_and_the_map_for_two() -> None:
    # It said "the data has labels [-1]" of -1/1 labels, leaving out the 1.
    with pytest.raises(DataError) as caught:
        check_fits_model(splits_of([-1, 1, 1], [1, -1]), (4, 4, 1), 1, "binary")
    assert str(caught.value) == ("a binary loss needs labels 0 and 1; the data has labels "
                                 "[-1, 1]. Map them with dataset.label_map: {-1: 0, 1: 1}.")


def test_check_fits_model_binary_loss_checks_test_labels() -> None:
    with pytest.raises(DataError, match=r"labels \[0, 1, 2\]"):
        check_fits_model(splits_of([0, 1, 0], [0, 2]), (4, 4, 1), 1, "binary")


def test_check_fits_model_more_classes_than_output_units() -> None:
    with pytest.raises(DataError) as caught:
        check_fits_model(splits_of([0, 1], [9]), (4, 4, 1), 5, "categorical")
    assert str(caught.value) == ("the data has 10 classes but the last layer has 5 units. "
                                 "Set the last layer's units to 10.")


def test_check_fits_model_one_unit_is_singular() -> None:
    with pytest.raises(DataError) as caught:
        check_fits_model(splits_of([0, 1]), (4, 4, 1), 1, "sparse_categorical")
    assert str(caught.value) == ("the data has 2 classes but the last layer has 1 unit. "
                                 "Set the last layer's units to 2.")


# --- a flat model.input_shape on images (the Keras 2 MLP habit) --------------------------------


def test_images_are_flattened_for_a_flat_input_of_their_size() -> None:
    splits = splits_of([0, 1, 2])
    splits.x_val, splits.y_val = splits.x_test[:1], splits.y_test[:1]
    check_fits_model(splits, (16,), 3, "sparse_categorical")
    assert splits.x_train.shape == (3, 16) and splits.x_test.shape == (3, 16)
    assert splits.x_val.shape == (1, 16)
    assert splits.preparation.flatten_from == [4, 4, 1]
    assert splits.notes == ["the samples (4x4x1) are flattened to 16 values to fit "
                            "model.input_shape [16]."]


def test_flattening_is_saved_with_the_preparation_and_applied_again() -> None:
    preparation = Preparation(1 / 255, flatten_from=[4, 4, 1])
    saved = json.loads(json.dumps(preparation.to_json()))
    assert saved["flatten_from"] == [4, 4, 1]
    again = Preparation.from_json(saved)
    image = np.arange(32, dtype=np.uint8).reshape(2, 4, 4)
    out = again.apply(image)
    assert out.shape == (2, 16) and out.dtype == np.float32
    np.testing.assert_allclose(out, image.reshape(2, 16) / 255, rtol=1e-6)
    # preparation.json files written before flattening existed read as "no flattening".
    assert Preparation.from_json({"rescale": 1.0}).flatten_from is None


def test_a_flat_input_of_another_size_is_still_an_error() -> None:
    with pytest.raises(DataError) as caught:
        check_fits_model(splits_of([0, 1]), (15,), 2, "sparse_categorical")
    assert str(caught.value) == ("model.input_shape is [15] but the data's samples have shape "
                                 "[4, 4, 1]. Set model.input_shape to match.")


def test_augmentation_with_a_flat_input_is_refused() -> None:
    from dltrain.config.dataset_section import AugmentationConfig

    check_fits_model(splits_of([0, 1]), (16,), 2, "sparse_categorical",
                     AugmentationConfig(fill_mode="constant"))  # nothing asked: no augmentation
    with pytest.raises(DataError) as caught:
        check_fits_model(splits_of([0, 1]), (16,), 2, "sparse_categorical",
                         AugmentationConfig(horizontal_flip=True))
    assert str(caught.value) == (
        "model.input_shape [16] is flat, so the 4x4x1 images would be flattened, but "
        "augmentation works on images. Set model.input_shape to [4, 4, 1] and make Flatten the "
        "first layer, or drop the augmentation section.")


@pytest.mark.slow
def test_a_keras2_mlp_with_input_shape_784_trains_evaluates_and_predicts_a_png(
        mnist_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tensorflow as tf

    from conftest import run_cli, write_yaml

    config = write_yaml(tmp_path / "mlp.yaml", f"""
name: mlp784
dataset: {{name: mnist, data_dir: {mnist_dir}, train_limit: 100, test_limit: 30}}
model:
  input_shape: [784]
  layers:
    - Dense: {{units: 16, activation: relu}}
    - Dense: {{units: 10, activation: softmax}}
loss: sparse_categorical_crossentropy
training: {{epochs: 1, batch_size: 50}}
""")
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "fit", config, "--run-dir", run)
    assert code == 0, err
    assert ("note: the samples (28x28x1) are flattened to 784 values to fit model.input_shape "
            "[784].") in " ".join((out + err).split())  # rich wraps long lines
    assert json.loads((run / "preprocessing.json").read_text())["flatten_from"] == [28, 28, 1]
    code, _, err = run_cli(capsys, "eval", run)
    assert code == 0, err
    image = np.zeros((28, 28, 1), np.uint8)
    image[0:5, 0:5] = 220  # conftest's images(): label 0 is the patch at the top left
    (tmp_path / "digit.png").write_bytes(tf.io.encode_png(image).numpy())
    code, out, err = run_cli(capsys, "predict", run, tmp_path / "digit.png", "--json")
    assert code == 0, err
    top = json.loads(out)[0]["top"][0]
    import keras

    model = keras.saving.load_model(run / "model.keras")
    expected = model.predict(image.reshape(1, 784).astype("float32") / 255, verbose=0)[0]
    assert top["index"] == int(expected.argmax())
    assert top["probability"] == pytest.approx(float(expected.max()), rel=1e-5)


def test_a_tiny_sample_of_many_classes_keeps_its_class_ids() -> None:
    """CIFAR-100's 100 classes in a 20-sample file (a user's smoke data) are class ids, not a
    wrong label: only an id past both the samples and a thousand classes is refused."""
    from dltrain.data.targets import check_class_ids

    raw = Raw(x_train=np.zeros((12, 2)), y_train=np.arange(0, 96, 8),
              x_test=np.zeros((8, 2)), y_test=np.arange(3, 99, 12))
    cfg = DatasetConfig(name="npz", path=Path("tiny.npz"))
    check_class_ids(raw, cfg, "sparse_categorical")
    assert raw.y_train.max() == 88 and raw.y_test.max() == 87
    raw.y_train[-1] = 1000
    with pytest.raises(DataError, match=r"tiny.npz: label 1000 \(y_train row 11\) would make "
                                         r"1,001 classes for 20 samples"):
        check_class_ids(raw, cfg, "sparse_categorical")
