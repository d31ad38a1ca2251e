"""Classification or regression: the task from the loss or `task:`, and each mismatch refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import run_cli
from dltrain.config.load import load_config, validate
from dltrain.config.task import check_task
from dltrain.errors import ConfigError
from dltrain.tasks.registry import kind_of_loss


def config(**sections: Any) -> Any:
    raw: dict[str, Any] = {
        "name": "tiny", "dataset": {"name": "csv", "path": "t.csv", "label_column": "y"},
        "model": {"input_shape": [3], "layers": [{"Dense": {"units": 1}}]}, "loss": "mse"}
    for key, value in sections.items():
        if isinstance(value, dict) and isinstance(raw.get(key), dict):
            raw[key] = {**raw[key], **value}
        else:
            raw[key] = value
    return validate(raw, "test.yaml")


def task_error(**sections: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        check_task(config(**sections))
    return str(caught.value)


@pytest.mark.parametrize("loss", [
    "mse", "MSE", "mean_squared_error", "MeanSquaredError", "mae", "mean_absolute_error",
    "huber", "Huber", "log_cosh", "LogCosh", "mean_squared_logarithmic_error", "msle", "mape",
    "mean_absolute_percentage_error", "poisson", "cosine_similarity"])
def test_regression_losses_in_every_keras_spelling(loss: str) -> None:
    assert kind_of_loss(loss) == "regression"
    assert config(loss=loss).is_regression


def test_the_task_follows_the_loss_or_an_explicit_task() -> None:
    assert config().is_regression and not config().is_classifier
    classifier = config(loss="binary_crossentropy", metrics=["accuracy"])
    assert classifier.is_classifier and not classifier.is_regression
    # A loss dltrain does not know (tversky) is a regression when the config says so.
    explicit = config(loss="tversky", task="regression")
    assert explicit.is_regression and explicit.loss_kind == "regression"
    assert not config(loss="tversky").is_regression


def test_a_regression_gets_mae_instead_of_accuracy_by_default() -> None:
    assert config().metrics == ["mae"]
    assert config(loss={"name": "huber", "delta": 2.0}).metrics == ["mae"]
    assert config(loss="binary_crossentropy").metrics == ["accuracy"]
    assert config(metrics=["root_mean_squared_error"]).metrics == ["root_mean_squared_error"]
    assert "val_mae" in config(dataset={"validation_split": 0.1}).monitorable()


def test_regression_config_passes() -> None:
    dataset = {"standardize_target": True, "label_column": ["a", "b"]}
    regression = config(dataset=dataset)
    check_task(regression)
    assert regression.is_regression and regression.dataset.standardize_target
    assert regression.dataset.label_columns == ["a", "b"] and regression.metrics == ["mae"]
    # The same dataset keys are what check_task refuses once the loss makes it a classifier.
    assert task_error(loss="binary_crossentropy", dataset=dataset).startswith(
        "dataset.standardize_target: scales a regression's targets")


@pytest.mark.parametrize(("sections", "expected"), [
    ({"task": "regression", "loss": "sparse_categorical_crossentropy"},
     "loss: sparse_categorical_crossentropy is a classification loss, but task is regression. "
     "For a regression use a regression loss (mse, mae, huber, log_cosh, ...) with a linear "
     "last layer, or remove task: regression."),
    ({"task": "classification"},
     "loss: mse is a regression loss, but task is classification. For a classification use "
     "sparse_categorical_crossentropy (softmax) or binary_crossentropy (sigmoid), or set "
     "task: regression."),
    ({"metrics": ["mae", "accuracy"]},
     "metrics.1: accuracy counts predictions equal to class ids, which a regression (loss mse) "
     "does not make. Use mae, mse or root_mean_squared_error, or remove metrics for the "
     "default [mae]."),
    ({"metrics": [{"name": "binary_accuracy", "threshold": 0.3}]},
     "metrics.0: binary_accuracy counts predictions equal to class ids"),
    ({"loss": "binary_crossentropy", "metrics": ["accuracy"],
      "dataset": {"standardize_target": True}},
     "dataset.standardize_target: scales a regression's targets, but loss binary_crossentropy "
     "is a classification loss (its targets are class ids). Remove standardize_target, or use "
     "a regression loss (mse, mae, huber, ...)."),
    ({"loss": "sparse_categorical_crossentropy", "metrics": ["accuracy"],
      "dataset": {"label_column": ["a", "b"]}},
     "dataset.label_column: a classifier takes one label column; received 2 (a, b). Several "
     "target columns are for a regression: use a regression loss (mse, mae, huber, ...)."),
    ({"dataset": {"name": "npz", "path": "t.npz", "label_column": None, "label_map": {0: 1}}},
     "dataset.label_map: relabels class ids, but loss mse makes this a regression. Remove "
     "label_map, or use a classification loss."),
    ({"dataset": {"one_hot": True}},
     "dataset.one_hot: encodes class ids, but loss mse makes this a regression, whose targets "
     "are used as they are. Remove one_hot."),
])
def test_each_task_mismatch_says_which(sections: dict[str, Any], expected: str) -> None:
    assert task_error(**sections).startswith(expected)


def test_label_column_takes_a_name_or_a_list() -> None:
    assert config().dataset.label_columns == ["y"]
    assert config(dataset={"label_column": ["a", "b"]}).dataset.label_columns == ["a", "b"]
    with pytest.raises(ConfigError, match="label_column"):
        config(dataset={"label_column": []})


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    return path


REGRESSION = """\
name: tiny
dataset: {name: csv, path: t.csv, label_column: y}
model:
  input_shape: [3]
  layers:
    - Dense: {units: 8, activation: relu}
    - Dense: {units: 1, activation: %s}
loss: mse
"""


@pytest.mark.parametrize(("activation", "expected"), [
    ("softmax", "model.layers.1.Dense (line 7): loss mse is a regression loss, but the last layer "
     "ends in softmax, a classifier's output (class probabilities that sum to 1). Remove its "
     "activation for a linear output, or use sparse_categorical_crossentropy for a "
     "classification."),
    ("sigmoid", "model.layers.1.Dense (line 7): loss mse is a regression loss, but the last layer "
     "ends in sigmoid, a classifier's output (a probability in (0, 1)). Remove its activation for "
     "a linear output, or use binary_crossentropy for a classification; for targets that are "
     "fractions in [0, 1], set task: regression to keep the sigmoid."),
])
def test_a_regression_loss_with_a_classifier_output_is_refused_at_show(
        activation: str, expected: str, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, REGRESSION % activation)
    for args in ([], ["--no-summary"]):
        code, _, err = run_cli(capsys, "show", path, *args)
        assert code == 2
        assert f"error: {path}: {expected}" in " ".join(err.split())


def test_an_explicit_regression_keeps_a_sigmoid_and_a_linear_output_passes(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, REGRESSION % "sigmoid" + "task: regression\n")
    assert run_cli(capsys, "show", path)[0] == 0
    path.write_text(REGRESSION % "linear")
    code, out, err = run_cli(capsys, "show", path)
    assert code == 0, err
    assert load_config(path).config.metrics == ["mae"]


def test_an_activation_layer_at_the_end_counts_too(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, REGRESSION % "linear" + "")
    text = path.read_text().replace("loss: mse", "    - Softmax\nloss: mse")
    path.write_text(text)
    code, _, err = run_cli(capsys, "show", path)
    assert code == 2
    assert "model.layers.2.Softmax (line 8): loss mse is a regression loss, but the last layer " \
           "ends in softmax" in " ".join(err.split())


def test_a_regression_monitors_its_validation_loss_by_default() -> None:
    regression = config(dataset={"validation_split": 0.2}, training={"early_stopping": {}})
    assert regression.checkpoint_monitor == "val_loss"
    assert regression.training.early_stopping.monitor == "val_loss"
    assert config().checkpoint_monitor == "loss"  # no validation data: the training loss


BINARY = REGRESSION.replace("loss: mse", "loss: binary_crossentropy")


def refused_at_show(capsys: pytest.CaptureFixture[str], path: Path) -> str:
    """`dltrain show --no-summary`'s message, on one line; it must exit 2."""
    code, _, err = run_cli(capsys, "show", path, "--no-summary")
    assert code == 2, err
    return " ".join(err.split())


def test_a_softmax_over_one_unit_with_a_binary_loss_is_refused_at_its_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It trained to 33% on Pima (every sample class 1), and smoke passed it.
    path = write_config(tmp_path, BINARY % "softmax")
    assert (f"error: {path}: model.layers.1.Dense.activation (line 7): a softmax over 1 unit is "
            "always 1.0, so every sample would be predicted class 1. Use activation: sigmoid with "
            "binary_crossentropy, or 2 units with sparse_categorical_crossentropy."
            ) in refused_at_show(capsys, path)
    path.write_text(BINARY % "sigmoid")
    assert run_cli(capsys, "show", path, "--no-summary")[0] == 0


@pytest.mark.parametrize(("metric", "why"), [
    ("f1_score", "needs one output per class (Keras's F1Score fails on one unit)"),
    ("{name: F1Score, average: macro}",
     "needs one output per class (Keras's F1Score fails on one unit)"),
    ("sparse_categorical_accuracy",
     "takes the largest of the outputs as the class, always class 0 with one unit")])
def test_a_metric_one_output_unit_cannot_feed_is_refused_at_its_index(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], metric: str, why: str) -> None:
    # f1_score failed in fit's first step (internal error); sparse_categorical_accuracy showed
    # the share of class 0 as an accuracy.
    path = write_config(tmp_path, BINARY % "sigmoid" + f"metrics: [accuracy, {metric}]\n")
    assert (f"metrics.1 (line 9): {metric.split(', ')[0].removeprefix('{name: ')} {why}, but "
            "binary_crossentropy trains one output unit with labels 0 and 1. Use accuracy, "
            "precision, recall or auc (fit's report shows each class's F1 at the end)."
            ) in refused_at_show(capsys, path)


@pytest.mark.parametrize(("layer", "loss", "expected"), [
    ({"Dense": {"units": 1}}, "binary_crossentropy",
     "model.layers.0.Dense has no activation, so it outputs logits (any real number), but loss "
     "binary_crossentropy reads probabilities and will train badly. Add activation: sigmoid, or "
     "give the loss logits: loss: {name: binary_crossentropy, from_logits: true}."),
    ({"Dense": {"units": 3, "activation": "linear"}}, "sparse_categorical_crossentropy",
     "Add activation: softmax, or give the loss logits: loss: {name: "
     "sparse_categorical_crossentropy, from_logits: true}."),
    ({"Dense": {"units": 3, "activation": "softmax"}},
     {"name": "categorical_crossentropy", "from_logits": True},
     "model.layers.0.Dense ends in softmax, which gives probabilities, but the loss has "
     "from_logits: true and applies a softmax to them again. Remove the activation, or "
     "from_logits."),
    ({"Dense": {"units": 1, "activation": "sigmoid"}},
     {"name": "binary_crossentropy", "from_logits": True}, "ends in sigmoid"),
])
def test_an_output_and_a_loss_that_disagree_on_logits_get_a_note(
        layer: dict[str, Any], loss: Any, expected: str, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "dataset": {"name": "csv", "path": "t.csv", "label_column": "y"},
        "model": {"input_shape": [3], "layers": [layer]}, "loss": loss}))
    notes = load_config(path).notes
    assert len(notes) == 1 and expected in notes[0]


@pytest.mark.parametrize(("layer", "loss"), [
    ({"Dense": {"units": 1, "activation": "sigmoid"}}, "binary_crossentropy"),
    ({"Dense": {"units": 1}}, {"name": "binary_crossentropy", "from_logits": True}),
    ({"Softmax": {}}, "sparse_categorical_crossentropy"),
    ({"Dense": {"units": 1}}, "hinge"),  # no from_logits: its outputs are scores
    ({"Dense": {"units": 1}}, "mse"),
])
def test_an_output_and_a_loss_that_agree_get_no_note(
        layer: dict[str, Any], loss: Any, tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({
        "name": "tiny", "dataset": {"name": "csv", "path": "t.csv", "label_column": "y"},
        "model": {"input_shape": [3], "layers": [layer]}, "loss": loss}))
    assert load_config(path).notes == []
