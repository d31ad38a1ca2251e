"""What the loss needs of the targets: numbers for a regression, whole class ids for a classifier."""

from __future__ import annotations

import numpy as np

from dltrain.config.schema import CLASSIFICATION_KINDS, DatasetConfig, LossKind
from dltrain.data.raw import Raw
from dltrain.errors import ConfigError, DataError

EXACT_INTEGERS = 2**53  # a float64 holds every whole number below this, and no class id is near


def targets_for(raw: Raw, cfg: DatasetConfig, loss_kind: LossKind) -> Raw:
    """A regression's targets as float32 columns, (samples, targets), named; a classifier's
    labels as integer class ids, refused when they are not whole numbers."""
    if loss_kind == "regression":
        return regression_targets(raw, cfg)
    if loss_kind in CLASSIFICATION_KINDS:
        return class_ids(raw, cfg, loss_kind)
    return raw


def regression_targets(raw: Raw, cfg: DatasetConfig) -> Raw:
    where = (f"column '{cfg.label_columns[0]}'" if len(cfg.label_columns) == 1
             else f"{cfg.path or cfg.name}")
    if raw.class_names is not None:
        shown = ", ".join(raw.class_names[:5]) + (", ..." if len(raw.class_names) > 5 else "")
        raise DataError(f"a regression needs numeric targets, but {where} holds text ({shown}). "
                        "Use a classification loss (sparse_categorical_crossentropy) for class "
                        "names, or point dataset.label_column at a numeric column.")
    y_train, y_test = (np.asarray(y, dtype=np.float32) for y in (raw.y_train, raw.y_test))
    y_train, y_test = (y.reshape(len(y), -1) for y in (y_train, y_test))
    if y_train.shape[1] != y_test.shape[1]:
        raise DataError(f"{where}: {y_train.shape[1]} train targets but {y_test.shape[1]} test "
                        "targets per sample.")
    if not (np.isfinite(y_train).all() and np.isfinite(y_test).all()):
        raise DataError(f"{where}: a target is not a finite number (NaN or infinite).")
    names = raw.target_names or default_names(y_train.shape[1])
    return Raw(raw.x_train, y_train, raw.x_test, y_test, None, names)


def default_names(count: int) -> list[str]:
    return ["y"] if count == 1 else [f"y{index}" for index in range(count)]


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
