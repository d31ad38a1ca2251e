"""What each task does with its targets, outputs and reports, on tiny arrays."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

from dltrain.errors import ConfigError, DataError
from dltrain.tasks.base import ConfigFacts, Labels
from dltrain.tasks.classification import Classification
from dltrain.tasks.other import Other
from dltrain.tasks.regression import Regression


def labels(train: Any, test: Any, **extra: Any) -> Labels:
    return Labels(np.asarray(train), np.asarray(test), extra.get("class_names"),
                  extra.get("target_names"), "d.npz", extra.get("columns", []))


class Unscaled:
    target_names = ["price"]
    target_mean = None

    def undo_target(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.float32)


def test_a_regressions_targets_are_named_float32_columns() -> None:
    prepared = Regression().prepare_targets(labels([1, 2, 3], [4]))
    assert prepared.train.dtype == np.float32 and prepared.train.shape == (3, 1)
    assert prepared.test.tolist() == [[4.0]] and prepared.target_names == ["y"]
    two = Regression().prepare_targets(labels([[1, 2]], [[3, 4]]))
    assert two.target_names == ["y0", "y1"]


def test_a_regression_refuses_text_targets_naming_the_column() -> None:
    with pytest.raises(DataError, match=r"column 'kind' holds text \(a, b\)"):
        Regression().prepare_targets(labels([0, 1], [0], class_names=["a", "b"], columns=["kind"]))


def test_a_classifier_takes_whole_floats_as_class_ids_and_refuses_fractions() -> None:
    prepared = Classification("sparse_categorical").prepare_targets(labels([0.0, 2.0], [1.0]))
    assert prepared.train.dtype == np.int64 and prepared.train.tolist() == [0, 2]
    with pytest.raises(ConfigError, match=r"loss: a binary classification loss needs class ids, "
                                          r"but d.npz has targets that are not whole numbers "
                                          r"\(e.g. 0.5\)"):
        Classification("binary").prepare_targets(labels([0.5, 1.0], [0.0]))
    untouched = labels([0.5], [1.5])
    assert Other().prepare_targets(untouched) is untouched


def test_negative_class_ids_are_refused_where_they_are() -> None:
    with pytest.raises(DataError, match=r"d.npz: class ids count from 0, but the labels hold -1 "
                                        r"\(y_test row 1\)"):
        Classification("categorical").check_labels(labels([0, 1], [1, -1]))
    Classification("binary").check_labels(labels([0, 1], [1, -1]))  # a hinge's -1/1 kept


def test_the_output_layers_units_must_fit_the_loss() -> None:
    with pytest.raises(ConfigError, match=re.escape(
            "loss: bce expects 1 output unit (sigmoid), but the last layer has 3 units.")):
        Classification("binary").check_output_units("bce", 3)
    with pytest.raises(ConfigError, match="needs one output unit per class, but the last layer "
                                          "has 1 unit"):
        Classification("sparse_categorical").check_output_units("sparse_categorical_crossentropy", 1)
    Regression().check_output_units("mse", 1)
    Other().check_output_units("my_loss", 1)


def test_the_data_must_fit_the_outputs() -> None:
    with pytest.raises(DataError, match=r"a binary loss needs labels 0 and 1; the data has labels "
                                        r"\[1, 2\]. Map them with dataset.label_map: \{1: 0, 2: 1\}"):
        Classification("binary").check_data_fits([np.array([1, 2]), np.array([2])], 3, None, 1)
    with pytest.raises(DataError, match="the data has 4 classes but the last layer has 2 units"):
        Other().check_data_fits([np.array([0, 3])], 4, None, 2)
    with pytest.raises(DataError, match=r"the data has 2 targets \(a, b\) but the last layer has "
                                        "1 unit"):
        Regression().check_data_fits([np.zeros((3, 2))], 0, ["a", "b"], 1)


def facts(**changes: Any) -> ConfigFacts:
    base = {"loss": "mse", "task": None, "from_logits": False, "metrics": ["mae"],
            "last_index": 2, "last_layer": "Dense", "last_args": {"units": 1},
            "label_map": False, "one_hot": None, "standardize_target": False,
            "label_columns": []}
    return ConfigFacts(**{**base, **changes})


def test_each_tasks_check_names_the_key_that_disagrees() -> None:
    with pytest.raises(ConfigError, match=r"model.layers.2.Dense: loss mse is a regression loss, "
                                          "but the last layer ends in softmax"):
        Regression().check(facts(last_args={"units": 1, "activation": "softmax"}))
    Regression().check(facts(task="regression", last_args={"units": 1, "activation": "sigmoid"}))
    with pytest.raises(ConfigError, match="dataset.standardize_target: .* loss my_loss is not a "
                                          "regression loss dltrain knows"):
        Other().check(facts(loss="my_loss", metrics=[], standardize_target=True))
    with pytest.raises(ConfigError, match="metrics.0: f1_score needs one output per class"):
        Classification("binary").check(facts(loss="bce", metrics=["f1_score"]))


def test_a_logit_output_is_noted_for_a_classifier_only() -> None:
    logits = facts(loss="sparse_categorical_crossentropy", metrics=[],
                   last_args={"units": 3})
    assert "outputs logits" in Classification("sparse_categorical").notes(logits)[0]
    assert Other().notes(logits) == [] and Regression().notes(logits) == []


def test_evaluation_reports_and_pictures() -> None:
    report, figures = Classification("sparse_categorical").evaluate(
        np.array([0, 1, 1]), np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), ["cat", "dog"],
        Unscaled(), False, "t")
    assert report["accuracy"] == pytest.approx(2 / 3) and report["class_names"] == ["cat", "dog"]
    assert [figure.plot for figure in figures] == ["confusion_matrix"]
    report, figures = Regression().evaluate(np.array([[1.0], [3.0]]), np.array([[2.0], [3.0]]),
                                            None, Unscaled(), False, "t")
    assert report["mae"] == pytest.approx(0.5) and report["standardized_target"] is False
    assert [figure.plot for figure in figures] == ["predicted_vs_actual", "residuals"]


def test_predict_prints_classes_or_values() -> None:
    saved = {"class_names": ["no", "yes"], "num_classes": 2}
    top = Classification("binary").predictions(["a"], np.array([[0.0]]), saved, Unscaled(),
                                               True, 1)
    assert top == [{"input": "a", "top": [{"class": "no", "index": 0, "probability": 0.5}]}]
    assert Classification("binary").actual({"label": "1"}, saved, None) == "yes"
    values = Regression().predictions(["a"], np.array([[2.5]]), {}, Unscaled(), False, 1)
    assert values == [{"input": "a", "values": {"price": 2.5}}]
    assert Regression().actual({"price": "x"}, {}, None) == {"price": None}


def test_export_parity_compares_classes_for_a_classifier_only() -> None:
    reference, labels_ = Classification("categorical").parity(
        np.array([[0.0, 0.0]]), np.array([[0.0, 1.0]]), True)
    assert reference.tolist() == [[0.5, 0.5]] and labels_ is not None and labels_.tolist() == [1]
    outputs = np.array([[1.5]])
    assert Regression().parity(outputs, np.array([[1.0]]), False)[1] is None
    assert Other().parity(outputs, np.array([1]), False) == (outputs, None)
