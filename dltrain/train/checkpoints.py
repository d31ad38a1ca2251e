"""The run's checkpoints: last.keras (the training state, for --resume) after each good epoch,
and best.keras by the monitored metric, as subscribers to the run's events."""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from dltrain.backend import keras_module
from dltrain.errors import ConfigError
from dltrain.model.augment import saved_model
from dltrain.runs.layout import LAST_FILE, copy_file, save_model
from dltrain.train.events import EpochEnded, FitBegan, NewBest, Subscriber
from dltrain.train.monitor import NumberedMonitor
from dltrain.train.saver import Saver

# Keras's own, for its MonitorCallback rules (the metric's direction, what counts as better).
ModelCheckpoint = keras_module().callbacks.ModelCheckpoint


def _finite(logs: dict[str, Any] | None) -> bool:
    return all(math.isfinite(float(value)) for value in (logs or {}).values())


class BestCheckpoint(NumberedMonitor, ModelCheckpoint, Subscriber):  # type: ignore[misc,valid-type]
    """ModelCheckpoint(save_best_only=True), written atomically (Keras writes in place): Keras's
    class for its rules, driven by the run's events rather than by Keras's hooks.

    Keras's MonitorCallback takes the direction from the compiled metric (`_direction`:
    precision and recall go up, mae goes down). Keras builds the metrics in the first training
    step, so the direction is known after it: a resumed run's earlier epochs are weighed at
    the first epoch's end (`settle`, which `SettleBest` runs before last.keras is rewritten).
    With save_best_only false the file holds the latest finite epoch, and `best_epoch` names it.
    Each epoch it keeps is told to `announce` (the stream's emit) as a NewBest.
    """

    def __init__(self, path: Path, monitor: str, save_best_only: bool,
                 history: list[dict[str, float]], last: Path | None = None) -> None:
        super().__init__(str(path), monitor=monitor, save_best_only=save_best_only)
        self.path = path
        self.history = list(history)
        self.last = last
        self.best: float | None = None  # no baseline: the first finite epoch is the best so far
        self.best_epoch: int | None = None
        self.last_epoch: int | None = None  # the epoch `last` holds, when LastCheckpoint says
        self.saver: Saver | None = None  # LastCheckpoint's, which writes `last`
        self.announce: Callable[[NewBest], None] | None = None

    def fit_began(self, event: FitBegan) -> None:
        self.set_model(event.model)

    def epoch_ended(self, event: EpochEnded) -> None:
        self.settle()
        if not self._consider(event.logs, event.epoch):
            return
        if self.saver is not None and self.last_epoch == event.epoch:
            # The same state is being saved as last.keras: a copy costs a fraction of a save
            # (0.07-0.1 s for fashion_mnist_gpu's 1.7 M parameters here, at every improvement).
            self.saver.copy_when_written(event.epoch, self.path)
        else:
            save_model(saved_model(self.model), self.path)
        if self.announce is not None and self.best is not None:
            self.announce(NewBest(event.epoch, self.monitor, self.best))

    def settle(self) -> None:
        """Weigh a resumed run's earlier epochs, once the direction is known.

        When the best of them is the last one, best.keras should hold last.keras: a kill
        between the two writes of that epoch's end left it older, so copy it.
        """
        if self.monitor_op is not None:
            return
        self._set_direction()
        for row in self.history:
            self._consider(row, int(row["epoch"]))
        if (self.history and self.best_epoch == len(self.history) and self.last is not None
                and self.last.is_file()):
            copy_file(self.last, self.path)

    def _set_direction(self) -> None:
        try:
            self._set_monitor_op()
        except ValueError:
            raise ConfigError(
                "training.checkpoint.monitor must name a metric whose direction Keras knows "
                f"(loss or a built-in metric, val_ for validation). Received: '{self.monitor}'; "
                f"the model's metrics are {', '.join(_metric_names(self.model))}.") from None

    def _consider(self, logs: dict[str, Any], epoch: int) -> bool:
        value = float(logs.get(self.monitor, math.nan))
        if not math.isfinite(value):
            return False
        if self.save_best_only and not self._is_improvement(value, self.best):
            return False
        self.best, self.best_epoch = value, epoch
        return True


class SettleBest(Subscriber):
    """BestCheckpoint.settle at each epoch's end, placed before LastCheckpoint: last.keras then
    still holds the resumed run's start, which settle may copy to best.keras.

    """

    def __init__(self, checkpoint: BestCheckpoint) -> None:
        self.checkpoint = checkpoint

    def epoch_ended(self, event: EpochEnded) -> None:
        self.checkpoint.settle()


def _metric_names(model: Any) -> list[str]:
    """The names Keras logs for a compiled model: loss and each compiled metric's name."""
    names = ["loss"]
    for metric in model.metrics:
        names += [inner.name for inner in getattr(metric, "metrics", [])]
    return names


class LastCheckpoint(Subscriber):
    """The whole training state after each good epoch (weights and optimizer), for --resume.

    One file, written atomically: its optimizer's step count says how many epochs it holds, so
    the state cannot disagree with itself. (Keras's BackupAndRestore writes its files in place,
    which a SIGKILL can leave half-written.) `saved` hears each epoch once its file is in place:
    after the first, the file is written in the background (train.saver), and `close` waits.
    """

    def __init__(self, folder: Path, saved: Callable[[int], None],
                 best: BestCheckpoint | None = None, background: bool = True) -> None:
        self.saver = Saver(folder / LAST_FILE, saved, background)
        self.best = best  # told which epoch last.keras holds, to copy it rather than save again
        if best is not None:
            best.saver = self.saver

    def epoch_ended(self, event: EpochEnded) -> None:
        if _finite(event.logs):
            self.saver.save(saved_model(event.model), event.epoch)
            if self.best is not None:
                self.best.last_epoch = event.epoch

    def close(self) -> None:
        """Wait for the last write; raises its error if it failed."""
        self.saver.wait()


