"""history.csv: one row per epoch, rewritten atomically as each epoch ends."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from dltrain.runs.layout import write_history
from dltrain.train.events import EpochEnded, Subscriber


class HistoryFile(Subscriber):
    """Rewrite history.csv atomically after every epoch, so a killed run keeps what it did.

    An epoch's `seconds` run from the previous epoch's end (or the start of training) to its
    own end, so they include validation and the checkpoints written after the previous epoch.
    """

    def __init__(self, path: Path, rows: list[dict[str, float]],
                 wait_for: Callable[[], None] | None = None) -> None:
        self.path = path
        self.rows = list(rows)
        # LastCheckpoint.close: the previous epoch's checkpoint is in place before this epoch's
        # row, so the rows never run more than one ahead of last.keras (what --resume mends).
        self.wait_for = wait_for

    def epoch_ended(self, event: EpochEnded) -> None:
        row = {"epoch": event.epoch, **{k: float(v) for k, v in event.logs.items()},
               "seconds": event.seconds}
        if self.wait_for is not None:
            self.wait_for()
        self.rows.append(row)
        write_history(self.path, self.rows)
