"""The dataset and augmentation sections: which data, how it is split, scaled and labelled,
and the ImageDataGenerator-style augmentation."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import (
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dltrain.config.fields import Strict, finite_or_none

IMAGE_DATASETS = ("fashion_mnist_mini", "mnist_mini", "mnist", "fashion_mnist", "cifar10", "cifar100")
DATASET_NAMES = (*IMAGE_DATASETS, "npz", "csv", "image_folder")

# The optional dataset keys each dataset reads beyond those all of them read (validation_split,
# rescale, standardize, label_map, one_hot, train_limit, test_limit). A name not listed reads
# none: it ships with dltrain.
DATASET_KEYS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(["mnist", "fashion_mnist", "cifar10", "cifar100"], ("data_dir",)),
    "npz": ("path",),
    "csv": ("path", "test_path", "label_column", "feature_columns", "test_split",
            "test_split_seed"),
    "image_folder": ("path", "test_path", "test_split", "test_split_seed", "image_size",
                     "color_mode"),
}
SOURCE_KEYS = sorted({key for keys in DATASET_KEYS.values() for key in keys})

# ImageDataGenerator arguments that have no Keras 3 preprocessing-layer equivalent here yet,
# with what to do instead.
UNSUPPORTED_AUGMENTATION = {
    "featurewise_center": "standardise the data before training instead",
    "samplewise_center": "standardise the data before training instead",
    "featurewise_std_normalization": "standardise the data before training instead",
    "samplewise_std_normalization": "standardise the data before training instead",
    "zca_whitening": "whiten the data before training instead",
    "zca_epsilon": "whiten the data before training instead",
    "shear_range": "use rotation_range or zoom_range instead",
    "channel_shift_range": "remove it",
    "preprocessing_function": "configs cannot run code; remove it",
    "rescale": "set dataset.rescale instead",
    "validation_split": "set dataset.validation_split instead",
    "data_format": "remove it: images are always channels-last",
}


class DatasetConfig(Strict):
    name: Literal[DATASET_NAMES] = Field(description="Which dataset to train on.")  # type: ignore[valid-type]
    data_dir: Path | None = Field(
        None, description="Folder with the dataset's canonical files, read instead of downloading."
    )
    path: Path | None = Field(None, description="npz/csv file, or image_folder's training folder.")
    test_path: Path | None = Field(None, description="csv/image_folder: a separate test set.")
    label_column: str | list[str] | None = Field(
        None, description="csv: the column that holds the label, or a list of target columns "
        "for a regression with several outputs.")
    feature_columns: list[str] | None = Field(None, description="csv: feature columns (default all).")
    test_split: float = Field(0.2, gt=0, lt=1, description="Without test_path: test fraction.")
    test_split_seed: int = Field(0, ge=0, description="Seed of that split; fixed apart from `seed` "
                                 "so runs with different seeds test on the same rows.")
    image_size: tuple[int, int] = Field((64, 64), description="image_folder: [height, width].")
    color_mode: Literal["grayscale", "rgb", "rgba"] = Field("rgb", description="image_folder.")
    validation_split: float | Literal["test"] = Field(
        0.0, description="Fraction of the training data held out (seeded), or 'test'."
    )
    rescale: float | None = Field(
        None, description="Multiply inputs by this; default 1/255 for uint8 images, else 1."
    )
    standardize: bool = Field(False, description="Scale each feature to mean 0, std 1 (train stats).")
    standardize_target: bool = Field(
        False, description="Regression: train on targets scaled to mean 0, std 1 (train stats); "
        "reports and predict give values in the targets' own units.")
    label_map: dict[int, int] | None = Field(None, description="Relabel classes, e.g. even/odd.")
    one_hot: bool | None = Field(None, description="One-hot labels; default: derived from the loss.")
    train_limit: int | None = Field(None, gt=0, description="Stratified, seeded training subset.")
    test_limit: int | None = Field(None, gt=0, description="Stratified, seeded test subset.")

    @field_validator(*SOURCE_KEYS)
    @classmethod
    def _read_by_the_dataset(cls, value: Any, info: ValidationInfo) -> Any:
        # A key another dataset reads is a mistake the run would silently ignore. Its default
        # is no mistake: a saved run's config.yaml lists every key.
        name, key = info.data.get("name"), info.field_name
        if name is None or key is None or key in DATASET_KEYS.get(name, ()):
            return value
        if value == cls.model_fields[key].default:
            return value
        raise PydanticCustomError("key_not_read", "{name} does not read {key} ({why}). Remove it",
                                  {"name": name, "key": key, "why": _why_not_read(name, key)})

    @field_validator("label_column", "feature_columns", mode="before")
    @classmethod
    def _columns_by_name(cls, value: Any) -> Any:
        for column in value if isinstance(value, list) else [value]:
            if isinstance(column, int) and not isinstance(column, bool):  # pandas' iloc habit
                raise ValueError(f"columns are named by the CSV's header row, not numbered. "
                                 f"Received: {column}. Write the column's name (a file without "
                                 "a header row needs one added as its first line)")
        return value

    @field_validator("label_column")
    @classmethod
    def _some_columns(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("must name a column, or list at least one")
        return value

    @field_validator("validation_split")
    @classmethod
    def _split_range(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0 <= value < 1:
            raise ValueError("must be in [0, 1) or 'test'")
        return value

    @field_validator("image_size")
    @classmethod
    def _size_positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) <= 0:
            raise ValueError("height and width must be positive")
        return value

    @field_validator("rescale")
    @classmethod
    def _rescale_finite(cls, value: float | None) -> float | None:
        return finite_or_none(value)

    @model_validator(mode="after")
    def _source_needs_path(self) -> DatasetConfig:
        if self.name in ("npz", "csv", "image_folder") and self.path is None:
            raise ValueError(f"dataset '{self.name}' needs dataset.path")
        if self.name == "csv" and self.label_column is None:
            raise ValueError("dataset 'csv' needs dataset.label_column")
        return self

    @property
    def has_validation(self) -> bool:
        return self.validation_split == "test" or self.validation_split > 0

    @property
    def label_columns(self) -> list[str]:
        """label_column as a list: one name for a label, several for a regression's targets."""
        if self.label_column is None:
            return []
        return [self.label_column] if isinstance(self.label_column, str) else self.label_column


def _why_not_read(name: str, key: str) -> str:
    instead = {"path": "data_dir", "data_dir": "path"}.get(key)
    if instead in DATASET_KEYS.get(name, ()):
        return f"it reads {instead} instead"
    if key in ("data_dir", "path", "test_path") and not DATASET_KEYS.get(name):
        return "it ships with dltrain"
    readers = [other for other, keys in DATASET_KEYS.items() if key in keys]
    listed = ", ".join(readers[:-1]) + " and " + readers[-1] if len(readers) > 1 else readers[0]
    return f"only {listed} {'do' if len(readers) > 1 else 'does'}"


class AugmentationConfig(Strict):
    """ImageDataGenerator's vocabulary and Keras 3's RandAugment, RandomErasing, MixUp and
    CutMix, implemented with Keras preprocessing layers."""

    horizontal_flip: bool = False
    vertical_flip: bool = False
    rotation_range: float = Field(0, ge=0, le=180, description="Degrees, as ImageDataGenerator.")
    width_shift_range: float = Field(0, ge=0, lt=1, description="Fraction of the width.")
    height_shift_range: float = Field(0, ge=0, lt=1, description="Fraction of the height.")
    zoom_range: float | tuple[float, float] = Field(0, description="z or [lower, upper].")
    fill_mode: Literal["nearest", "constant", "reflect", "wrap"] = "nearest"
    cval: float = Field(0, description="Fill value for fill_mode: constant.")
    brightness_range: tuple[float, float] | None = Field(
        None, description="[low, high]: multiply each image's brightness by a factor in it.")
    rand_augment: int = Field(
        0, ge=0, le=10, description="Keras RandAugment: that many of its ops on each image; 0: off.")
    rand_augment_factor: float = Field(
        0.5, gt=0, le=1, description="RandAugment's strength of each op, in (0, 1].")
    random_erasing: float = Field(
        0, ge=0, le=1, description="Keras RandomErasing (cutout): the chance that an image gets "
        "a rectangle of noise; 0: off.")
    mixup: float = Field(
        0, ge=0, description="Keras MixUp's alpha: each image and its label mixed with another "
        "of the batch by a Beta(alpha, alpha) weight; 0: off. Needs one-hot labels.")
    cutmix: float = Field(
        0, ge=0, le=1, description="Keras CutMix's factor: a patch of another image of the batch "
        "pasted in, the labels mixed by its area; 0: off. Needs one-hot labels.")

    @property
    def mixes_labels(self) -> list[str]:
        """The keys asked for that mix the labels too (MixUp, CutMix)."""
        return [key for key in ("mixup", "cutmix") if getattr(self, key)]

    @model_validator(mode="before")
    @classmethod
    def _explain_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in UNSUPPORTED_AUGMENTATION:
                    hint = UNSUPPORTED_AUGMENTATION[key]
                    raise ValueError(f"'{key}' is not supported by dltrain's augmentation; {hint}")
        return data

    @field_validator("zoom_range")
    @classmethod
    def _zoom_bounds(cls, value: float | tuple[float, float]) -> float | tuple[float, float]:
        low, high = (1 - value, 1 + value) if isinstance(value, (int, float)) else value
        if not 0 < low <= high:
            raise ValueError("must be z in [0, 1) or [lower, upper] with 0 < lower <= upper")
        return value

    @field_validator("brightness_range")
    @classmethod
    def _brightness_bounds(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high, e.g. [0.8, 1.2]")
        return value
