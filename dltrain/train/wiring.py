"""The one place a run's listeners are chosen: the subscribers to its event stream, in the order
they hear each event, and the few Keras callbacks that steer training itself.

The experiment tracker (train.tracking) is one more subscriber, in `run_subscribers`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from dltrain.backend.distribution import current
from dltrain.backend.training_facts import batches_run_ahead
from dltrain.config.schema import Config
from dltrain.report.tables import print_notes
from dltrain.runs import layout as runs
from dltrain.train.checkpoints import BestCheckpoint, LastCheckpoint, SettleBest
from dltrain.train.console_log import PlainProgress, RichProgress, RunMessages
from dltrain.train.events import Stream, Subscriber
from dltrain.train.history import HistoryFile
from dltrain.train.keras_events import KerasEvents
from dltrain.train.nan_check import NanCheck
from dltrain.train.plateau import ResumedEarlyStopping, ResumedReduceLROnPlateau
from dltrain.train.run_state import RunStateFile
from dltrain.train.signals import PendingSignalCheck, Signals
from dltrain.train.start import Start
from dltrain.train.tensorboard import tensorboard
from dltrain.train.tracking import tracking_subscribers


@dataclass
class Wired:
    """The writers the loop reads after training, and model.fit's callbacks."""

    history: HistoryFile
    checkpoint: BestCheckpoint
    last: LastCheckpoint
    callbacks: list[Any]  # the stream's own KerasEvents among them


def run_subscribers(path: Path, console: Console, config: Config | None = None,
                    start: Start | None = None) -> list[Subscriber]:
    """Those that hear the run's own events (started, trained, interrupted, failed, finished):
    run.json's state first, then the console's word on how the run ended, then the experiment
    tracker (process 0's only: the others train into a scratch folder), which hears the
    epochs too."""
    tracker = (tracking_subscribers(config, path, start)
               if config is not None and start is not None and current().writes else [])
    return [RunStateFile(path), RunMessages(console), *tracker]


def wire(stream: Stream, config: Config, path: Path, console: Console, live: bool,
         start: Start, steps: int, signals: Signals) -> Wired:
    """Subscribe the training's writers to `stream`; model.fit's callbacks around it."""
    training = config.training
    checkpoint = BestCheckpoint(path / runs.BEST_FILE, config.checkpoint_monitor,
                                training.checkpoint.save_best_only, start.history,
                                path / runs.LAST_FILE)
    checkpoint.announce = stream.emit
    progress = (RichProgress(console, training.epochs, steps, start.epoch) if live
                else PlainProgress(console, training.epochs))
    # At each epoch's end: the history row, then last.keras (the training state: --resume keeps
    # the rows it holds and drops a newer one), then best.keras (which --resume mends from
    # last.keras when a kill came between them: SettleBest, before last.keras moves).
    # Several processes: a variable laid out over all of them is not this host's alone to copy;
    # save in place.
    last = LastCheckpoint(path, lambda epoch: setattr(start, "kept", epoch), checkpoint,
                          background=current().processes == 1)
    history = HistoryFile(path / runs.HISTORY_FILE, start.history, wait_for=last.close)
    for subscriber in (NanCheck(raises=batches_run_ahead(config.backend)), history,
                       SettleBest(checkpoint), last, checkpoint, progress):
        stream.subscribe(subscriber)
    # The pending-signal check hears the same events after everyone else, the caller's own
    # callbacks too (a search reports the epoch to Optuna): the epoch is written and reported
    # before it raises.
    signal_check = KerasEvents(Stream([PendingSignalCheck(signals)]), config.backend)
    callbacks = [*steering(config, console, start, checkpoint),
                 KerasEvents(stream, config.backend),
                 *tensorboard(training.tensorboard, config.backend, path, console),
                 *start.callbacks, signal_check]
    return Wired(history, checkpoint, last, callbacks)


def steering(config: Config, console: Console, start: Start,
             checkpoint: BestCheckpoint) -> list[Any]:
    """Keras's own callbacks that change the training (its learning rate, when it stops),
    replayed over a resumed run's earlier epochs."""
    training = config.training
    earlier = start.history if start.interrupted else []
    callbacks: list[Any] = []
    if training.reduce_lr_on_plateau is not None:
        callbacks.append(ResumedReduceLROnPlateau(
            earlier, **training.reduce_lr_on_plateau.model_dump()))
    if training.early_stopping is not None:
        callbacks.append(ResumedEarlyStopping(
            earlier, checkpoint if training.checkpoint.save_best_only else None,
            lambda text: print_notes(console, [text]), **training.early_stopping.model_dump()))
    return callbacks
