"""Classification or regression: the config's parts must agree on which task it is.

The task follows from the loss (`Config.loss_kind`) or an explicit `task:`; each check here
names the key that disagrees, so the error points at its line of the config file.
"""

from __future__ import annotations

from typing import Any

from dltrain.config.schema import CLASSIFICATION_KINDS, Config, kind_of_loss
from dltrain.errors import ConfigError

REGRESSION_LOSSES = "mse, mae, huber, log_cosh, ..."
SHORT_LIST = "mse, mae, huber, ..."
# Metrics that count class ids: 0 (or noise) for numeric targets. By squashed name.
CLASS_METRICS = {"accuracy", "acc", "binaryaccuracy", "categoricalaccuracy",
                 "sparsecategoricalaccuracy", "topkcategoricalaccuracy",
                 "sparsetopkcategoricalaccuracy", "auc", "precision", "recall", "f1score",
                 "fbetascore"}
# Metrics that compare labels with the outputs value by value: they need one-hot labels, and
# class ids fail in the first step or broadcast to nonsense. By squashed name; a name not here
# (a typo) is left to the catalog's check, which names it.
ONE_HOT_METRICS = {"auc", "precision", "recall", "f1score", "fbetascore", "categoricalaccuracy",
                   "topkcategoricalaccuracy", "binaryaccuracy", "mae", "mse", "meanabsoluteerror",
                   "meansquarederror", "rootmeansquarederror", "meanabsolutepercentageerror",
                   "mape", "meansquaredlogarithmicerror", "msle", "logcosh", "logcosherror",
                   "cosinesimilarity", "categoricalcrossentropy", "binarycrossentropy",
                   "kldivergence", "kld", "poisson", "hinge", "squaredhinge", "categoricalhinge",
                   "r2score", "precisionatrecall", "recallatprecision",
                   "sensitivityatspecificity", "specificityatsensitivity", "truepositives",
                   "falsepositives", "truenegatives", "falsenegatives", "onehotiou",
                   "onehotmeaniou"}
# Metrics that a binary classifier's one output unit (and labels of one value) cannot feed,
# with why: by squashed name. Keras's argmax over one unit is always class 0.
ONE_UNIT_REFUSED = {
    "f1score": "needs one output per class (Keras's F1Score fails on one unit)",
    "fbetascore": "needs one output per class (Keras's FBetaScore fails on one unit)",
    **dict.fromkeys(("sparsecategoricalaccuracy", "categoricalaccuracy",
                     "sparsetopkcategoricalaccuracy", "topkcategoricalaccuracy"),
                    "takes the largest of the outputs as the class, always class 0 with one unit"),
}
# The last layer's activations that make a classifier's output, with what they mean.
CLASSIFIER_OUTPUTS = {"softmax": "class probabilities that sum to 1",
                      "log_softmax": "log class probabilities",
                      "sigmoid": "a probability in (0, 1)"}


def check_task(config: Config) -> None:
    """Refuse a config whose loss, task, output layer, metrics and dataset keys disagree.

    Raises:
        ConfigError: "key.path: what disagrees, and how to fix it".
    """
    _check_loss(config)
    if config.is_regression:
        _check_regression(config)
    else:
        _check_not_regression(config)


def _check_loss(config: Config) -> None:
    kind, name = kind_of_loss(config.loss_name), config.loss_name
    if config.task == "regression" and kind in CLASSIFICATION_KINDS:
        raise ConfigError(f"loss: {name} is a classification loss, but task is regression. For a "
                          f"regression use a regression loss ({REGRESSION_LOSSES}) with a linear "
                          "last layer, or remove task: regression.")
    if config.task == "classification" and kind == "regression":
        raise ConfigError(f"loss: {name} is a regression loss, but task is classification. For "
                          "a classification use sparse_categorical_crossentropy (softmax) or "
                          "binary_crossentropy (sigmoid), or set task: regression.")


def _check_regression(config: Config) -> None:
    name = config.loss_name
    for index, metric in enumerate(config.metrics):
        metric_name = metric if isinstance(metric, str) else metric.name
        if metric_name.replace("_", "").lower() in CLASS_METRICS:
            raise ConfigError(f"metrics.{index}: {metric_name} counts predictions equal to class "
                              f"ids, which a regression (loss {name}) does not make. Use mae, "
                              "mse or root_mean_squared_error, or remove metrics for the default "
                              "[mae].")
    if config.dataset.label_map is not None:
        raise ConfigError(f"dataset.label_map: relabels class ids, but loss {name} makes this a "
                          "regression. Remove label_map, or use a classification loss.")
    if config.dataset.one_hot:
        raise ConfigError(f"dataset.one_hot: encodes class ids, but loss {name} makes this a "
                          "regression, whose targets are used as they are. Remove one_hot.")
    _check_output(config)


def _check_output(config: Config) -> None:
    """A softmax or sigmoid squeezes a regression's outputs; a sigmoid may be meant for targets
    in [0, 1], which an explicit `task: regression` says."""
    index = len(config.model.layers) - 1
    ((layer, args),) = config.model.layers[index].items()
    activation = output_activation(layer, args)
    if activation not in CLASSIFIER_OUTPUTS or (activation == "sigmoid"
                                                and config.task == "regression"):
        return
    classifier_loss = ("binary_crossentropy" if activation == "sigmoid"
                       else "sparse_categorical_crossentropy")
    fractions = ("; for targets that are fractions in [0, 1], set task: regression to keep the "
                 "sigmoid" if activation == "sigmoid" else "")
    raise ConfigError(f"model.layers.{index}.{layer}: loss {config.loss_name} is a regression "
                      f"loss, but the last layer ends in {activation}, a classifier's output "
                      f"({CLASSIFIER_OUTPUTS[activation]}). Remove its activation for a linear "
                      f"output, or use {classifier_loss} for a classification{fractions}.")


def output_activation(layer: str, args: dict[str, Any]) -> str | None:
    """The activation a layer written in the config ends in, when it names one."""
    if layer == "Softmax":
        return "softmax"
    activation = args.get("activation")
    return activation.lower() if isinstance(activation, str) else None


def _check_metric_labels(config: Config) -> None:
    """Each metric takes the labels the loss's kind gives: class ids or one-hot vectors."""
    kind = config.loss_kind
    for index, metric in enumerate(config.metrics):
        name = metric if isinstance(metric, str) else metric.name
        squashed = name.replace("_", "").lower()
        if kind == "sparse_categorical" and squashed in ONE_HOT_METRICS:
            raise ConfigError(f"metrics.{index}: {name} compares labels with the outputs value "
                              f"by value, but {config.loss_name}'s labels are class ids. Use "
                              "loss: categorical_crossentropy (dltrain one-hot encodes the labels) "
                              "to get it, or a metric for class ids: accuracy, "
                              "sparse_top_k_categorical_accuracy.")
        if kind == "binary" and squashed in ONE_UNIT_REFUSED:
            raise ConfigError(f"metrics.{index}: {name} {ONE_UNIT_REFUSED[squashed]}, but "
                              f"{config.loss_name} trains one output unit with labels 0 and 1. "
                              "Use accuracy, precision, recall or auc (fit's report shows each "
                              "class's F1 at the end).")
        if kind == "categorical" and squashed.startswith("sparse"):
            raise ConfigError(f"metrics.{index}: {name} takes class ids, but {config.loss_name}'s "
                              "labels are one-hot vectors. Use its one-hot counterpart "
                              "(categorical_accuracy, top_k_categorical_accuracy), or accuracy.")


def _check_binary_output(config: Config) -> None:
    """A softmax over one unit is 1.0 whatever the input: every sample is predicted class 1."""
    index = len(config.model.layers) - 1
    ((layer, args),) = config.model.layers[index].items()
    if (config.loss_kind == "binary" and layer == "Dense" and isinstance(args, dict)
            and args.get("units") == 1 and output_activation(layer, args) == "softmax"):
        raise ConfigError(f"model.layers.{index}.Dense.activation: a softmax over 1 unit is always "
                          f"1.0, so every sample would be predicted class 1. Use activation: "
                          f"sigmoid with {config.loss_name}, or 2 units with "
                          "sparse_categorical_crossentropy.")


# Losses with from_logits, by squashed name: they read the outputs as probabilities unless told.
LOGIT_LOSSES = {"binarycrossentropy", "bce", "binaryfocalcrossentropy", "categoricalcrossentropy",
                "categoricalfocalcrossentropy", "sparsecategoricalcrossentropy"}


def logit_notes(config: Config) -> list[str]:
    """The last layer and the loss must agree on what the outputs are: a Dense without an
    activation gives logits, which a loss reading probabilities clips into nonsense; a softmax or
    sigmoid gives probabilities, which from_logits: true squashes a second time. Both still
    train (badly), so they are notes, not errors."""
    if config.loss_name.replace("_", "").lower() not in LOGIT_LOSSES:
        return []
    index = len(config.model.layers) - 1
    ((layer, args),) = config.model.layers[index].items()
    if not isinstance(args, dict):
        return []
    activation = output_activation(layer, args)
    squash = "sigmoid" if config.loss_kind == "binary" else "softmax"
    name = config.loss_name
    if layer == "Dense" and activation in (None, "linear") and not config.from_logits:
        return [f"model.layers.{index}.Dense has no activation, so it outputs logits (any real "
                f"number), but loss {name} reads probabilities and will train badly. Add "
                f"activation: {squash}, or give the loss logits: loss: {{name: {name}, "
                "from_logits: true}."]
    if activation in ("softmax", "sigmoid") and config.from_logits:
        return [f"model.layers.{index}.{layer} ends in {activation}, which gives probabilities, "
                f"but the loss has from_logits: true and applies a {squash} to them again. "
                f"Remove the activation, or from_logits."]
    return []


def _check_not_regression(config: Config) -> None:
    _check_metric_labels(config)
    _check_binary_output(config)
    columns = config.dataset.label_columns
    loss = (f"loss {config.loss_name} is a classification loss (its targets are class ids)"
            if config.is_classifier else f"loss {config.loss_name} is not a regression loss "
            "dltrain knows (set task: regression if it is one)")
    if config.dataset.standardize_target:
        raise ConfigError(f"dataset.standardize_target: scales a regression's targets, but "
                          f"{loss}. Remove standardize_target, or use a regression loss "
                          f"({SHORT_LIST}).")
    if len(columns) > 1:
        raise ConfigError(f"dataset.label_column: a classifier takes one label column; received "
                          f"{len(columns)} ({', '.join(columns)}). Several target columns are "
                          f"for a regression: use a regression loss ({SHORT_LIST}).")
