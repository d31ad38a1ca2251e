"""Small Keras callbacks dltrain adds to the stock ones: history file, best checkpoint, progress."""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dltrain.backend import keras_module
from dltrain.errors import ConfigError
from dltrain.model.augment import saved_model
from dltrain.runs.layout import LAST_FILE, copy_file, save_model, write_history
from dltrain.train.saver import Saver

Callback = keras_module().callbacks.Callback
ModelCheckpoint = keras_module().callbacks.ModelCheckpoint
EarlyStopping = keras_module().callbacks.EarlyStopping
ReduceLROnPlateau = keras_module().callbacks.ReduceLROnPlateau
TerminateOnNaN = keras_module().callbacks.TerminateOnNaN


def format_logs(logs: dict[str, Any]) -> str:
    return "  ".join(f"{key} {float(value):.4f}" for key, value in logs.items()
                     if key != "learning_rate")


class HistoryFile(Callback):  # type: ignore[misc,valid-type]
    """Rewrite history.csv atomically after every epoch, so a killed run keeps what it did.

    An epoch's `seconds` run from the previous epoch's end (or the start of training) to its
    own end, so they include validation and the checkpoints written after the previous epoch.
    """

    def __init__(self, path: Path, rows: list[dict[str, float]],
                 wait_for: Callable[[], None] | None = None) -> None:
        super().__init__()
        self.path = path
        self.rows = list(rows)
        self.last_end = time.perf_counter()
        # LastCheckpoint.close: the previous epoch's checkpoint is in place before this epoch's
        # row, so the rows never run more than one ahead of last.keras (what --resume mends).
        self.wait_for = wait_for

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.last_end = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        row = {"epoch": epoch + 1, **{k: float(v) for k, v in (logs or {}).items()},
               "seconds": round(now - self.last_end, 3)}
        self.last_end = now
        if self.wait_for is not None:
            self.wait_for()
        self.rows.append(row)
        write_history(self.path, self.rows)


def _finite(logs: dict[str, Any] | None) -> bool:
    return all(math.isfinite(float(value)) for value in (logs or {}).values())


class NumberedMonitor:
    """Keras logs a metric name given twice numbered (precision, precision_1), but finds a
    monitor's direction by the metrics' own names, which are not: it raised "Keras isn't able
    to automatically determine whether that metric should be maximized" for val_precision_1.
    A numbered monitor goes the way of the metric it numbers."""

    monitor: str

    def _set_monitor_op(self) -> None:
        try:
            super()._set_monitor_op()  # type: ignore[misc]
        except ValueError:
            numbered = re.fullmatch(r"(.+)_[1-9][0-9]*", self.monitor)
            if numbered is None:
                raise
            monitor, self.monitor = self.monitor, numbered[1]
            try:
                super()._set_monitor_op()  # type: ignore[misc]
            finally:
                self.monitor = monitor


class BestCheckpoint(NumberedMonitor, ModelCheckpoint):  # type: ignore[misc,valid-type]
    """ModelCheckpoint(save_best_only=True), written atomically (Keras writes in place).

    Keras's MonitorCallback takes the direction from the compiled metric (`_direction`:
    precision and recall go up, mae goes down). Keras builds the metrics in the first training
    step, so the direction is known after it: a resumed run's earlier epochs are weighed at
    the first epoch's end (`settle`, which `SettleBest` runs before last.keras is rewritten).
    With save_best_only false the file holds the latest finite epoch, and `best_epoch` names it.
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

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.settle()
        if not self._consider(logs or {}, epoch + 1):
            return
        if self.saver is not None and self.last_epoch == epoch + 1:
            # The same state is being saved as last.keras: a copy costs a fraction of a save
            # (0.07-0.1 s for fashion_mnist_gpu's 1.7 M parameters here, at every improvement).
            self.saver.copy_when_written(epoch + 1, self.path)
        else:
            save_model(saved_model(self.model), self.path)

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


class SettleBest(Callback):  # type: ignore[misc,valid-type]
    """BestCheckpoint.settle at each epoch's end, placed before LastCheckpoint: last.keras then
    still holds the resumed run's start, which settle may copy to best.keras.

    An epoch-level hook, not a batch-level one: a batch-level callback that is not async-safe
    makes Keras wait for the device after every step (BENCHMARKS.md, GPU).
    """

    def __init__(self, checkpoint: BestCheckpoint) -> None:
        super().__init__()
        self.checkpoint = checkpoint

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.checkpoint.settle()


def _metric_names(model: Any) -> list[str]:
    """The names Keras logs for a compiled model: loss and each compiled metric's name."""
    names = ["loss"]
    for metric in model.metrics:
        names += [inner.name for inner in getattr(metric, "metrics", [])]
    return names


class LastCheckpoint(Callback):  # type: ignore[misc,valid-type]
    """The whole training state after each good epoch (weights and optimizer), for --resume.

    One file, written atomically: its optimizer's step count says how many epochs it holds, so
    the state cannot disagree with itself. (Keras's BackupAndRestore writes its files in place,
    which a SIGKILL can leave half-written.) `saved` hears each epoch once its file is in place:
    after the first, the file is written in the background (train.saver), and `close` waits.
    """

    def __init__(self, folder: Path, saved: Callable[[int], None],
                 best: BestCheckpoint | None = None, background: bool = True) -> None:
        super().__init__()
        self.saver = Saver(folder / LAST_FILE, saved, background)
        self.best = best  # told which epoch last.keras holds, to copy it rather than save again
        if best is not None:
            best.saver = self.saver

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        if _finite(logs):
            self.saver.save(saved_model(self.model), epoch + 1)
            if self.best is not None:
                self.best.last_epoch = epoch + 1

    def close(self) -> None:
        """Wait for the last write; raises its error if it failed."""
        self.saver.wait()


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


class NonFiniteLoss(Exception):
    """A batch's loss was NaN or infinite (StopOnNonFinite raised it)."""


class QuietTerminateOnNaN(TerminateOnNaN):  # type: ignore[misc,valid-type]
    """Keras's TerminateOnNaN without its "Batch 3: Invalid loss, terminating training" on
    stdout, which holds only results (--json's document, smoke's table): fit says itself what
    diverged, on stderr."""

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


class StopOnNonFinite(Callback):  # type: ignore[misc,valid-type]
    """Keras's TerminateOnNaN for Keras's worker thread (JAX, torch): it raises, which reaches
    model.fit at the next batch, instead of setting stop_training from another thread, after
    which Keras read metric buffers its next step had already donated ("Buffer has been
    deleted or donated")."""

    async_safe = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLoss(f"batch {batch + 1}")


class RaisePendingSignal(Callback):  # type: ignore[misc,valid-type]
    """Re-raise a Ctrl-C or SIGTERM whose first exception a library swallowed."""

    def __init__(self, signals: Any) -> None:
        super().__init__()
        self.signals = signals

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.signals.raise_pending()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.signals.raise_pending()


class PlainProgress(Callback):  # type: ignore[misc,valid-type]
    """One line per epoch: for CI logs and pipes, where a live display is noise."""

    def __init__(self, console: Console, epochs: int) -> None:
        super().__init__()
        self.console, self.epochs = console, epochs
        self.started = time.perf_counter()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.started = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        seconds = time.perf_counter() - self.started
        self.console.print(f"epoch {epoch + 1}/{self.epochs}  {format_logs(logs or {})}  "
                           f"{seconds:.1f}s", highlight=False, soft_wrap=True)


class RichProgress(Callback):  # type: ignore[misc,valid-type]
    """Live bars for epochs and batches with the running loss and metrics."""

    def __init__(self, console: Console, epochs: int, steps: int, done: int = 0) -> None:
        super().__init__()
        self.epochs, self.steps = epochs, steps
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[logs]}"), console=console)
        self.epoch_task = self.progress.add_task("epochs", total=epochs, completed=done, logs="")
        self.batch_task = self.progress.add_task("batches", total=steps, logs="")

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.progress.start()

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.reset(self.batch_task, total=self.steps, logs="")
        self.progress.update(self.epoch_task, description=f"epoch {epoch + 1}/{self.epochs}")

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.update(self.batch_task, completed=batch + 1, logs=format_logs(logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.progress.update(self.epoch_task, advance=1, logs=format_logs(logs or {}))
        self.progress.console.print(f"epoch {epoch + 1}/{self.epochs}  {format_logs(logs or {})}",
                                    highlight=False, soft_wrap=True)

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.progress.stop()
