"""Classification: class ids (or one-hot vectors) as targets, one output per class (one sigmoid
unit for a binary loss), a per-class report with a confusion matrix, predict's top classes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from dltrain.errors import ConfigError, DataError
from dltrain.tasks.base import ConfigFacts, Figure, Labels, LossKind, TargetScale, Task
from dltrain.tasks.classification_checks import check_class_targets, check_loss_task, logit_notes
from dltrain.tasks.classification_report import classification_report, probabilities

EXACT_INTEGERS = 2**53  # a float64 holds every whole number below this, and no class id is near
MANY_CLASSES = 1000  # ImageNet's count: more classes than samples is plausible up to here
CLASS_KINDS = ("binary", "categorical", "sparse_categorical")


@dataclass(frozen=True)
class Classification(Task):
    """A classifier: `kind` binary (labels 0/1, one unit), categorical (one-hot labels), sparse
    categorical (class ids), or other (a loss dltrain does not know, under task: classification)."""

    name: ClassVar[str] = "classification"
    losses: ClassVar[dict[str, LossKind]] = {
        **dict.fromkeys(["binarycrossentropy", "bce", "binaryfocalcrossentropy", "hinge",
                         "squaredhinge"], "binary"),
        **dict.fromkeys(["categoricalcrossentropy", "categoricalfocalcrossentropy",
                         "categoricalhinge", "kldivergence", "kld", "kullbackleiblerdivergence"],
                        "categorical"),
        "sparsecategoricalcrossentropy": "sparse_categorical",
    }
    classes: ClassVar[bool] = True
    report_key: ClassVar[str | None] = "report"

    def check(self, facts: ConfigFacts) -> None:
        check_loss_task(facts)
        check_class_targets(facts, self.kind, f"loss {facts.loss} is a classification loss (its "
                            "targets are class ids)")

    def notes(self, facts: ConfigFacts) -> list[str]:
        return logit_notes(facts, self.kind)

    def prepare_targets(self, labels: Labels) -> Labels:
        return class_ids(labels, self.kind) if self.kind in CLASS_KINDS else labels

    def check_labels(self, labels: Labels) -> None:
        if self.kind in ("sparse_categorical", "categorical"):
            check_class_ids(labels)

    def check_output_units(self, loss: str, units: int) -> None:
        """Catch the classic mismatches between the loss and the last layer before training."""
        if self.kind == "binary" and units != 1:
            raise ConfigError(f"loss: {loss} expects 1 output unit (sigmoid), but the last "
                              f"layer has {units} units. For {units} classes use "
                              "sparse_categorical_crossentropy with a softmax layer.")
        if self.kind in ("categorical", "sparse_categorical") and units == 1:
            raise ConfigError(f"loss: {loss} needs one output unit per class, but the "
                              "last layer has 1 unit. For two classes use binary_crossentropy "
                              "with a sigmoid unit, or give the last layer 2 units.")

    def check_data_fits(self, ys: list[np.ndarray], num_classes: int,
                        target_names: list[str] | None, units: int) -> None:
        if self.kind == "binary":
            check_binary_labels(ys)
        elif num_classes > units:
            shown = f"{units} unit" + ("" if units == 1 else "s")
            raise DataError(f"the data has {num_classes} classes but the last layer has "
                            f"{shown}. Set the last layer's units to {num_classes}.")

    def evaluate(self, y_test: np.ndarray, outputs: np.ndarray, class_names: list[str] | None,
                 scale: TargetScale, from_logits: bool,
                 title: str) -> tuple[dict[str, Any], list[Figure]]:
        report = classification_report(y_test, probabilities(outputs, from_logits), class_names)
        return report, [Figure("confusion_matrix", (report["confusion_matrix"],
                                                    report["class_names"], title))]

    def predictions(self, names: list[str], outputs: np.ndarray, saved: dict[str, Any],
                    scale: TargetScale, from_logits: bool, top_k: int) -> list[dict[str, Any]]:
        classes = class_names_of(saved)
        return [{"input": name, "top": top_classes(row, classes, top_k)} for name, row
                in zip(names, probabilities(outputs, from_logits), strict=True)]

    def actual(self, labels: dict[str, str], saved: dict[str, Any],
               label_map: dict[int, int] | None) -> Any:
        return actual_class(labels, class_names_of(saved), label_map)

    def parity(self, reference: np.ndarray, y_test: np.ndarray,
               from_logits: bool) -> tuple[np.ndarray, np.ndarray | None]:
        labels = (y_test.argmax(axis=-1) if y_test.ndim == 2 and y_test.shape[-1] > 1
                  else y_test.reshape(len(y_test)))
        return probabilities(reference, from_logits), labels


def class_names_of(saved: dict[str, Any]) -> list[str]:
    """The run's class names from its preparation record, else the class ids as text."""
    return saved.get("class_names") or [str(i) for i in range(saved.get("num_classes", 0))]


def check_binary_labels(ys: list[np.ndarray]) -> None:
    found = np.unique(np.concatenate([y.reshape(-1) for y in ys]))
    if np.setdiff1d(found, [0, 1]).size:
        shown = [int(v) if float(v).is_integer() else float(v) for v in found[:10]]
        hint = (f"Map them with dataset.label_map: {{{shown[0]}: 0, {shown[1]}: 1}}"
                if len(found) == 2 else f"{len(found)} classes need "
                "sparse_categorical_crossentropy and as many output units; or map them to "
                "0 and 1 with dataset.label_map")
        raise DataError(f"a binary loss needs labels 0 and 1; the data has labels {shown}"
                        f"{'...' if len(found) > 10 else ''}. {hint}.")


def class_ids(labels: Labels, loss_kind: str) -> Labels:
    """Float labels that are whole numbers (1.0, 2.0) are class ids; others are a regression's."""
    ys = [labels.train, labels.test]
    if any(y.ndim > 1 for y in ys):
        raise DataError(f"{labels.source}: a classifier takes one class id per sample, "
                        f"but the labels have shape {list(labels.train.shape)}. For several "
                        "numeric targets use a regression loss (mse, mae, huber, ...).")
    if all(y.dtype.kind in "iub" for y in ys) or labels.class_names is not None:
        return labels
    values = np.concatenate(ys).astype(np.float64)
    fractional = values[~np.isfinite(values) | (values != np.round(values))]
    if fractional.size:
        where = labels.source
        examples = ", ".join(f"{value:g}" for value in np.unique(fractional)[:3])
        raise ConfigError(f"loss: a {loss_kind} classification loss needs class ids, but {where} "
                          f"has targets that are not whole numbers (e.g. {examples}). For a "
                          "regression use a regression loss (mse, mae, huber, ...) with a linear "
                          "last layer, or set task: regression.")
    past = values[np.abs(values) >= EXACT_INTEGERS]
    if past.size:  # cast to int64 they wrap, to a negative id or another class's
        raise DataError(f"{labels.source}: label {past[0]:g} ({labels.row_of(past[0])}) "
                        "is no class id: class ids count 0..K-1 for K classes (or use class "
                        "names); correct the label, or map the labels with dataset.label_map.")
    return Labels(labels.train.astype(np.int64), labels.test.astype(np.int64),
                  labels.class_names, labels.target_names, labels.source, labels.columns)


def check_class_ids(raw: Labels) -> None:
    """A (sparse) categorical loss indexes its classes by label: a negative one (a -1/1 dataset's
    -1) fails in TensorFlow's loss and, one-hot encoded or on JAX, quietly means the last class.
    An id past both the number of samples and MANY_CLASSES is no class id: one wrong label of
    10**9 was taken as the class count, and its one-hot labels as 40 TB. A few samples of many
    classes (a 20-image smoke file of CIFAR-100) keep theirs. A binary loss keeps them (Keras's
    hinge takes -1/1)."""
    if raw.class_names is not None:
        return
    where = raw.source
    lowest = min(int(raw.train.min()), int(raw.test.min()))
    if lowest < 0:
        labels = sorted(set(np.unique(raw.train).tolist()) | set(np.unique(raw.test).tolist()))
        example = ", ".join(f"{label}: {index}" for index, label in enumerate(labels[:3]))
        raise DataError(f"{where}: class ids count from 0, but the labels hold {lowest} "
                        f"({raw.row_of(lowest)}). Map them with dataset.label_map, e.g. "
                        f"{{{example}{', ...' if len(labels) > 3 else ''}}}.")
    samples = len(raw.train) + len(raw.test)
    highest = max(int(raw.train.max()), int(raw.test.max()))
    if highest >= max(samples, MANY_CLASSES):
        raise DataError(f"{where}: label {highest} ({raw.row_of(highest)}) would make "
                        f"{highest + 1:,} classes for {samples:,} samples. Class ids count "
                        "0..K-1 for K classes (or use class names); correct the label, or map "
                        "the labels with dataset.label_map.")


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
