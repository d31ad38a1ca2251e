"""The evaluation report's scores in NumPy: counts, ranks and means.

scikit-learn's `metrics` gave the same figures (tests/test_tasks_scores.py holds each to it), but
importing it (and SciPy, which it loads) cost about a second of CPU in every command that
reports, for a few lines of arithmetic each.
"""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, count: int) -> np.ndarray:
    """Rows are true classes, columns predicted ones, over classes 0..count-1 (a sample with
    either label outside them is left out)."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    inside = (labels >= 0) & (labels < count) & (predicted >= 0) & (predicted < count)
    cells = labels[inside] * count + predicted[inside]
    return np.bincount(cells, minlength=count * count).reshape(count, count)


def per_class(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall, F1 and support of each class of a confusion matrix; a score whose
    denominator is 0 is 0 (scikit-learn's zero_division=0)."""
    true_positives = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = _ratio(true_positives, predicted)
    recall = _ratio(true_positives, support.astype(np.float64))
    f1 = _ratio(2 * true_positives, predicted + support)  # 2tp / (2tp + fp + fn)
    return precision, recall, f1, support


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    return np.divide(numerator, denominator, out=np.zeros_like(numerator),
                     where=denominator > 0)


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    """The area under the ROC curve of 0/1 `labels` (both present) ranked by `scores`: the
    chance that a positive outranks a negative, ties counting half (Mann-Whitney U)."""
    labels = np.asarray(labels).reshape(-1) == 1
    ranks = _average_ranks(np.asarray(scores, dtype=np.float64).reshape(-1))
    positives = int(labels.sum())
    negatives = len(labels) - positives
    above = ranks[labels].sum() - positives * (positives + 1) / 2
    return float(above / (positives * negatives))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, tied values sharing the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return ((ends - (counts - 1) / 2)[inverse]).astype(np.float64)


def top_k_accuracy(labels: np.ndarray, scores: np.ndarray, k: int) -> float:
    """The share of samples whose class is among their `k` highest scores (of tied scores,
    the later class ranks higher, as in scikit-learn)."""
    order = np.argsort(scores, axis=1, kind="mergesort")[:, ::-1][:, :k]
    return float((order == np.asarray(labels).reshape(-1, 1)).any(axis=1).mean())


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(np.abs(y_true - y_pred)))


def mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean((y_true - y_pred) ** 2))


def r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """R² of each column (one target a column), averaged: 1 - residual / total sum of squares;
    a column whose targets are all equal scores 1 if predicted exactly, else 0 (scikit-learn's
    force_finite)."""
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    constant = total == 0
    scores = np.where(constant, np.where(residual == 0, 1.0, 0.0),
                      1 - residual / np.where(constant, 1.0, total))
    return float(scores.mean())
