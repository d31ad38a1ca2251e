"""run.json's state as the run's events change it: running, trained, then completed,
interrupted or failed."""

from __future__ import annotations

from pathlib import Path

from dltrain.runs import layout as runs
from dltrain.train.events import Failed, Finished, Interrupted, Started, Subscriber, Trained


def ended(trained: int | None) -> dict[str, int]:
    """run.json's mark that training is over, for a resume to finish the run, not train on."""
    return {} if trained is None else {"trained": trained}


class RunStateFile(Subscriber):
    """Writes run.json's state at each of the run's own events (none per epoch)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def started(self, event: Started) -> None:
        runs.set_state(self.path, "running", resumed_from_epoch=event.first_epoch or None)

    def trained(self, event: Trained) -> None:
        runs.set_state(self.path, "running", resumed_from_epoch=event.first_epoch or None,
                       **ended(event.epochs))

    def interrupted(self, event: Interrupted) -> None:
        runs.set_state(self.path, "interrupted", epochs_done=event.epochs_done,
                       **ended(event.trained))

    def failed(self, event: Failed) -> None:
        runs.set_state(self.path, "failed", error=event.error, **ended(event.trained))

    def finished(self, event: Finished) -> None:
        runs.set_state(self.path, "completed")
