"""Numeric targets from CSV and npz files: read, subset, standardised, checked against the model."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.prepare import Preparation, check_fits_model, load_splits, subset
from dltrain.errors import ConfigError, DataError


def write_csv(path: Path, rows: int = 40, seed: int = 0) -> Path:
    """Three features, a float target y = 2a - b + 10 and a second target z = a * 100."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    lines = ["a,b,c,y,z"] + [f"{a:.4f},{b:.4f},{c:.4f},{2 * a - b + 10:.4f},{a * 100:.3f}"
                             for a, b, c in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def csv_config(path: Path, **keys: object) -> DatasetConfig:
    return DatasetConfig(**{"name": "csv", "path": path, "label_column": "y",  # type: ignore[arg-type]
                            "feature_columns": ["a", "b", "c"], **keys})


def test_csv_float_targets_are_values_not_classes(tmp_path: Path) -> None:
    splits = load_splits(csv_config(write_csv(tmp_path / "t.csv")), 0, "regression")
    assert splits.y_train.dtype == np.float32 and splits.y_train.shape == (32, 1)
    assert splits.y_test.shape == (8, 1)
    np.testing.assert_allclose(splits.y_train[:, 0], 2 * splits.x_train[:, 0]
                               - splits.x_train[:, 1] + 10, atol=1e-3)
    assert splits.num_classes == 0 and splits.class_names is None
    assert splits.preparation.target_names == ["y"]


def test_several_target_columns(tmp_path: Path) -> None:
    cfg = csv_config(write_csv(tmp_path / "t.csv"), label_column=["y", "z"])
    splits = load_splits(cfg, 0, "regression")
    assert splits.y_train.shape == (32, 2) and splits.x_train.shape == (32, 3)
    np.testing.assert_allclose(splits.y_train[:, 1], splits.x_train[:, 0] * 100, atol=1e-2)
    assert splits.preparation.target_names == ["y", "z"]
    check_fits_model(splits, (3,), 2, "regression")
    with pytest.raises(DataError, match=r"the data has 2 targets \(y, z\) but the last layer has "
                       r"1 unit\. Set the last layer's units to 2\."):
        check_fits_model(splits, (3,), 1, "regression")


def test_npz_float_targets_one_or_several(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for shape in [(30,), (30, 1), (30, 3)]:
        y = rng.normal(size=shape) * 50
        np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(30, 4)), y_train=y,
                 x_test=rng.normal(size=(10, 4)), y_test=rng.normal(size=(10, *shape[1:])))
        splits = load_splits(DatasetConfig(name="npz", path=tmp_path / "d.npz"), 0, "regression")
        columns = 1 if len(shape) == 1 else shape[1]
        assert splits.y_train.shape == (30, columns)
        np.testing.assert_allclose(splits.y_train, y.reshape(30, -1).astype(np.float32))
        assert splits.preparation.target_names == (
            ["y"] if columns == 1 else [f"y{i}" for i in range(columns)])


def test_a_classification_loss_on_float_targets_says_which(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv")
    with pytest.raises(ConfigError) as caught:
        load_splits(csv_config(path), 0, "sparse_categorical")
    assert str(caught.value).startswith(
        f"loss: a sparse_categorical classification loss needs class ids, but {path} has "
        "targets that are not whole numbers (e.g. ")
    assert "For a regression use a regression loss (mse, mae, huber, ...) with a linear last " \
           "layer, or set task: regression." in str(caught.value)


def test_a_classifier_takes_whole_float_labels_as_class_ids(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x_train=rng.normal(size=(20, 2)),
             y_train=np.arange(20) % 3 * 1.0, x_test=rng.normal(size=(6, 2)),
             y_test=np.arange(6) % 3 * 1.0)
    splits = load_splits(DatasetConfig(name="npz", path=tmp_path / "d.npz"), 0,
                         "sparse_categorical")
    assert splits.y_train.dtype.kind == "i" and splits.num_classes == 3


def test_a_regression_on_class_names_says_which(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"
    path.write_text("a,kind\n1,cat\n2,dog\n3,cat\n4,dog\n5,cat\n")
    with pytest.raises(DataError, match=r"a regression needs numeric targets, but column "
                       r"'kind' holds text \(cat, dog\)"):
        load_splits(DatasetConfig(name="csv", path=path, label_column="kind"), 0, "regression")


def test_regression_subsets_are_plain_seeded_samples() -> None:
    y = np.repeat([1.0, 2.0], [90, 10])  # a stratified subset would keep 1 in 10 at 2.0
    x = np.arange(100)
    first, _ = subset(x, y, 20, np.random.default_rng(3), stratified=False)
    again, _ = subset(x, y, 20, np.random.default_rng(3), stratified=False)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, np.sort(np.random.default_rng(3).permutation(100)[:20]))


def test_target_standardisation_round_trip(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "t.csv")
    plain = load_splits(csv_config(path, label_column=["y", "z"]), 0, "regression")
    scaled = load_splits(csv_config(path, label_column=["y", "z"], standardize_target=True), 0,
                         "regression")
    np.testing.assert_allclose(scaled.y_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(scaled.y_train.std(axis=0), 1, atol=1e-5)
    preparation = Preparation.from_json(scaled.preparation.to_json())
    np.testing.assert_allclose(preparation.target_mean, plain.y_train.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(preparation.undo_target(scaled.y_test), plain.y_test, atol=1e-4)
    assert preparation.target_names == ["y", "z"]
    # Older runs' preprocessing.json has no target keys: nothing to undo.
    old = Preparation.from_json({"rescale": 1.0})
    np.testing.assert_array_equal(old.undo_target(plain.y_test), plain.y_test)


def write_npz(path: Path, y_train: np.ndarray, y_test: np.ndarray,
              x_train: np.ndarray | None = None) -> Path:
    rng = np.random.default_rng(0)
    np.savez(path, x_train=rng.normal(size=(len(y_train), 2)) if x_train is None else x_train,
             y_train=y_train, x_test=rng.normal(size=(len(y_test), 2)), y_test=y_test)
    return path


@pytest.mark.parametrize("kind", ["sparse_categorical", "categorical"])
def test_negative_class_ids_are_refused_with_the_label_map_hint(tmp_path: Path,
                                                                kind: str) -> None:
    path = write_npz(tmp_path / "d.npz", np.array([-1, 1] * 10), np.array([1, -1, 1]))
    with pytest.raises(DataError) as caught:
        load_splits(DatasetConfig(name="npz", path=path), 0, kind)  # type: ignore[arg-type]
    assert str(caught.value) == (
        f"{path}: class ids count from 0, but the labels hold -1 (y_train row 0). "
        "Map them with dataset.label_map, e.g. {-1: 0, 1: 1}.")


def test_a_label_map_makes_negative_labels_class_ids(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", np.array([-1, 1] * 10), np.array([1, -1, 1]))
    splits = load_splits(DatasetConfig(name="npz", path=path, label_map={-1: 0, 1: 1},
                                       validation_split=0), 0, "sparse_categorical")
    assert sorted(set(splits.y_train.tolist())) == [0, 1] and splits.num_classes == 2


def test_binary_hinge_labels_of_minus_one_are_kept(tmp_path: Path) -> None:
    path = write_npz(tmp_path / "d.npz", np.array([-1, 1] * 10), np.array([1, -1, 1]))
    splits = load_splits(DatasetConfig(name="npz", path=path, validation_split=0), 0, "binary")
    assert sorted(set(splits.y_train.tolist())) == [-1, 1]


def test_features_that_are_not_finite_name_the_array_and_sample(tmp_path: Path) -> None:
    x = np.random.default_rng(1).normal(size=(20, 2))
    x[7, 1] = np.nan
    path = write_npz(tmp_path / "d.npz", np.arange(20) % 2, np.array([0, 1, 0]), x_train=x)
    with pytest.raises(DataError) as caught:
        load_splits(DatasetConfig(name="npz", path=path), 0, "sparse_categorical")
    assert str(caught.value) == (f"{path}: x_train holds a value that is not a finite number "
                                 "(NaN or infinite), first in sample 7.")
