"""What the console says of each epoch, against what the run's files record (issue 27)."""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

from rich.console import Console

from dltrain.train.console_log import PlainProgress, RichProgress
from dltrain.train.events import BatchEnded, EpochBegan, EpochEnded, FitBegan, FitEnded, Stream
from dltrain.train.history import HistoryFile


def console(terminal: bool) -> tuple[Console, io.StringIO]:
    buffer = io.StringIO()
    return Console(file=buffer, force_terminal=terminal, width=80), buffer


def test_the_live_bar_ends_at_its_total_when_keras_counts_past_the_last_batch() -> None:
    # 71 batches run 4 a call: Keras reports the partial last call as batch 72 (68 + 4).
    screen, buffer = console(terminal=True)
    progress = RichProgress(screen, epochs=1, steps=71)
    stream = Stream([progress])
    stream.emit(FitBegan(None))
    stream.emit(EpochBegan(1))
    for batch in (4, 68, 72):
        stream.emit(BatchEnded(batch, {"loss": 0.5}))
    task = progress.progress.tasks[progress.batch_task]
    assert (task.completed, task.total) == (71, 71)
    stream.emit(EpochEnded(1, {"loss": 0.5}, 1.0))
    stream.emit(FitEnded())
    text = buffer.getvalue()
    assert "71/71" in text and "72/71" not in text


def test_the_live_bar_is_full_when_its_epoch_ends_short_of_the_count() -> None:
    # With steps_per_execution 16 a 20-batch epoch reports batch 16, then its end.
    screen, _ = console(terminal=True)
    progress = RichProgress(screen, epochs=1, steps=20)
    stream = Stream([progress])
    stream.emit(FitBegan(None))
    stream.emit(EpochBegan(1))
    stream.emit(BatchEnded(16, {"loss": 0.5}))
    stream.emit(EpochEnded(1, {"loss": 0.5}, 1.0))
    task = progress.progress.tasks[progress.batch_task]
    assert (task.completed, task.total) == (20, 20)
    stream.emit(FitEnded())


def test_the_printed_epoch_seconds_are_history_csv_seconds(tmp_path: Path) -> None:
    screen, buffer = console(terminal=False)
    history = tmp_path / "history.csv"
    stream = Stream([HistoryFile(history, []), PlainProgress(screen, epochs=2)])
    for epoch, seconds in ((1, 1.783), (2, 0.349)):
        stream.emit(EpochBegan(epoch))
        stream.emit(EpochEnded(epoch, {"loss": 0.5, "accuracy": 0.75}, seconds))
    with history.open() as handle:
        recorded = [float(row["seconds"]) for row in csv.DictReader(handle)]
    lines = buffer.getvalue().splitlines()
    assert recorded == [1.783, 0.349]
    assert [line.split()[-1] for line in lines] == [f"{value:.1f}s" for value in recorded]


def test_the_live_epoch_line_prints_history_csv_seconds_too() -> None:
    screen, buffer = console(terminal=True)
    stream = Stream([RichProgress(screen, epochs=1, steps=3)])
    stream.emit(FitBegan(None))
    stream.emit(EpochBegan(1))
    stream.emit(EpochEnded(1, {"loss": 0.5}, 1.783))
    stream.emit(FitEnded())
    assert "epoch 1/1  loss 0.5000  1.8s" in buffer.getvalue()


def test_an_epoch_stopped_by_a_nan_loss_says_so_instead_of_a_normal_line() -> None:
    for terminal in (False, True):
        screen, buffer = console(terminal)
        progress = (RichProgress(screen, epochs=3, steps=4) if terminal
                    else PlainProgress(screen, epochs=3))
        stream = Stream([progress])
        stream.emit(FitBegan(None))
        stream.emit(EpochBegan(1))
        stream.emit(EpochEnded(1, {"loss": math.nan, "accuracy": 0.1}, 0.4))
        stream.emit(FitEnded())
        text = " ".join(buffer.getvalue().split())
        assert "epoch 1/3 stopped: the loss became NaN, not a completed epoch" in text
        assert "epoch 1/3 loss nan" not in text


def test_an_infinite_loss_is_named_as_such() -> None:
    screen, buffer = console(terminal=False)
    stream = Stream([PlainProgress(screen, epochs=2)])
    stream.emit(EpochBegan(2))
    stream.emit(EpochEnded(2, {"loss": math.inf}, 0.4))
    assert "epoch 2/2  stopped: the loss became infinite" in buffer.getvalue()
