"""Stand-in data for `dltrain smoke --synthetic`: each dataset's shapes, dtypes and classes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import ROOT
from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.keras_files import CIFAR10_CLASSES, DIGITS, FASHION_CLASSES
from dltrain.data.prepare import load_splits
from dltrain.data.synthetic import stand_in_source, synthetic_raw
from dltrain.errors import DataError


@pytest.mark.parametrize(("name", "shape", "classes", "names"), [
    ("mnist", (28, 28), 10, DIGITS),
    ("fashion_mnist", (28, 28), 10, FASHION_CLASSES),
    ("cifar10", (32, 32, 3), 10, CIFAR10_CLASSES),
    ("cifar100", (32, 32, 3), 100, None),
])
def test_stand_ins_have_the_datasets_shapes_dtypes_and_classes(
        name: str, shape: tuple[int, ...], classes: int, names: list[str] | None) -> None:
    raw = synthetic_raw(DatasetConfig(name=name))  # type: ignore[arg-type]
    assert raw.x_train.shape[1:] == shape and raw.x_test.shape[1:] == shape
    assert raw.x_train.dtype == np.uint8 and raw.x_train.max() > 200 and raw.x_train.min() == 0
    assert sorted(np.unique(raw.y_train).tolist()) == list(range(classes))
    assert sorted(np.unique(raw.y_test).tolist()) == list(range(classes))
    assert raw.class_names == names
    again = synthetic_raw(DatasetConfig(name=name))  # type: ignore[arg-type]
    np.testing.assert_array_equal(again.x_train, raw.x_train)


def test_stand_in_classes_differ_where_a_model_can_see_it() -> None:
    raw = synthetic_raw(DatasetConfig(name="mnist"))
    means = np.stack([raw.x_train[raw.y_train == c].mean(axis=0) for c in range(10)])
    # Each class's mean image is far from every other class's: learnable in a few batches.
    distances = np.linalg.norm((means[:, None] - means[None]).reshape(10, 10, -1), axis=-1)
    assert distances[~np.eye(10, dtype=bool)].min() > 500


def test_downloaded_datasets_get_stand_ins_local_ones_are_read() -> None:
    for name in ("mnist", "fashion_mnist", "cifar10", "cifar100"):
        assert stand_in_source(DatasetConfig(name=name)) is True  # type: ignore[arg-type]
    for name in ("mnist_mini", "fashion_mnist_mini"):
        assert stand_in_source(DatasetConfig(name=name)) is False  # type: ignore[arg-type]
    pima = DatasetConfig(name="csv", path=ROOT / "dltrain" / "data" / "shipped" / "pima_diabetes.csv",
                         label_column="diabetes")
    assert stand_in_source(pima) is False


@pytest.mark.parametrize("name", ["csv", "npz", "image_folder"])
def test_a_missing_file_cannot_be_synthesised_and_says_why(name: str, tmp_path: Path) -> None:
    path = tmp_path / "missing"
    extra = {"label_column": "y"} if name == "csv" else {}
    cfg = DatasetConfig(name=name, path=path, **extra)  # type: ignore[arg-type]
    with pytest.raises(DataError) as caught:
        stand_in_source(cfg)
    assert str(caught.value) == (
        f"dataset.path {path} does not exist, and --synthetic cannot stand in for a {name} "
        "dataset: its shapes and classes come from the file. Put the file there, or leave "
        "this config out of the smoke run.")


def test_load_splits_marks_synthetic_splits_and_says_so() -> None:
    splits = load_splits(DatasetConfig(name="cifar10", train_limit=50), seed=0,
                         loss_kind="categorical", synthetic=True)
    assert splits.synthetic is True
    assert splits.x_train.shape == (50, 32, 32, 3) and splits.y_train.shape == (50, 10)
    assert splits.notes == ["synthetic stand-in data for cifar10 (uint8 32x32x3 images, "
                            "10 classes): checks the config runs, not how well it learns."]
    real = load_splits(DatasetConfig(name="mnist_mini", train_limit=50), seed=0,
                       loss_kind="categorical", synthetic=True)
    assert real.synthetic is False and real.notes == []
