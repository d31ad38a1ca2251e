"""The console's account of training: one line per epoch, or live bars, and how a run ended."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from dltrain.runs import layout as runs
from dltrain.train.events import (
    BatchEnded,
    EpochBegan,
    EpochEnded,
    FitBegan,
    FitEnded,
    Interrupted,
    Started,
    Subscriber,
)


def format_logs(logs: dict[str, Any]) -> str:
    return "  ".join(f"{key} {float(value):.4f}" for key, value in logs.items()
                     if key != "learning_rate")


def epoch_line(event: EpochEnded, epochs: int) -> str:
    """An epoch's line: its figures and its seconds, history.csv's own (`EpochEnded.seconds`,
    from the previous epoch's end), so the two agree. An epoch a non-finite loss stopped (the
    NaN check) says so instead: its figures are not a completed epoch's."""
    head = f"epoch {event.epoch}/{epochs}"
    loss = event.logs.get("loss")
    if loss is not None and not math.isfinite(float(loss)):
        became = "NaN" if math.isnan(float(loss)) else "infinite"
        return (f"{head}  stopped: the loss became {became}, not a completed epoch "
                f"({format_logs(event.logs)})  {event.seconds:.1f}s")
    return f"{head}  {format_logs(event.logs)}  {event.seconds:.1f}s"


class PlainProgress(Subscriber):
    """One line per epoch: for CI logs and pipes, where a live display is noise."""

    def __init__(self, console: Console, epochs: int) -> None:
        self.console, self.epochs = console, epochs

    def epoch_ended(self, event: EpochEnded) -> None:
        self.console.print(epoch_line(event, self.epochs), highlight=False, soft_wrap=True)


class RichProgress(Subscriber):
    """Live bars for epochs and batches with the running loss and metrics. Its batch updates
    take rich's lock, so they are safe on Keras's worker thread."""

    async_safe = True

    def __init__(self, console: Console, epochs: int, steps: int, done: int = 0) -> None:
        self.epochs, self.steps = epochs, steps
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(),
                                 MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.fields[logs]}"), console=console)
        self.epoch_task = self.progress.add_task("epochs", total=epochs, completed=done, logs="")
        self.batch_task = self.progress.add_task("batches", total=steps, logs="")

    def fit_began(self, event: FitBegan) -> None:
        self.progress.start()

    def epoch_began(self, event: EpochBegan) -> None:
        self.progress.reset(self.batch_task, total=self.steps, logs="")
        self.progress.update(self.epoch_task, description=f"epoch {event.epoch}/{self.epochs}")

    def batch_ended(self, event: BatchEnded) -> None:
        # Keras numbers a call of several steps by its last step as if the call were whole: a
        # partial last call would count past the epoch's batches (72/71).
        self.progress.update(self.batch_task, completed=min(event.batch, self.steps),
                             logs=format_logs(event.logs))

    def epoch_ended(self, event: EpochEnded) -> None:
        if math.isfinite(float(event.logs.get("loss", 0.0))):  # a whole epoch ran every batch
            self.progress.update(self.batch_task, completed=self.steps)
        self.progress.update(self.epoch_task, advance=1, logs=format_logs(event.logs))
        self.progress.console.print(epoch_line(event, self.epochs), highlight=False,
                                    soft_wrap=True)

    def fit_ended(self, event: FitEnded) -> None:
        self.progress.stop()


class RunMessages(Subscriber):
    """What the console says when a run stops short: what it keeps, how to go on."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.path = Path()

    def started(self, event: Started) -> None:
        self.path = event.run_dir

    def interrupted(self, event: Interrupted) -> None:
        self.console.print(f"interrupted after {event.epochs_done} completed epoch(s); "
                           f"{self.path} keeps them. Resume with: "
                           f"{runs.resume_command(self.path)}", highlight=False, soft_wrap=True)
