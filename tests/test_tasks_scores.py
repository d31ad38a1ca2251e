"""The report's NumPy scores against scikit-learn's, which they replaced (the dev extra keeps it
as the oracle): random inputs of many sizes, and the edges (ties, absent classes, constant
targets)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dltrain.tasks import scores

SEEDS = st.integers(0, 2**32 - 1)


def sk() -> Any:
    """scikit-learn's metrics, imported when a test first asks: imported with the module, it cost
    each test process 1.4 s of collection (SciPy and pandas come with it), in `make test-fast`
    too, where one of the two processes runs these tests."""
    from sklearn import metrics

    return metrics


def labelled(seed: int, count: int, samples: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, count, samples)
    # Scores rounded to tenths, so ties happen (the top-k and AUC orders must break them alike).
    probabilities = np.round(rng.random((samples, count)), 1)
    return labels, probabilities.argmax(axis=1), probabilities


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, count=st.integers(2, 12), samples=st.integers(1, 300))
def test_confusion_matrix_and_per_class_scores_are_scikit_learns(seed: int, count: int,
                                                                  samples: int) -> None:
    labels, predicted, _ = labelled(seed, count, samples)
    matrix = scores.confusion_matrix(labels, predicted, count)
    classes = list(range(count))
    np.testing.assert_array_equal(matrix, sk().confusion_matrix(labels, predicted,
                                                                labels=classes))
    expected = sk().precision_recall_fscore_support(labels, predicted, labels=classes,
                                                    zero_division=0)
    for found, wanted in zip(scores.per_class(matrix), expected, strict=True):
        np.testing.assert_allclose(found, wanted, rtol=1e-12, atol=0)


def test_a_class_never_predicted_nor_present_scores_0_and_labels_outside_are_left_out() -> None:
    labels, predicted = np.array([0, 0, 1, 3]), np.array([0, 1, 1, 0])
    matrix = scores.confusion_matrix(labels, predicted, 3)  # class 2 absent, label 3 outside
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 0, 0]]
    precision, recall, f1, support = scores.per_class(matrix)
    assert precision.tolist() == [1.0, 0.5, 0.0] and recall.tolist() == [0.5, 1.0, 0.0]
    assert f1[2] == 0.0 and support.tolist() == [2, 1, 0]


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, samples=st.integers(2, 300))
def test_roc_auc_is_scikit_learns_ties_included(seed: int, samples: int) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, samples)
    labels[:2] = [0, 1]  # both classes present, as the report requires
    values = np.round(rng.random(samples), 1)
    assert scores.roc_auc(labels, values) == pytest.approx(sk().roc_auc_score(labels, values),
                                                           abs=1e-12)


def test_roc_auc_of_a_perfect_a_reversed_and_an_all_tied_ranking() -> None:
    labels = np.array([0, 0, 1, 1])
    assert scores.roc_auc(labels, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert scores.roc_auc(labels, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert scores.roc_auc(labels, np.full(4, 0.5)) == 0.5


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, count=st.integers(6, 12), samples=st.integers(1, 300), k=st.integers(1, 5))
def test_top_k_accuracy_is_scikit_learns_ties_included(seed: int, count: int, samples: int,
                                                      k: int) -> None:
    labels, _, probabilities = labelled(seed, count, samples)
    assert scores.top_k_accuracy(labels, probabilities, k) == pytest.approx(
        sk().top_k_accuracy_score(labels, probabilities, k=k, labels=list(range(count))),
        abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(seed=SEEDS, samples=st.integers(2, 200), targets=st.integers(1, 4),
       constant=st.booleans())
def test_regression_errors_and_r2_are_scikit_learns(seed: int, samples: int, targets: int,
                                                    constant: bool) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.normal(size=(samples, targets)) * 10
    y_pred = y_true + rng.normal(size=(samples, targets))
    if constant:  # a target whose test values are all equal: force_finite's 0, or 1 if exact
        y_true[:, 0] = 3.0
        y_pred[:, 0] = 3.0 if seed % 2 else y_pred[:, 0]
    assert scores.mean_absolute_error(y_true, y_pred) == pytest.approx(
        sk().mean_absolute_error(y_true, y_pred), rel=1e-12)
    assert scores.mean_squared_error(y_true, y_pred) == pytest.approx(
        sk().mean_squared_error(y_true, y_pred), rel=1e-12)
    assert scores.r2(y_true, y_pred) == pytest.approx(sk().r2_score(y_true, y_pred),
                                                      rel=1e-9, abs=1e-12)


def test_r2_of_a_constant_target_is_1_when_exact_else_0() -> None:
    assert scores.r2(np.full(4, 2.0), np.full(4, 2.0)) == 1.0
    assert scores.r2(np.full(4, 2.0), np.array([2.0, 2.0, 2.0, 2.5])) == 0.0
    assert scores.r2(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 3.0])) == 1.0
