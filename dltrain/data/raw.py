"""What every dataset reader returns: train and test arrays as stored, checked for agreement."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from dltrain.errors import DataError


@dataclass
class Raw:
    """Train and test arrays as stored, with class names where the dataset defines them."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str] | None = None
    target_names: list[str] | None = None  # a regression's target columns, where they are named
    feature_names: list[str] | None = None  # a table's feature columns, in the model's order


def refuse_special(path: Path, reads: str = "dltrain reads a dataset from files.") -> None:
    """A pipe, socket or device where a file is expected: opening a FIFO waits for a writer
    forever, and /dev/zero never ends."""
    if path.exists() and not path.is_file() and not path.is_dir():
        raise DataError(f"{path}: not a regular file (a pipe, socket or device). {reads}")


def split_off(count: int, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices for a source without a test file, seeded by test_split_seed."""
    order = np.random.default_rng(seed).permutation(count)
    cut = count - max(1, round(count * fraction))
    if cut < 1:
        raise DataError(f"dataset.test_split {fraction} of {count} samples leaves no training data.")
    return np.sort(order[:cut]), np.sort(order[cut:])


def checked(raw: Raw, where: str) -> Raw:
    """Flatten labels and check that x and y agree in length, that the features are finite
    numbers and that train and test samples have one shape.

    Targets with several columns (a regression's) keep them; one column becomes a vector.
    """
    for split in ("y_train", "y_test"):
        y = getattr(raw, split)
        if y.ndim != 2 or y.shape[1] == 1:
            setattr(raw, split, y.reshape(-1))
    for split in ("train", "test"):
        x, y = getattr(raw, f"x_{split}"), getattr(raw, f"y_{split}")
        if len(x) != len(y):
            raise DataError(f"{where}: x_{split} has {len(x)} samples but y_{split} has {len(y)}.")
        if len(x) == 0:
            raise DataError(f"{where}: the {split} split is empty.")
    for split in ("x_train", "x_test"):
        x = getattr(raw, split)
        if x.dtype.kind not in "biuf":  # text, dates, complex numbers: nothing a model takes
            kind = f"text ({x.dtype.str})" if x.dtype.kind in "US" else str(x.dtype)
            raise DataError(f"{where}: {split} holds {kind} values; features must be numbers "
                            "(integers, floats or booleans).")
        if x.dtype.kind == "f" and not np.isfinite(x).all():
            sample = int(np.argwhere(~np.isfinite(x.reshape(len(x), -1)))[0][0])
            raise DataError(f"{where}: {split} holds a value that is not a finite number (NaN or "
                            f"infinite), first in sample {sample}.")
    if raw.x_train.shape[1:] != raw.x_test.shape[1:]:
        raise DataError(f"{where}: train samples have shape {raw.x_train.shape[1:]} but test "
                        f"samples {raw.x_test.shape[1:]}.")
    return raw
