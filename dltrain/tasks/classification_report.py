"""The evaluation report: per-class precision/recall/F1, confusion matrix, top-k, ROC AUC."""

from __future__ import annotations

from typing import Any

import numpy as np

from dltrain.tasks import scores as score

TOP_K = 5


def probabilities(outputs: Any, from_logits: bool) -> np.ndarray:
    """A classifier's outputs as probabilities: a model trained with `from_logits: true` outputs
    logits, so one unit goes through a sigmoid and several through a softmax, as its loss
    reads them; other outputs are probabilities already."""
    outputs = np.asarray(outputs)
    if not from_logits:
        return outputs
    logits = outputs.astype(np.float64)
    if logits.ndim == 1 or logits.shape[-1] == 1:
        return 0.5 * (1.0 + np.tanh(0.5 * logits))  # the sigmoid, without overflow in exp
    shifted = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def class_labels(y: np.ndarray) -> np.ndarray:
    """Integer labels from either integer or one-hot targets."""
    return y.argmax(axis=1) if y.ndim == 2 and y.shape[1] > 1 else y.reshape(-1).astype(int)


def classification_report(y_true: np.ndarray, probabilities: np.ndarray,
                          class_names: list[str] | None) -> dict[str, Any]:
    """Everything `eval` shows, from the true labels and the model's output probabilities."""
    labels = class_labels(y_true)
    binary = probabilities.ndim == 1 or probabilities.shape[-1] == 1
    scores = probabilities.reshape(len(labels), -1)
    if binary:
        threshold = 0.5
        predicted = (scores[:, 0] >= threshold).astype(int)
        count = 2
    else:
        predicted = scores.argmax(axis=1)
        count = scores.shape[1]
    names = _names(class_names, count)
    matrix = score.confusion_matrix(labels, predicted, count)
    precision, recall, f1, support = score.per_class(matrix)
    report: dict[str, Any] = {
        "accuracy": float(np.mean(labels == predicted)),
        "per_class": [{"class": names[i], "precision": float(precision[i]),
                       "recall": float(recall[i]), "f1": float(f1[i]),
                       "support": int(support[i])} for i in range(count)],
        "macro_f1": float(np.mean(f1)),
        "confusion_matrix": matrix.tolist(),
        "class_names": names,
    }
    if binary and len(np.unique(labels)) == 2:
        report["roc_auc"] = score.roc_auc(labels, scores[:, 0])
        report["threshold"] = threshold
    if count > TOP_K:
        report[f"top_{TOP_K}_accuracy"] = score.top_k_accuracy(labels, scores, TOP_K)
    return report


def _names(class_names: list[str] | None, count: int) -> list[str]:
    if class_names is not None and len(class_names) == count:
        return list(class_names)
    return [str(index) for index in range(count)]
