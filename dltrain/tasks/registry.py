"""The task registry: one Task per `task:` name, and the task a config's loss means.

Adding a task is one module of this package (a `Task` subclass listing its losses) and one
line here.
"""

from __future__ import annotations

from dltrain.tasks.base import LossKind, Task, squash
from dltrain.tasks.classification import Classification
from dltrain.tasks.other import Other
from dltrain.tasks.regression import Regression

TASKS: dict[str, Task] = {
    "classification": Classification(),
    "regression": Regression(),
}
OTHER = Other()  # a loss no task lists, without `task:`


def kind_of_loss(name: str) -> LossKind:
    """The loss's kind: binary (0/1 labels, one unit), categorical (one-hot), sparse,
    regression or other, by its name in any spelling."""
    squashed = squash(name)
    for task in TASKS.values():
        if squashed in task.losses:
            return task.losses[squashed]
    return "other"


def task_for(loss: str, task: str | None) -> Task:
    """The task a config means: its loss's, else the one `task:` names (a loss dltrain does not
    know), else OTHER. A loss and a `task:` that disagree are refused by the task's check."""
    squashed = squash(loss)
    for known in TASKS.values():
        if squashed in known.losses:
            return known.of_kind(known.losses[squashed])
    if task is not None:
        return TASKS[task].of_kind(TASKS[task].unknown_loss_kind)
    return OTHER


def as_task(task: Task | str) -> Task:
    """A task, or the task a loss kind means (the data functions' callers may pass either)."""
    if isinstance(task, Task):
        return task
    for known in TASKS.values():
        if task in known.losses.values():
            return known.of_kind(task)  # type: ignore[arg-type]
    return OTHER


def default_metrics(loss: str, task: str | None) -> list[str] | None:
    """The metrics a config without `metrics:` gets: those of the task `task:` names, else of
    its loss's task; None for the schema's own default."""
    chosen = TASKS.get(task) if task is not None else task_for(loss, None)
    return None if chosen is None else chosen.default_metrics
