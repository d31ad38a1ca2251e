"""The evaluation report's arithmetic: outputs to probabilities."""

from __future__ import annotations

import numpy as np

from dltrain.tasks.classification_report import probabilities


def test_logits_of_one_unit_go_through_a_sigmoid_without_overflow() -> None:
    logits = np.array([[0.0], [2.0], [-2.0], [1000.0], [-1000.0]], np.float32)
    got = probabilities(logits, from_logits=True)
    np.testing.assert_allclose(got[:3, 0], [0.5, 1 / (1 + np.exp(-2)), 1 / (1 + np.exp(2))])
    assert got[3, 0] == 1.0 and got[4, 0] == 0.0 and np.isfinite(got).all()


def test_logits_of_several_units_go_through_a_softmax_row_by_row() -> None:
    logits = np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]], np.float32)
    got = probabilities(logits, from_logits=True)
    np.testing.assert_allclose(got.sum(axis=1), [1.0, 1.0])
    np.testing.assert_allclose(got[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    np.testing.assert_allclose(got[1], [1.0, 0.0, 0.0])


def test_probabilities_stay_as_they_are() -> None:
    outputs = np.array([[0.2, 0.8]], np.float32)
    np.testing.assert_array_equal(probabilities(outputs, from_logits=False), outputs)
