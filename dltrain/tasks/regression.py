"""Regression: numeric targets (several columns allowed), a linear output per target, MAE,
RMSE and R² in the targets' own units with their plots, predict's values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dltrain.errors import ConfigError, DataError
from dltrain.tasks.base import (
    ConfigFacts,
    Figure,
    Labels,
    LossKind,
    TargetScale,
    Task,
    output_activation,
    squash,
)
from dltrain.tasks.regression_report import regression_report

# Metrics that count class ids: 0 (or noise) for numeric targets. By squashed name.
CLASS_METRICS = {"accuracy", "acc", "binaryaccuracy", "categoricalaccuracy",
                 "sparsecategoricalaccuracy", "topkcategoricalaccuracy",
                 "sparsetopkcategoricalaccuracy", "auc", "precision", "recall", "f1score",
                 "fbetascore"}
# The last layer's activations that make a classifier's output, with what they mean.
CLASSIFIER_OUTPUTS = {"softmax": "class probabilities that sum to 1",
                      "log_softmax": "log class probabilities",
                      "sigmoid": "a probability in (0, 1)"}


@dataclass(frozen=True)
class Regression(Task):
    """A regression: numeric targets, scaled back to their own units for every report."""

    kind: LossKind = "regression"
    name: ClassVar[str] = "regression"
    losses: ClassVar[dict[str, LossKind]] = dict.fromkeys(
        ["meansquarederror", "mse", "meanabsoluteerror", "mae", "meanabsolutepercentageerror",
         "mape", "meansquaredlogarithmicerror", "msle", "huber", "logcosh", "poisson",
         "cosinesimilarity"], "regression")
    unknown_loss_kind: ClassVar[LossKind] = "regression"
    # Accuracy means nothing for numbers: the mean absolute error instead, written into the
    # config so config.yaml shows it.
    default_metrics: ClassVar[list[str] | None] = ["mae"]
    stratify_subsets: ClassVar[bool] = False  # no classes: a plain seeded sample
    numeric_targets: ClassVar[bool] = True
    report_key: ClassVar[str | None] = "regression"

    def check(self, facts: ConfigFacts) -> None:
        if facts.task == "classification":
            raise ConfigError(f"loss: {facts.loss} is a regression loss, but task is "
                              "classification. For a classification use "
                              "sparse_categorical_crossentropy (softmax) or binary_crossentropy "
                              "(sigmoid), or set task: regression.")
        check_regression(facts)

    def prepare_targets(self, labels: Labels) -> Labels:
        return regression_targets(labels)

    def check_data_fits(self, ys: list[np.ndarray], num_classes: int,
                        target_names: list[str] | None, units: int) -> None:
        check_targets_fit(ys[0], target_names, units)

    def evaluate(self, y_test: np.ndarray, outputs: np.ndarray, class_names: list[str] | None,
                 scale: TargetScale, from_logits: bool,
                 title: str) -> tuple[dict[str, Any], list[Figure]]:
        return scored(y_test, outputs, scale, title)

    def predictions(self, names: list[str], outputs: np.ndarray, saved: dict[str, Any],
                    scale: TargetScale, from_logits: bool, top_k: int) -> list[dict[str, Any]]:
        return predicted_values(names, outputs, scale)

    def actual(self, labels: dict[str, str], saved: dict[str, Any],
               label_map: dict[int, int] | None) -> Any:
        return actual_values(labels)


def check_regression(facts: ConfigFacts) -> None:
    """A regression's metrics, dataset keys and last layer."""
    name = facts.loss
    for index, metric_name in enumerate(facts.metrics):
        if squash(metric_name) in CLASS_METRICS:
            raise ConfigError(f"metrics.{index}: {metric_name} counts predictions equal to class "
                              f"ids, which a regression (loss {name}) does not make. Use mae, "
                              "mse or root_mean_squared_error, or remove metrics for the default "
                              "[mae].")
    if facts.label_map:
        raise ConfigError(f"dataset.label_map: relabels class ids, but loss {name} makes this a "
                          "regression. Remove label_map, or use a classification loss.")
    if facts.one_hot:
        raise ConfigError(f"dataset.one_hot: encodes class ids, but loss {name} makes this a "
                          "regression, whose targets are used as they are. Remove one_hot.")
    check_output(facts)



def check_output(facts: ConfigFacts) -> None:
    """A softmax or sigmoid squeezes a regression's outputs; a sigmoid may be meant for targets
    in [0, 1], which an explicit `task: regression` says."""
    index, layer, args = facts.last_index, facts.last_layer, facts.last_args
    activation = output_activation(layer, args)
    if activation not in CLASSIFIER_OUTPUTS or (activation == "sigmoid"
                                                and facts.task == "regression"):
        return
    classifier_loss = ("binary_crossentropy" if activation == "sigmoid"
                       else "sparse_categorical_crossentropy")
    fractions = ("; for targets that are fractions in [0, 1], set task: regression to keep the "
                 "sigmoid" if activation == "sigmoid" else "")
    raise ConfigError(f"model.layers.{index}.{layer}: loss {facts.loss} is a regression "
                      f"loss, but the last layer ends in {activation}, a classifier's output "
                      f"({CLASSIFIER_OUTPUTS[activation]}). Remove its activation for a linear "
                      f"output, or use {classifier_loss} for a classification{fractions}.")



def regression_targets(raw: Labels) -> Labels:
    """The targets as float32 columns, (samples, targets), named; text and NaN refused."""
    where = (f"column '{raw.columns[0]}'" if len(raw.columns) == 1 else raw.source)
    if raw.class_names is not None:
        shown = ", ".join(raw.class_names[:5]) + (", ..." if len(raw.class_names) > 5 else "")
        raise DataError(f"a regression needs numeric targets, but {where} holds text ({shown}). "
                        "Use a classification loss (sparse_categorical_crossentropy) for class "
                        "names, or point dataset.label_column at a numeric column.")
    y_train, y_test = (np.asarray(y, dtype=np.float32) for y in (raw.train, raw.test))
    y_train, y_test = (y.reshape(len(y), -1) for y in (y_train, y_test))
    if y_train.shape[1] != y_test.shape[1]:
        raise DataError(f"{where}: {y_train.shape[1]} train targets but {y_test.shape[1]} test "
                        "targets per sample.")
    if not (np.isfinite(y_train).all() and np.isfinite(y_test).all()):
        raise DataError(f"{where}: a target is not a finite number (NaN or infinite).")
    names = raw.target_names or default_names(y_train.shape[1])
    return Labels(y_train, y_test, None, names, raw.source, raw.columns)



def default_names(count: int) -> list[str]:
    return ["y"] if count == 1 else [f"y{index}" for index in range(count)]



def check_targets_fit(y_train: np.ndarray, target_names: list[str] | None,
                      output_units: int) -> None:
    count = y_train.shape[1]
    if count != output_units:
        names = ", ".join(target_names or [])
        targets = f"{count} target" + ("" if count == 1 else "s")
        units = f"{output_units} unit" + ("" if output_units == 1 else "s")
        raise DataError(f"the data has {targets} ({names}) but the last layer has {units}. Set "
                        f"the last layer's units to {count}.")



def predicted_values(names: list[str], outputs: np.ndarray,
                     preparation: TargetScale) -> list[dict[str, Any]]:
    values = preparation.undo_target(np.asarray(outputs).reshape(len(names), -1))
    targets = preparation.target_names or [f"y{i}" for i in range(values.shape[1])]
    return [{"input": name, "values": dict(zip(targets, map(float, row), strict=True))}
            for name, row in zip(names, values, strict=True)]



def actual_values(labels: dict[str, str]) -> dict[str, float | None]:
    """A regression row's own targets, where the CSV holds them (None where not a number)."""
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    return {column: number(text) for column, text in labels.items()}



def scored(y_test: np.ndarray, outputs: np.ndarray, preparation: TargetScale,
           title: str) -> tuple[dict[str, Any], list[Figure]]:
    """Scores and plots in the targets' own units: a standardised target is scaled back."""
    actual = preparation.undo_target(y_test)
    predicted = preparation.undo_target(np.asarray(outputs).reshape(actual.shape))
    names = preparation.target_names or [f"y{i}" for i in range(actual.shape[1])]
    figures = [Figure("predicted_vs_actual", (actual, predicted, names,
                                              f"{title}: predicted against actual")),
               Figure("residuals", (actual, predicted, names, f"{title}: residuals"))]
    return {**regression_report(actual, predicted, names),
            "standardized_target": preparation.target_mean is not None}, figures
