"""history.csv: one row per epoch, rewritten atomically as each epoch ends."""

from __future__ import annotations


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
