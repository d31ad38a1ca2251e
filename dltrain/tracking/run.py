"""One MLflow run for one run folder: made (or continued, by the id tracking.json keeps),
nested under its cross-validation's or search's parent, fed params, epochs, results, files and
its final status. A server that stops answering costs one warning: training goes on (a fold or
trial that starts while it is gone trains untracked), and tracking.json lists what it did not
receive. A call the server refuses (an artifact too large) is noted the same way, and the run
goes on being logged."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from functools import partial
from pathlib import Path
from typing import Any

from rich.markup import escape

from dltrain.config.schema import Config
from dltrain.console import err
from dltrain.errors import DltrainError, RunError
from dltrain.runs import records
from dltrain.tracking import store
from dltrain.tracking.params import config_params, numeric_metrics, run_tags
from dltrain.urls import scrubbed, shown

# run.json's end states as MLflow's run statuses.
STATUS = {"completed": "FINISHED", "failed": "FAILED", "interrupted": "KILLED"}
BATCH = 100  # params per call; MLflow takes at most 100 (and 1000 metrics)
# The servers this process found gone and warned about: the folds or trials that follow (and
# their parent) warn no more while it stays gone; one that answers again is forgotten.
GONE: set[str] = set()


class TrackedRun:
    """The MLflow run of `folder`, opened with `open`; every call after the server went away
    is noted instead of made."""

    def __init__(self, mlflow: Any, uri: str, folder: Path, record: records.Tracking) -> None:
        self.mlflow, self.uri, self.folder, self.record = mlflow, uri, folder, record
        self.lost = False  # the server stopped answering: no more calls but the status
        self.refused = False  # a call was refused (and warned about)
        self.missed_epochs: list[int] = []
        self.missed: list[str] = []

    @property
    def run_id(self) -> str:
        assert self.record.run_id is not None
        return self.record.run_id

    @classmethod
    def open(cls, config: Config, folder: Path, kind: str) -> TrackedRun | None:
        """The folder's run: continued when tracking.json names one the store still has, else
        made (nested when the folder's parent is a tracked cross-validation or search, in its
        store). None for a fold or trial whose server is gone: it trains untracked, and its
        tracking.json says the run was not logged (warned once while the server stays gone).

        Raises:
            RunError: the store cannot be opened or refuses the run (naming its URI).
        """
        recorded = records.read_if_present(folder, records.Tracking)
        parent = records.read_if_present(folder.parent, records.Tracking)
        nested = parent is not None and parent.run_id is not None
        logged_to = recorded.uri if recorded else parent.uri if nested and parent else None
        uri = store.tracking_uri(config, logged_to)
        try:
            mlflow = store.client(uri)
            tracked = cls(mlflow, uri, folder, records.Tracking.of({"uri": shown(uri)}))
            if not tracked.continued(recorded):
                tracked.create(config, kind)
        except Exception as exc:
            if nested and unreachable(exc):  # a fold's or trial's: its siblings trained on
                gone(uri, exc, folder)
                records.write(folder, records.Tracking.of({"uri": shown(uri),
                                                           "not_logged": ["run"]}))
                return None
            raise RunError(f"MLflow at {shown(uri)} refused the run: {first_line(exc, uri)}. Check "
                           "tracking.mlflow (or $MLFLOW_TRACKING_URI), or drop the tracking "
                           "section.") from None
        GONE.discard(uri)
        tracked.save()
        return tracked

    def continued(self, recorded: records.Tracking | None) -> bool:
        """The recorded run, running again, when the store still holds it."""
        if recorded is None or recorded.run_id is None:
            return False
        try:
            found = self.mlflow.get_run(recorded.run_id)
        except Exception as exc:
            if getattr(exc, "error_code", None) != "RESOURCE_DOES_NOT_EXIST":
                raise  # the store did not say the run is gone: never a second run quietly
            found = None
        if found is None or found.info.lifecycle_stage == "deleted":
            warn(f"MLflow at {shown(self.uri)} no longer has run {recorded.run_id}, which "
                 f"{self.folder / records.Tracking.FILE} names; a new run is made for it.")
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

    def end(self, state: str) -> None:
        """The run's status as run.json's `state` (completed, failed, interrupted), and
        tracking.json with what the server did not receive. The status is asked for even after
        the server seemed gone: a run left RUNNING in MLflow would look alive for ever."""
        status = STATUS.get(state, "FAILED")
        self.call(f"status {status}", lambda: self.mlflow.set_terminated(self.run_id, status),
                  always=True)
        self.save()

    def call(self, what: str | None, action: Callable[[], Any], always: bool = False) -> Any:
        """`action`'s result, or None when it fails or the server is gone (not asked again
        unless `always`); `what` (None: the caller notes it) joins tracking.json's not_logged.
        A server that stops answering warns once; a call it refuses warns once a run."""
        if always or not self.lost:
            try:
                found = action()
            except Exception as exc:  # a tracker never stops the training
                self.failed(exc, what)
            else:
                GONE.discard(self.uri)
                return found
        if what is not None:
            self.missed.append(what)
        return None

    def failed(self, exc: Exception, what: str | None) -> None:
        if unreachable(exc):
            self.lost = True
            gone(self.uri, exc, self.folder)
        elif not self.refused:
            self.refused = True
            warn(f"MLflow at {shown(self.uri)} refused {what or 'the epochs'} "
                 f"({first_line(exc, self.uri)}); the run goes on being logged, and "
                 f"{self.folder / records.Tracking.FILE} lists what it did not receive.")

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


def unreachable(exc: BaseException) -> bool:
    """The server is gone (its connection refused, reset or timed out), as opposed to one call
    refused (a 413, a bad value) or a TLS setting MLflow refuses: in `exc` or what it wraps."""
    requests = sys.modules.get("requests")  # loaded by MLflow's client when it raised
    lost: tuple[type[BaseException], ...] = (ConnectionError, TimeoutError)
    if requests is not None:
        if isinstance(exc, requests.exceptions.SSLError):
            return False
        lost += (requests.exceptions.ConnectionError, requests.exceptions.Timeout)
    seen: set[int] = set()
    found: BaseException | None = exc
    while found is not None and id(found) not in seen:
        if isinstance(found, lost):
            return True
        seen.add(id(found))
        found = found.__cause__ or found.__context__
    return False


def gone(uri: str, exc: BaseException, folder: Path) -> None:
    """The one warning while a server stays gone."""
    if uri not in GONE:
        GONE.add(uri)
        warn(f"MLflow at {shown(uri)} stopped answering ({first_line(exc, uri)}); training goes "
             f"on without it, and {folder / records.Tracking.FILE} (and each later run's) "
             "lists what it did not receive.")


def warn(text: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(text)}", highlight=False, soft_wrap=True)


def mark_pruned(config: Config, folder: Path, epoch: int) -> None:
    """A search's trial that its pruner stopped: its run KILLED and tagged with the epoch (its
    run.json says completed: the run ended as early stopping ends one, with all its files)."""
    recorded = records.read_if_present(folder, records.Tracking)
    if not store.tracked(config) or recorded is None or recorded.run_id is None:
        return
    try:
        uri = store.tracking_uri(config, recorded.uri)
    except DltrainError as exc:  # its password not kept, nor in $MLFLOW_TRACKING_URI now
        warn(f"MLflow did not hear that {folder.name} was pruned: {exc}")
        return
    try:
        mlflow = store.client(uri)
        mlflow.set_tag(recorded.run_id, "dltrain.pruned_after_epoch", str(epoch))
        mlflow.set_terminated(recorded.run_id, "KILLED")
    except Exception as exc:
        if unreachable(exc):  # one warning while the server stays gone
            gone(uri, exc, folder)
        else:
            warn(f"MLflow at {shown(uri)} did not hear that {folder.name} was pruned "
                 f"({first_line(exc, uri)}).")
        return
    GONE.discard(uri)
