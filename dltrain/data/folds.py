"""K folds of the training data for cross-validation: seeded, stratified for classifiers.

Only the training split is divided; the test split stays as it is, for every fold alike.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass

import numpy as np

from dltrain.data.prepare import Splits
from dltrain.errors import DataError


@dataclass
class Fold:
    """One fold: the rows of the training data it trains on and the rows it holds out."""

    index: int
    train: np.ndarray
    validation: np.ndarray


def class_labels(y: np.ndarray) -> np.ndarray:
    """Integer classes from encoded labels: one-hot rows, a single column, or plain labels."""
    if y.ndim == 2 and y.shape[1] > 1:
        return np.argmax(y, axis=1)
    return y.reshape(len(y))


def make_folds(y: np.ndarray, k: int, seed: int, stratified: bool) -> list[Fold]:
    """K disjoint folds covering every row of `y` once, shuffled with `seed`.

    Stratified (scikit-learn's StratifiedKFold) keeps each class's share in every fold; plain
    KFold is for losses with no classes.

    Raises:
        DataError: fewer than two folds, or more than the samples (of the smallest class).
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    if k < 2:
        raise DataError("--folds must be at least 2: each fold trains on the others and "
                        f"validates on itself. Received: {k}. Try --folds 5.")
    if k > len(y):
        raise DataError(f"--folds {k} is more than the {len(y)} training samples; each fold "
                        f"needs one. Use --folds {len(y)} or fewer.")
    if stratified:
        labels = class_labels(y)
        classes, counts = np.unique(labels, return_counts=True)
        smallest = int(np.argmin(counts))
        if k > counts[smallest]:
            raise DataError(
                f"--folds {k} is more than the {counts[smallest]} training samples of class "
                f"{classes[smallest]}, the smallest class; stratified folds need each class in "
                f"every fold. Use --folds {counts[smallest]} or fewer, or more training data "
                "(dataset.train_limit).")
        parts = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), labels)
    else:
        parts = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    return [Fold(index, train, validation) for index, (train, validation) in enumerate(parts)]


def fold_splits(splits: Splits, fold: Fold) -> Splits:
    """The data of one fold: the others' rows to train on, its own to validate on, the same
    test split. Each fold gets its own notes and preparation (a fit may record flattening)."""
    return dataclasses.replace(
        splits, x_train=splits.x_train[fold.train], y_train=splits.y_train[fold.train],
        x_val=splits.x_train[fold.validation], y_val=splits.y_train[fold.validation],
        preparation=dataclasses.replace(splits.preparation), notes=list(splits.notes))


def folds_digest(folds: list[Fold]) -> str:
    """A hash of which row goes to which fold: a resumed cross-validation checks its data and
    folds are still the ones its finished folds used."""
    size = sum(len(fold.validation) for fold in folds)
    assignment = np.empty(size, dtype=np.int64)
    for fold in folds:
        assignment[fold.validation] = fold.index
    return hashlib.sha256(assignment.tobytes()).hexdigest()


def validation_counts(y: np.ndarray, fold: Fold) -> dict[str, int]:
    """How many held-out samples of each class the fold has, for cv.json."""
    classes, counts = np.unique(class_labels(y)[fold.validation], return_counts=True)
    return {str(label): int(count) for label, count in zip(classes.tolist(), counts.tolist(),
                                                           strict=True)}
