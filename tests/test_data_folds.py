"""K folds of the training data: disjoint, covering, stratified for classifiers, seeded."""

from __future__ import annotations

import numpy as np
import pytest

from dltrain.data.folds import class_labels, fold_splits, folds_digest, make_folds
from dltrain.data.prepare import Preparation, Splits
from dltrain.errors import DataError


def skewed_labels(counts: list[int], seed: int = 0) -> np.ndarray:
    y = np.repeat(np.arange(len(counts)), counts)
    return y[np.random.default_rng(seed).permutation(len(y))]


def splits_of(y: np.ndarray) -> Splits:
    x = np.arange(len(y), dtype=np.float32)[:, None] * np.ones((1, 3), dtype=np.float32)
    return Splits(x, y, None, None, np.zeros((4, 3), np.float32), np.zeros(4, np.int64),
                  int(y.max()) + 1, None, Preparation(1.0), notes=["a note"])


@pytest.mark.parametrize("k", [2, 3, 5])
def test_folds_are_disjoint_cover_the_data_and_are_stratified(k: int) -> None:
    counts = [40, 30, 20, 10]
    y = skewed_labels(counts)
    folds = make_folds(y, k, seed=42, stratified=True)
    assert [fold.index for fold in folds] == list(range(k))
    held = np.concatenate([fold.validation for fold in folds])
    assert sorted(held.tolist()) == list(range(len(y)))  # each sample validates exactly once
    for fold in folds:
        assert not set(fold.train.tolist()) & set(fold.validation.tolist())
        assert sorted([*fold.train.tolist(), *fold.validation.tolist()]) == list(range(len(y)))
        got = np.bincount(y[fold.validation], minlength=4)
        # Each class splits into K parts whose sizes differ by at most one.
        assert np.abs(got - np.array(counts) / k).max() < 1


def test_folds_are_seeded() -> None:
    y = skewed_labels([30, 30, 30])
    same = [make_folds(y, 3, seed=7, stratified=True) for _ in range(2)]
    other = make_folds(y, 3, seed=8, stratified=True)
    assert folds_digest(same[0]) == folds_digest(same[1])
    assert folds_digest(same[0]) != folds_digest(other)
    for a, b in zip(*same, strict=True):
        np.testing.assert_array_equal(a.validation, b.validation)


def test_plain_folds_for_other_losses_cover_the_data() -> None:
    y = np.linspace(0, 1, 11, dtype=np.float32)  # regression targets: no classes to stratify
    folds = make_folds(y, 3, seed=0, stratified=False)
    assert sorted(len(fold.validation) for fold in folds) == [3, 4, 4]
    assert sorted(np.concatenate([f.validation for f in folds]).tolist()) == list(range(11))


def test_one_hot_and_column_labels_are_read_as_classes() -> None:
    y = np.array([2, 0, 1, 2])
    np.testing.assert_array_equal(class_labels(np.eye(3, dtype=np.float32)[y]), y)
    np.testing.assert_array_equal(class_labels(y[:, None]), y)
    np.testing.assert_array_equal(class_labels(y), y)


def test_fold_splits_hold_out_the_fold_and_keep_the_test_split() -> None:
    y = skewed_labels([6, 6])
    splits = splits_of(y)
    fold = make_folds(y, 3, seed=1, stratified=True)[1]
    made = fold_splits(splits, fold)
    np.testing.assert_array_equal(made.x_val[:, 0], fold.validation)  # x holds its own index
    np.testing.assert_array_equal(made.y_val, y[fold.validation])
    np.testing.assert_array_equal(made.x_train[:, 0], fold.train)
    assert made.x_test is splits.x_test and made.y_test is splits.y_test
    made.notes.append("another")  # each fold's notes are its own
    assert splits.notes == ["a note"]


def test_fewer_than_two_folds_is_refused() -> None:
    with pytest.raises(DataError, match=r"--folds must be at least 2.*Received: 1. Try --folds 5"):
        make_folds(skewed_labels([5, 5]), 1, seed=0, stratified=True)


def test_more_folds_than_the_smallest_class_is_refused() -> None:
    with pytest.raises(DataError, match=(
            r"--folds 4 is more than the 3 training samples of class 2, the smallest class; "
            r"stratified folds need each class in every fold\. Use --folds 3 or fewer")):
        make_folds(skewed_labels([10, 8, 3]), 4, seed=0, stratified=True)


def test_more_folds_than_samples_is_refused() -> None:
    with pytest.raises(DataError, match=r"--folds 6 is more than the 5 training samples.*"
                                        r"Use --folds 5 or fewer"):
        make_folds(np.zeros(5, np.float32), 6, seed=0, stratified=False)
