"""What the loss needs of the targets, as the config's task prepares them: numbers for a
regression, whole class ids for a classifier."""

from __future__ import annotations

from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.raw import Raw
from dltrain.tasks.base import Labels, LossKind, Task
from dltrain.tasks.registry import as_task


def labels_of(raw: Raw, cfg: DatasetConfig) -> Labels:
    """The raw arrays' targets, with where they came from for the task's messages."""
    return Labels(raw.y_train, raw.y_test, raw.class_names, raw.target_names,
                  str(cfg.path or cfg.name), cfg.label_columns)


def targets_for(raw: Raw, cfg: DatasetConfig, task: Task | LossKind) -> Raw:
    """A regression's targets as float32 columns, (samples, targets), named; a classifier's
    labels as integer class ids, refused when they are not whole numbers."""
    read = labels_of(raw, cfg)
    labels = as_task(task).prepare_targets(read)
    if labels is read:
        return raw
    return Raw(raw.x_train, labels.train, raw.x_test, labels.test, labels.class_names,
               labels.target_names)


def check_class_ids(raw: Raw, cfg: DatasetConfig, task: Task | LossKind) -> None:
    """Refuse labels the task's loss cannot take (a negative class id, one past any count)."""
    as_task(task).check_labels(labels_of(raw, cfg))
