"""Early stopping and learning-rate plateaus that carry their counts across a resume."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.backend import keras_module
from dltrain.model.augment import saved_model
from dltrain.train.checkpoints import BestCheckpoint
from dltrain.train.monitor import NumberedMonitor

EarlyStopping = keras_module().callbacks.EarlyStopping
ReduceLROnPlateau = keras_module().callbacks.ReduceLROnPlateau


class Replayed(NumberedMonitor):
    """A Keras plateau callback that, in a resumed run, first goes over the epochs before the
    resume (history.csv's rows), as the uninterrupted run's callback went over them: Keras's
    own restart their counts at every fit, so a run resumed one epoch before early stopping
    would have stopped it trained `patience` epochs more. Replayed at the first epoch's end,
    when the monitor's direction is known (Keras reads it from the built metrics)."""

    rows: list[dict[str, float]]
    wait: int  # Keras's counters, set by the callback's own on_train_begin
    best: Any
    cooldown_counter: int

    def replay_before(self, rows: list[dict[str, float]]) -> None:
        self.rows = list(rows)

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if self.rows:
            if self.monitor_op is None:  # type: ignore[attr-defined]
                self._set_monitor_op()  # type: ignore[attr-defined]
            for index, row in enumerate(self.rows):
                self.replay(index, row)
            self.replayed()
        self.rows = []
        super().on_epoch_end(epoch, logs)  # type: ignore[misc]

    def replay(self, epoch: int, row: dict[str, float]) -> None:
        raise NotImplementedError

    def replayed(self) -> None:
        """After the replay, before the first resumed epoch counts."""


class ResumedEarlyStopping(Replayed, EarlyStopping):  # type: ignore[misc,valid-type]
    """EarlyStopping, replayed. With restore_best_weights, a best epoch just before the resume
    keeps the weights the run resumed with (last.keras's); an earlier one's are best.keras's
    when the checkpoint (`best`) watches the same metric and chose the same epoch. Otherwise
    they are gone: `notify` hears so, and Keras keeps the first resumed epoch's instead, as it
    does for a first epoch."""

    def __init__(self, rows: list[dict[str, float]], best: BestCheckpoint | None = None,
                 notify: Callable[[str], None] | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replay_before(rows)
        self.resumed_with: list[Any] | None = None
        self.checkpoint, self.notify = best, notify

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        super().on_train_begin(logs)
        if self.restore_best_weights and self.rows:
            self.resumed_with = self.model.get_weights()

    def replay(self, epoch: int, row: dict[str, float]) -> None:
        current = row.get(self.monitor)
        if current is None or epoch < self.start_from_epoch:
            return
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            self.best_weights = (self.resumed_with if epoch == len(self.rows) - 1
                                 else None)
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0

    def replayed(self) -> None:
        if not self.restore_best_weights or self.best_weights is not None or self.best is None:
            return
        checkpoint, epoch = self.checkpoint, self.best_epoch + 1
        kept = ""
        if checkpoint is not None:
            checkpoint.settle()  # which epoch best.keras holds
            if (checkpoint.monitor == self.monitor and checkpoint.best_epoch == epoch
                    and checkpoint.path.is_file()):
                self.best_weights = self._weights_in(checkpoint.path)
                return
            kept = (f" (best.keras holds epoch {checkpoint.best_epoch}, the best by "
                    f"{checkpoint.monitor}")
            kept += (", which early stopping's min_delta did not count as better)"
                     if checkpoint.monitor == self.monitor else ")")
        fix = ("" if checkpoint is not None and checkpoint.monitor == self.monitor else
               f" A checkpoint.monitor of {self.monitor} keeps them for a resume.")
        if self.notify is not None:
            self.notify(f"training.early_stopping.restore_best_weights: epoch {epoch} was the "
                        f"best by {self.monitor} before the resume, and its weights were not "
                        f"kept{kept}; unless a later epoch does better, the final model holds "
                        f"the first resumed epoch's weights.{fix}")

    def _weights_in(self, path: Path) -> list[Any]:
        """The trained model's weights (augmentation around it included) with the model's
        own from the file."""
        from dltrain.report.evaluate import load_model

        target = saved_model(self.model)
        now = target.get_weights()
        target.set_weights(load_model(path).get_weights())
        weights = self.model.get_weights()
        target.set_weights(now)
        return list(weights)


class ResumedReduceLROnPlateau(Replayed, ReduceLROnPlateau):  # type: ignore[misc,valid-type]
    """ReduceLROnPlateau, replayed: its wait and cooldown as they were at the resume (the
    learning rate itself is in last.keras's optimizer). A row's learning_rate is the rate the
    epoch trained at, which Keras compares with min_lr before lowering it."""

    def __init__(self, rows: list[dict[str, float]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.replay_before(rows)

    def replay(self, epoch: int, row: dict[str, float]) -> None:
        current = row.get(self.monitor)
        if current is None:
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            rate = row.get("learning_rate")
            if self.wait >= self.patience and (rate is None or rate > np.float32(self.min_lr)):
                self.cooldown_counter, self.wait = self.cooldown, 0
