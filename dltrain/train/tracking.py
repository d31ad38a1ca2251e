"""The experiment tracker as one subscriber of the run's events: it opens (or continues) the
run's MLflow run when training starts, logs each epoch once its checkpoint keeps it, and the
results, files and status when the run ends (dltrain.tracking does the logging)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from dltrain.config.schema import Config
from dltrain.runs import names, records
from dltrain.tracking.params import kind_of
from dltrain.tracking.run import TrackedRun
from dltrain.tracking.store import tracked
from dltrain.train.events import (
    EpochEnded,
    Failed,
    Finished,
    Interrupted,
    Started,
    Subscriber,
    Trained,
)
from dltrain.train.start import Start

# What a finished run hands MLflow besides its numbers; the model under model/.
RESULT_FILES = (names.METRICS_FILE, names.HISTORY_FILE, names.CURVES_FILE, names.CONFUSION_FILE,
                names.PREDICTED_FILE, names.RESIDUALS_FILE, names.MANIFEST_FILE)


class MlflowTracking(Subscriber):
    """Logs the run to MLflow. An epoch is logged once last.keras holds it (`kept`), so an
    epoch a resume trains again is never logged twice; a resume first logs the epochs its run
    holds and MLflow does not (those a lost server missed too). The tracker hears an epoch end
    before last.keras holds it, so MLflow gets each epoch as the next one ends (one epoch
    late), and the last as training ends."""

    def __init__(self, config: Config, smoke: bool, history: list[dict[str, float]],
                 kept: Callable[[], int]) -> None:
        self.config, self.smoke, self.kept = config, smoke, kept
        self.earlier = list(history)  # a resumed run's epochs
        self.pending: list[dict[str, Any]] = []
        self.run: TrackedRun | None = None

    def started(self, event: Started) -> None:
        manifest = records.read_if_present(event.run_dir, records.Manifest)
        synthetic = bool(manifest is not None and manifest.synthetic)
        self.run = TrackedRun.open(self.config, event.run_dir, kind_of(self.smoke, synthetic))
        if self.run is None:  # a fold or trial whose server is gone: it trains untracked
            return
        self.run.log_files([names.CONFIG_FILE])
        if self.earlier:
            logged = self.run.logged_epochs()
            self.run.log_epochs(row for row in self.earlier if row["epoch"] > logged)

    def epoch_ended(self, event: EpochEnded) -> None:
        self.pending.append({"epoch": event.epoch, **{key: float(value) for key, value
                                                      in event.logs.items()},
                             "seconds": event.seconds})  # history.csv's row
        self.flush(self.kept())

    def flush(self, upto: float) -> None:
        if self.run is None:
            return
        self.run.log_epochs(row for row in self.pending if row["epoch"] <= upto)
        self.pending = [row for row in self.pending if row["epoch"] > upto]

    def trained(self, event: Trained) -> None:
        self.flush(float("inf"))  # training is over: every row is final

    def interrupted(self, event: Interrupted) -> None:
        self.flush(event.epochs_done)
        self.end("interrupted")

    def failed(self, event: Failed) -> None:
        self.flush(self.kept())
        self.end("failed")

    def finished(self, event: Finished) -> None:
        if self.run is None:
            return
        self.run.log_results(event.metrics)
        self.run.log_files(RESULT_FILES)
        self.run.log_files([names.MODEL_FILE], "model")
        self.end("completed")

    def end(self, state: str) -> None:
        if self.run is not None:
            self.run.end(state)
            self.run = None


def tracking_subscribers(config: Config, path: Path, start: Start) -> list[Subscriber]:
    """The tracker, when the config has one."""
    if not tracked(config):
        return []
    return [MlflowTracking(config, start.smoke, start.history, lambda: start.kept)]
