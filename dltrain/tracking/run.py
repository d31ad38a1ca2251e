"""One MLflow run for one run folder: made (or continued, by the id tracking.json keeps),
nested under its cross-validation's or search's parent, fed params, epochs, results, files and
its final status. A server that stops answering costs one warning: training goes on, and
tracking.json lists what it did not receive."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from rich.markup import escape

from dltrain.config.schema import Config
from dltrain.console import err
from dltrain.errors import RunError
from dltrain.runs import records
from dltrain.tracking import store
from dltrain.tracking.params import config_params, numeric_metrics, run_tags
from dltrain.urls import scrubbed, shown

# run.json's end states as MLflow's run statuses.
STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
BATCH = 100  # params per call; MLflow takes at most 100 (and 1000 metrics)


class TrackedRun:
    """The MLflow run of `folder`, opened with `open`; every call after the server went away
    is noted instead of made."""

    def __init__(self, mlflow: Any, uri: str, folder: Path, record: records.Tracking) -> None:
        self.mlflow, self.uri, self.folder, self.record = mlflow, uri, folder, record
        self.lost = False
        self.missed_epochs: list[int] = []
        self.missed: list[str] = []

    @property
    def run_id(self) -> str:
        assert self.record.run_id is not None
        return self.record.run_id

    @classmethod
    def open(cls, config: Config, folder: Path, kind: str) -> TrackedRun:
        """The folder's run: continued when tracking.json names one the store still has, else
        made (nested when the folder's parent is a tracked cross-validation or search).

        Raises:
            RunError: the store cannot be opened or refuses the run (naming its URI).
        """
        recorded = records.read_if_present(folder, records.Tracking)
        uri = store.tracking_uri(config, recorded.uri if recorded else None)
        try:
            mlflow = store.client(uri)
            tracked = cls(mlflow, uri, folder, records.Tracking.of({"uri": shown(uri)}))
            if not tracked.continued(recorded):
                tracked.create(config, kind)
        except Exception as exc:
            raise RunError(f"MLflow at {shown(uri)} refused the run: {first_line(exc, uri)}. Check "
                           "tracking.mlflow (or $MLFLOW_TRACKING_URI), or drop the tracking "
                           "section.") from None
        tracked.save()
        return tracked

    def continued(self, recorded: records.Tracking | None) -> bool:
        """The recorded run, running again, when the store still holds it."""
        if recorded is None or recorded.run_id is None:
            return False
        try:
            self.mlflow.get_run(recorded.run_id)
        except Exception:  # another store now, or the run deleted: a new one is made
            return False
        # What a lost server missed: the epochs are logged now (MLflow lacks them), the rest
        # when this session ends.
        kept = {key: value for key, value in recorded.as_json().items() if key != "not_logged"}
        self.record = records.Tracking.of({**kept, "uri": shown(self.uri)})
        self.mlflow.update_run(recorded.run_id, status="RUNNING")
        return True

    def create(self, config: Config, kind: str) -> None:
        assert config.tracking is not None and config.tracking.mlflow is not None
        settings = config.tracking.mlflow
        parent = records.read_if_present(self.folder.parent, records.Tracking)
        nested = parent is not None and parent.run_id is not None
        experiment = store.experiment_id(self.mlflow, settings.experiment or config.name,
                                         self.uri)
        tags = run_tags(self.folder, config, kind)
        if nested:
            assert parent is not None
            tags["mlflow.parentRunId"] = str(parent.run_id)
        name = self.folder.name if nested else (settings.run_name or self.folder.name)
        run = self.mlflow.create_run(experiment, run_name=name, tags=tags)
        self.record = records.Tracking.of({
            "uri": shown(self.uri), "experiment_id": experiment, "run_id": run.info.run_id,
            **({"parent_run_id": parent.run_id} if nested and parent else {})})
        self.log_params(config_params(config))

    def log_params(self, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        items = [Param(key, value) for key, value in params.items()]
        for at in range(0, len(items), BATCH):
            self.mlflow.log_batch(self.run_id, params=items[at:at + BATCH])

    def logged_epochs(self) -> int:
        """The last epoch the run holds (0: none), as its loss's history says."""
        history = self.call("the epochs logged", lambda: self.mlflow.get_metric_history(
            self.run_id, "loss"))
        return max((point.step for point in history or []), default=0)

    def log_epochs(self, rows: Iterable[dict[str, float]]) -> None:
        """history.csv's rows, each value at step = its epoch."""
        from mlflow.entities import Metric

        rows = list(rows)
        if not rows:
            return
        now = int(time.time() * 1000)
        points = [Metric(key, float(value), now, int(row["epoch"]))
                  for row in rows for key, value in row.items() if key != "epoch"]
        if self.call(None, lambda: self.log_points(points)) is None:
            self.missed_epochs += [int(row["epoch"]) for row in rows]

    def log_points(self, points: list[Any]) -> bool:
        for at in range(0, len(points), 1000):  # MLflow's most metrics per call
            self.mlflow.log_batch(self.run_id, metrics=points[at:at + 1000])
        return True

    def log_results(self, metrics: dict[str, Any]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        points = [Metric(key, value, now, 0) for key, value in numeric_metrics(metrics).items()]
        self.call("the test metrics", lambda: self.log_points(points))

    def log_files(self, names: Iterable[str], under: str | None = None) -> None:
        """The run folder's files that exist, as artifacts (`under` a folder of them)."""
        for name in names:
            if (self.folder / name).is_file():
                self.call(f"artifact {name}", partial(self.mlflow.log_artifact, self.run_id,
                                                      str(self.folder / name), under))

    def tag(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.call(f"tag {key}", partial(self.mlflow.set_tag, self.run_id, key, value))

    def end(self, state: str) -> None:
        """The run's status as run.json's `state` (completed, failed, interrupted), and
        tracking.json with what the server did not receive."""
        status = STATUS.get(state, "FAILED")
        self.call(f"status {status}", lambda: self.mlflow.set_terminated(self.run_id, status))
        self.save()

    def call(self, what: str | None, action: Callable[[], Any]) -> Any:
        """`action`'s result, or None once the server is gone (the first failure warns);
        `what` (None: the caller notes it) joins tracking.json's not_logged."""
        if not self.lost:
            try:
                return action()
            except Exception as exc:  # a tracker never stops the training
                self.lost = True
                warn(f"MLflow at {shown(self.uri)} stopped answering ({first_line(exc, self.uri)}); "
                     f"training goes on without it, and {self.folder / records.Tracking.FILE} "
                     "lists what it did not receive.")
        if what is not None:
            self.missed.append(what)
        return None

    def save(self) -> None:
        missed = ([f"epochs {span(self.missed_epochs)}"] if self.missed_epochs else []) \
            + self.missed
        data = {**self.record.as_json(), **({"not_logged": missed} if missed else {})}
        records.write(self.folder, records.Tracking.of(data))


def span(epochs: list[int]) -> str:
    return str(epochs[0]) if len(epochs) == 1 else f"{min(epochs)}-{max(epochs)}"


def first_line(exc: BaseException, uri: str) -> str:
    """The error's first line, without the URI's password (MLflow's errors quote the URL)."""
    lines = scrubbed(str(exc), uri).strip().splitlines()
    return lines[0][:200] if lines else type(exc).__name__


def warn(text: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def mark_pruned(config: Config, folder: Path, epoch: int) -> None:
    """A search's trial that its pruner stopped: its run KILLED and tagged with the epoch (its
    run.json says completed: the run ended as early stopping ends one, with all its files)."""
    recorded = records.read_if_present(folder, records.Tracking)
    if not store.tracked(config) or recorded is None or recorded.run_id is None:
        return
    uri = store.tracking_uri(config, recorded.uri)
    try:
        mlflow = store.client(uri)
        mlflow.set_tag(recorded.run_id, "dltrain.pruned_after_epoch", str(epoch))
        mlflow.set_terminated(recorded.run_id, "KILLED")
    except Exception as exc:
        warn(f"MLflow at {shown(uri)} did not hear that {folder.name} was pruned "
             f"({first_line(exc, uri)}).")
