"""What every task is asked: the `Task` base with its defaults, and the plain values its methods
take (tasks come before config and data, so they see neither the Config class nor `Raw`)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Protocol

import numpy as np

# What a loss expects of the labels and the last layer, by its name in any spelling
# (binary_crossentropy, BinaryCrossentropy, bce). Regression losses take numeric targets and a
# linear output. Losses no task lists are "other": no label encoding, no class report.
LossKind = Literal["binary", "categorical", "sparse_categorical", "regression", "other"]


def squash(name: str) -> str:
    """A Keras name in any spelling (binary_crossentropy, BinaryCrossentropy) as one key."""
    return name.replace("_", "").lower()


@dataclass(frozen=True)
class ConfigFacts:
    """What a task's checks read of a config, as plain values: `config/task.py` makes them."""

    loss: str  # the loss's name as written
    task: str | None  # the config's `task:` key
    from_logits: bool
    metrics: list[str]  # each metric's name as written
    # the last layer: its place in model.layers (an index; 'i.Repeat.layers.j' in a Repeat),
    # class name and arguments
    last_index: int | str
    last_layer: str
    last_args: Any
    label_map: bool  # dataset.label_map is set
    one_hot: bool | None
    standardize_target: bool
    label_columns: list[str]


@dataclass
class Labels:
    """A dataset's targets as read, and where they came from, for the messages."""

    train: np.ndarray
    test: np.ndarray
    class_names: list[str] | None
    target_names: list[str] | None
    source: str  # the dataset's path, else its name
    columns: list[str]  # its label columns (a CSV's), else none

    def row_of(self, label: float) -> str:
        """Where a label first appears: a CSV's label column (its rows are split and reordered
        by now), else the split and row of the arrays as stored."""
        if self.columns:
            return f"column '{self.columns[0]}'"
        for split, y in (("y_train", self.train), ("y_test", self.test)):
            rows = np.flatnonzero(y == label)
            if rows.size:
                return f"{split} row {int(rows[0])}"
        return "not found"


class TargetScale(Protocol):
    """How a regression's targets were scaled for training (data.prepare.Preparation)."""

    @property
    def target_names(self) -> list[str] | None: ...

    @property
    def target_mean(self) -> Any: ...

    def undo_target(self, y: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Figure:
    """A picture of the evaluation: the name of a report.plots function and its arguments
    before the file's path (the report stage names the file)."""

    plot: str
    args: tuple[Any, ...]


@dataclass(frozen=True)
class Task:
    """One task: what its losses mean for the targets, the model's output, the checks, the
    evaluation, predict's output, export's parity and cross-validation's folds.

    The defaults are a task that knows nothing of its targets; each task overrides what it knows.
    `kind` is the resolved loss's kind within the task (binary, categorical, ...).
    """

    kind: LossKind = "other"
    name: ClassVar[str] = "other"
    # Squashed loss name -> its kind: the losses that mean this task.
    losses: ClassVar[dict[str, LossKind]] = {}
    # The kind of a loss no task lists, when `task:` names this task.
    unknown_loss_kind: ClassVar[LossKind] = "other"
    default_metrics: ClassVar[list[str] | None] = None  # None: the schema's default, [accuracy]
    classes: ClassVar[bool] = False  # labels are classes: folds stratified, counted per fold
    stratify_subsets: ClassVar[bool] = True  # train_limit/test_limit keep class proportions
    numeric_targets: ClassVar[bool] = False  # targets are numbers, scaled and reported as such
    report_key: ClassVar[str | None] = None  # eval.json's key of the task's report, if it has one

    def of_kind(self, kind: LossKind) -> Task:
        return dataclasses.replace(self, kind=kind)

    @property
    def knows_loss(self) -> bool:
        """The loss is one dltrain knows, so its outputs are one vector per sample."""
        return self.kind != "other"

    @property
    def one_hot_by_default(self) -> bool:
        return self.kind == "categorical"

    def check(self, facts: ConfigFacts) -> None:
        """Refuse a config whose loss, task, output layer, metrics and dataset keys disagree."""

    def notes(self, facts: ConfigFacts) -> list[str]:
        """What may train badly though it trains: printed before training."""
        return []

    def prepare_targets(self, labels: Labels) -> Labels:
        """The targets as the loss takes them."""
        return labels

    def check_labels(self, labels: Labels) -> None:
        """Refuse labels the loss cannot take, once dataset.label_map is applied."""

    def check_output_units(self, loss: str, units: int) -> None:
        """Refuse a last layer of `units` units that the loss cannot read."""

    def check_data_fits(self, ys: list[np.ndarray], num_classes: int,
                        target_names: list[str] | None, units: int) -> None:
        """Refuse labels (train, test, validation) that the model's `units` outputs cannot fit."""

    def evaluate(self, y_test: np.ndarray, outputs: np.ndarray, class_names: list[str] | None,
                 scale: TargetScale, from_logits: bool,
                 title: str) -> tuple[dict[str, Any], list[Figure]]:
        """The report eval.json keeps under `report_key`, and its pictures."""
        raise NotImplementedError(f"a {self.name} task has no evaluation report")

    def predictions(self, names: list[str], outputs: np.ndarray, saved: dict[str, Any],
                    scale: TargetScale, from_logits: bool, top_k: int) -> list[dict[str, Any]]:
        """What predict prints for each input; `saved` is the run's preparation record."""
        raise NotImplementedError(f"a {self.name} task does not predict")

    def actual(self, labels: dict[str, str], saved: dict[str, Any],
               label_map: dict[int, int] | None) -> Any:
        """A row's own label or targets, shown beside its prediction."""
        raise NotImplementedError(f"a {self.name} task does not predict")

    def parity(self, reference: np.ndarray, y_test: np.ndarray,
               from_logits: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The Keras model's outputs as the export is compared on, and the true class ids when
        the export's accuracy is compared too (None for a task without classes)."""
        return reference, None


def output_activation(layer: str, args: dict[str, Any]) -> str | None:
    """The activation a layer written in the config ends in, when it names one."""
    if layer == "Softmax":
        return "softmax"
    activation = args.get("activation")
    return activation.lower() if isinstance(activation, str) else None
