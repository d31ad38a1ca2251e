"""Where training begins: a fresh model at epoch 0, or a resumed one with its history."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dltrain.train.timing import Clock


@dataclass
class Start:
    """Where training begins: a fresh model at epoch 0, or a resumed one with its history."""

    model: Any
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    smoke: bool = False  # measure the training loss before and after, to see it fall
    # Draw the learning curves and the evaluation's plots: not for a run nobody will open
    # (`dltrain smoke`'s, in a folder removed when its fit returns).
    pictures: bool = True
    kept: int = 0  # the epochs last.keras holds now: where a resume would start
    trained: int | None = None  # set when training is over (early stopping may end it sooner)
    callbacks: list[Any] = field(default_factory=list)  # the caller's own (a search's pruning)
    # An interrupted run's earlier epochs count for early stopping and ReduceLROnPlateau; a run
    # whose training was over and is extended with --epochs starts their counts afresh.
    interrupted: bool = False
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.kept = self.epoch
