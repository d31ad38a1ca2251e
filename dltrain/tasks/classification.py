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


EXACT_INTEGERS = 2**53  # a float64 holds every whole number below this, and no class id is near


def class_ids(raw: Raw, cfg: DatasetConfig, loss_kind: LossKind) -> Raw:
    """Float labels that are whole numbers (1.0, 2.0) are class ids; others are a regression's."""
    ys = [raw.y_train, raw.y_test]
    if any(y.ndim > 1 for y in ys):
        raise DataError(f"{cfg.path or cfg.name}: a classifier takes one class id per sample, "
                        f"but the labels have shape {list(raw.y_train.shape)}. For several "
                        "numeric targets use a regression loss (mse, mae, huber, ...).")
    if all(y.dtype.kind in "iub" for y in ys) or raw.class_names is not None:
        return raw
    values = np.concatenate(ys).astype(np.float64)
    fractional = values[~np.isfinite(values) | (values != np.round(values))]
    if fractional.size:
        where = cfg.path or cfg.name
        examples = ", ".join(f"{value:g}" for value in np.unique(fractional)[:3])
        raise ConfigError(f"loss: a {loss_kind} classification loss needs class ids, but {where} "
                          f"has targets that are not whole numbers (e.g. {examples}). For a "
                          "regression use a regression loss (mse, mae, huber, ...) with a linear "
                          "last layer, or set task: regression.")
    past = values[np.abs(values) >= EXACT_INTEGERS]
    if past.size:  # cast to int64 they wrap, to a negative id or another class's
        raise DataError(f"{cfg.path or cfg.name}: label {past[0]:g} ({_row_of(raw, past[0], cfg)}) "
                        "is no class id: class ids count 0..K-1 for K classes (or use class "
                        "names); correct the label, or map the labels with dataset.label_map.")
    return Raw(raw.x_train, raw.y_train.astype(np.int64), raw.x_test,
               raw.y_test.astype(np.int64), raw.class_names, raw.target_names)


MANY_CLASSES = 1000  # ImageNet's count: more classes than samples is plausible up to here


def check_class_ids(raw: Raw, cfg: DatasetConfig, loss_kind: LossKind) -> None:
    """A (sparse) categorical loss indexes its classes by label: a negative one (a -1/1 dataset's
    -1) fails in TensorFlow's loss and, one-hot encoded or on JAX, quietly means the last class.
    An id past both the number of samples and MANY_CLASSES is no class id: one wrong label of
    10**9 was taken as the class count, and its one-hot labels as 40 TB. A few samples of many
    classes (a 20-image smoke file of CIFAR-100) keep theirs. A binary loss keeps them (Keras's
    hinge takes -1/1)."""
    if loss_kind not in ("sparse_categorical", "categorical") or raw.class_names is not None:
        return
    where = cfg.path or cfg.name
    lowest = min(int(raw.y_train.min()), int(raw.y_test.min()))
    if lowest < 0:
        labels = sorted(set(np.unique(raw.y_train).tolist()) | set(np.unique(raw.y_test).tolist()))
        example = ", ".join(f"{label}: {index}" for index, label in enumerate(labels[:3]))
        raise DataError(f"{where}: class ids count from 0, but the labels hold {lowest} "
                        f"({_row_of(raw, lowest, cfg)}). Map them with dataset.label_map, e.g. "
                        f"{{{example}{', ...' if len(labels) > 3 else ''}}}.")
    samples = len(raw.y_train) + len(raw.y_test)
    highest = max(int(raw.y_train.max()), int(raw.y_test.max()))
    if highest >= max(samples, MANY_CLASSES):
        raise DataError(f"{where}: label {highest} ({_row_of(raw, highest, cfg)}) would make "
                        f"{highest + 1:,} classes for {samples:,} samples. Class ids count "
                        "0..K-1 for K classes (or use class names); correct the label, or map "
                        "the labels with dataset.label_map.")


def _row_of(raw: Raw, label: float, cfg: DatasetConfig) -> str:
    """Where a label first appears: a CSV's label column (its rows are split and reordered by
    now), else the split and row of the arrays as stored."""
    if cfg.label_columns:
        return f"column '{cfg.label_columns[0]}'"
    for split in ("y_train", "y_test"):
        rows = np.flatnonzero(getattr(raw, split) == label)
        if rows.size:
            return f"{split} row {int(rows[0])}"
    return "not found"


def check_loss_fits_output(config: Config, units: int) -> None:
    """Catch the classic mismatches between the loss and the last layer before training."""
    if config.loss_kind == "binary" and units != 1:
        raise ConfigError(f"loss: {config.loss_name} expects 1 output unit (sigmoid), but the last "
                          f"layer has {units} units. For {units} classes use "
                          "sparse_categorical_crossentropy with a softmax layer.")
    if config.loss_kind in ("categorical", "sparse_categorical") and units == 1:
        raise ConfigError(f"loss: {config.loss_name} needs one output unit per class, but the "
                          "last layer has 1 unit. For two classes use binary_crossentropy with a "
                          "sigmoid unit, or give the last layer 2 units.")


def actual_class(labels: dict[str, str], classes: list[str],
                 label_map: dict[int, int] | None) -> str:
    """A classified row's own label, named as the run names its classes: a class name as it is,
    a class id (through dataset.label_map, as training read it) by its class's name."""
    text = next(iter(labels.values())).strip()
    if text in classes and label_map is None:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if not number.is_integer():  # 1.5, inf, nan: no class id
        return text
    index = int(number)
    if label_map is not None:
        index = label_map.get(index, -1)
    return classes[index] if 0 <= index < len(classes) else text


def top_classes(scores: np.ndarray, classes: list[str], k: int) -> list[dict[str, Any]]:
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if scores.size == 1:  # a sigmoid unit: the probability of class 1
        scores = np.array([1 - scores[0], scores[0]])
    names = classes if len(classes) == scores.size else [str(i) for i in range(scores.size)]
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"class": names[i], "index": int(i), "probability": float(scores[i])} for i in order]


def classes(outputs: np.ndarray) -> np.ndarray:
    """Predicted class ids: a sigmoid unit above 0.5 is class 1, else the largest output."""
    if outputs.ndim == 1 or outputs.shape[-1] == 1:
        return (outputs.reshape(len(outputs)) > 0.5).astype(np.int64)
    return outputs.argmax(axis=-1)


def _classification(splits: Splits, probabilities: Any, title: str,
                    drawings: list[Picture]) -> dict[str, Any]:
    from dltrain.report.metrics import classification_report
    from dltrain.report.plots import confusion_matrix

    report = classification_report(splits.y_test, probabilities, splits.class_names)
    drawings.append(lambda folder: confusion_matrix(
        report["confusion_matrix"], report["class_names"], title, folder / runs.CONFUSION_FILE))
    return report
