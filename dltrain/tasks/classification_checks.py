"""A classifier's config checks: the metrics, the last layer and the dataset keys must agree
with a classification loss. Each names the key that disagrees, so the error points at its line
of the config file.
"""

from __future__ import annotations

from dltrain.errors import ConfigError
from dltrain.tasks.base import ConfigFacts, output_activation, squash

REGRESSION_LOSSES = "mse, mae, huber, log_cosh, ..."
SHORT_LIST = "mse, mae, huber, ..."
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
def check_loss_task(facts: ConfigFacts) -> None:
    """A classification loss under `task: regression`."""
    if facts.task == "regression":
        raise ConfigError(f"loss: {facts.loss} is a classification loss, but task is regression. "
                          f"For a regression use a regression loss ({REGRESSION_LOSSES}) with a "
                          "linear last layer, or remove task: regression.")


def check_metric_labels(facts: ConfigFacts, kind: str) -> None:
    """Each metric takes the labels the loss's kind gives: class ids or one-hot vectors."""
    for index, name in enumerate(facts.metrics):
        squashed = squash(name)
        if kind == "sparse_categorical" and squashed in ONE_HOT_METRICS:
            raise ConfigError(f"metrics.{index}: {name} compares labels with the outputs value "
                              f"by value, but {facts.loss}'s labels are class ids. Use "
                              "loss: categorical_crossentropy (dltrain one-hot encodes the labels) "
                              "to get it, or a metric for class ids: accuracy, "
                              "sparse_top_k_categorical_accuracy.")
        if kind == "binary" and squashed in ONE_UNIT_REFUSED:
            raise ConfigError(f"metrics.{index}: {name} {ONE_UNIT_REFUSED[squashed]}, but "
                              f"{facts.loss} trains one output unit with labels 0 and 1. "
                              "Use accuracy, precision, recall or auc (fit's report shows each "
                              "class's F1 at the end).")
        if kind == "categorical" and squashed.startswith("sparse"):
            raise ConfigError(f"metrics.{index}: {name} takes class ids, but {facts.loss}'s "
                              "labels are one-hot vectors. Use its one-hot counterpart "
                              "(categorical_accuracy, top_k_categorical_accuracy), or accuracy.")


def check_binary_output(facts: ConfigFacts, kind: str) -> None:
    """A softmax over one unit is 1.0 whatever the input: every sample is predicted class 1."""
    index, layer, args = facts.last_index, facts.last_layer, facts.last_args
    if (kind == "binary" and layer == "Dense" and isinstance(args, dict)
            and args.get("units") == 1 and output_activation(layer, args) == "softmax"):
        raise ConfigError(f"model.layers.{index}.Dense.activation: a softmax over 1 unit is always "
                          f"1.0, so every sample would be predicted class 1. Use activation: "
                          f"sigmoid with {facts.loss}, or 2 units with "
                          "sparse_categorical_crossentropy.")


# Losses with from_logits, by squashed name: they read the outputs as probabilities unless told.
LOGIT_LOSSES = {"binarycrossentropy", "bce", "binaryfocalcrossentropy", "categoricalcrossentropy",
                "categoricalfocalcrossentropy", "sparsecategoricalcrossentropy"}


def logit_notes(facts: ConfigFacts, kind: str) -> list[str]:
    """The last layer and the loss must agree on what the outputs are: a Dense without an
    activation gives logits, which a loss reading probabilities clips into nonsense; a softmax or
    sigmoid gives probabilities, which from_logits: true squashes a second time. Both still
    train (badly), so they are notes, not errors."""
    if squash(facts.loss) not in LOGIT_LOSSES:
        return []
    index, layer, args = facts.last_index, facts.last_layer, facts.last_args
    if not isinstance(args, dict):
        return []
    activation = output_activation(layer, args)
    squashing = "sigmoid" if kind == "binary" else "softmax"
    name = facts.loss
    if layer == "Dense" and activation in (None, "linear") and not facts.from_logits:
        return [f"model.layers.{index}.Dense has no activation, so it outputs logits (any real "
                f"number), but loss {name} reads probabilities and will train badly. Add "
                f"activation: {squashing}, or give the loss logits: loss: {{name: {name}, "
                "from_logits: true}."]
    if activation in ("softmax", "sigmoid") and facts.from_logits:
        return [f"model.layers.{index}.{layer} ends in {activation}, which gives probabilities, "
                f"but the loss has from_logits: true and applies a {squashing} to them again. "
                f"Remove the activation, or from_logits."]
    return []


def check_class_targets(facts: ConfigFacts, kind: str, loss: str) -> None:
    """The metrics, the last layer and the dataset keys of a model whose targets are not a
    regression's; `loss` says what the loss is, for the messages."""
    check_metric_labels(facts, kind)
    check_binary_output(facts, kind)
    columns = facts.label_columns
    if facts.standardize_target:
        raise ConfigError(f"dataset.standardize_target: scales a regression's targets, but "
                          f"{loss}. Remove standardize_target, or use a regression loss "
                          f"({SHORT_LIST}).")
    if len(columns) > 1:
        raise ConfigError(f"dataset.label_column: a classifier takes one label column; received "
                          f"{len(columns)} ({', '.join(columns)}). Several target columns are "
                          f"for a regression: use a regression loss ({SHORT_LIST}).")


