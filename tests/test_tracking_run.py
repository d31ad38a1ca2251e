"""One tracked run against a stand-in for MLflow's client: a server that stops answering costs
one warning, and tracking.json lists what it did not receive; a call it refuses is noted and the
run goes on; a fold or trial whose server is gone trains untracked; a resume never makes a
second run quietly."""

from __future__ import annotations

import collections
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from conftest import CONFIGS
from dltrain.config.load import load_config
from dltrain.errors import DltrainError, RunError
from dltrain.runs import records
from dltrain.tracking import run as tracking_run
from dltrain.tracking import store
from dltrain.tracking.run import TrackedRun


@pytest.fixture(autouse=True)
def entities(monkeypatch: pytest.MonkeyPatch) -> None:
    """MLflow's Metric and Param as plain records: importing MLflow costs 2 s, which the fast
    tests cannot spend (tests/test_train_tracking.py uses the real ones)."""
    fake = types.ModuleType("mlflow.entities")
    fake.Metric = collections.namedtuple("Metric", "key value timestamp step")  # type: ignore[attr-defined]
    fake.Param = collections.namedtuple("Param", "key value")  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "mlflow", types.ModuleType("mlflow"))
    monkeypatch.setitem(sys.modules, "mlflow.entities", fake)
    monkeypatch.setattr(tracking_run, "GONE", set(), raising=False)  # each test's servers are its own


class GoneAfter:
    """MLflow's client, answering `calls` times, then refusing the connection (whose error
    quotes the URL, password and all, as MLflow's does)."""

    def __init__(self, calls: int) -> None:
        self.left, self.logged = calls, []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            if self.left <= 0:
                raise ConnectionError("API request to http://me:s3cret@host:5000/api failed")
            self.left -= 1
            self.logged.append(name)
        return call


def tracked(tmp_path: Path, client: GoneAfter) -> TrackedRun:
    uri = "http://me:s3cret@host:5000"
    return TrackedRun(client, uri, tmp_path, records.Tracking.of({"uri": "http://me:***@host:5000",
                                                                  "run_id": "r1"}))


def test_a_server_gone_mid_run_warns_once_and_the_record_says_what_it_missed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tracked(tmp_path, GoneAfter(calls=1))
    run.log_epochs([{"epoch": 1, "loss": 0.5}])
    run.log_epochs([{"epoch": 2, "loss": 0.4}, {"epoch": 3, "loss": 0.3}])
    run.log_epochs([{"epoch": 4, "loss": 0.2}])
    run.log_results({"test": {"accuracy": 0.9}})
    (tmp_path / "metrics.json").write_text("{}")
    run.log_files(["metrics.json", "absent.png"])
    run.end("completed")
    err = capsys.readouterr().err
    assert err.count("warning:") == 1
    assert "MLflow at http://me:***@host:5000 stopped answering" in err
    assert "s3cret" not in err
    assert records.read(tmp_path, records.Tracking).not_logged == [
        "epochs 2-4", "the test metrics", "artifact metrics.json", "status FINISHED"]


def test_a_run_whose_server_stays_up_notes_nothing(tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    client = GoneAfter(calls=10)
    run = tracked(tmp_path, client)
    run.log_epochs([{"epoch": 1, "loss": 0.5}])
    run.end("interrupted")
    assert client.logged == ["log_batch", "set_terminated"]
    assert "warning" not in capsys.readouterr().err
    recorded = records.read(tmp_path, records.Tracking)
    assert recorded.not_logged is None and recorded.run_id == "r1"


class Refusing:
    """MLflow's client that answers every call but refuses `refused` (as a 413 on a large
    artifact: an error that is no lost connection)."""

    def __init__(self, refused: str) -> None:
        self.refused, self.logged = refused, []

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            if name == self.refused:
                raise RuntimeError("413 Request Entity Too Large for http://me:s3cret@host:5000")
            self.logged.append(name)
        return call


def test_a_refused_call_is_noted_and_the_run_goes_on_and_ends(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    client = Refusing("log_artifact")
    run = tracked(tmp_path, client)  # type: ignore[arg-type]
    (tmp_path / "model.keras").write_text("weights")
    run.log_files(["model.keras"], "model")
    run.log_epochs([{"epoch": 1, "loss": 0.5}])
    run.end("completed")
    assert client.logged == ["log_batch", "set_terminated"]
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "refused artifact model.keras (413" in err
    assert "stopped answering" not in err and "s3cret" not in err
    assert records.read(tmp_path, records.Tracking).not_logged == ["artifact model.keras"]


class Back(GoneAfter):
    """A server that is gone for `down` calls after `calls`, then answers again."""

    def __init__(self, calls: int, down: int) -> None:
        super().__init__(calls)
        self.down = down

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> None:
            if self.left <= 0 and self.down > 0:
                self.down -= 1
                raise ConnectionError("Connection refused")
            self.left -= 1
            self.logged.append(name)
        return call


def test_a_lost_server_is_still_asked_for_the_runs_status(tmp_path: Path) -> None:
    client = Back(calls=0, down=1)
    run = tracked(tmp_path, client)  # type: ignore[arg-type]
    run.log_epochs([{"epoch": 1, "loss": 0.5}])
    run.log_results({"test": {"accuracy": 0.9}})  # not asked: the server seemed gone
    run.end("completed")
    assert client.logged == ["set_terminated"]
    assert records.read(tmp_path, records.Tracking).not_logged == ["epochs 1",
                                                                   "the test metrics"]


def tracked_config(tmp_path: Path) -> Any:
    return load_config(CONFIGS / "quickstart.yaml", ["tracking.mlflow.experiment=exp"]).config


def test_a_fold_whose_server_is_gone_trains_untracked_and_warns_once_for_all(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://me:s3cret@host:5000")
    monkeypatch.setattr(store, "client", lambda uri: GoneAfter(calls=0))
    records.write(tmp_path, records.Tracking.of({"uri": "http://me:***@host:5000",
                                                 "run_id": "parent"}))
    for fold in ("fold-0", "fold-1"):
        (tmp_path / fold).mkdir()
        assert TrackedRun.open(tracked_config(tmp_path), tmp_path / fold, "fit") is None
        assert records.read(tmp_path / fold, records.Tracking).as_json() == {
            "uri": "http://me:***@host:5000", "not_logged": ["run"]}
    err = capsys.readouterr().err
    assert err.count("warning:") == 1 and "http://me:***@host:5000 stopped answering" in err
    assert "s3cret" not in err
    # A run of its own (no tracked parent): its server gone at its start is exit 2.
    with pytest.raises(RunError, match=r"MLflow at http://me:\*\*\*@host:5000 refused the run"):
        TrackedRun.open(tracked_config(tmp_path), tmp_path / "fold-0" / "alone", "fit")


class Store:
    """MLflow's client for a resume: get_run answers `found` or raises `error`."""

    def __init__(self, error: Exception | None = None) -> None:
        self.error, self.logged = error, []

    def get_run(self, run_id: str) -> Any:
        if self.error is not None:
            raise self.error
        return types.SimpleNamespace(info=types.SimpleNamespace(lifecycle_stage="active"))

    def __getattr__(self, name: str) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            self.logged.append(name)
            return types.SimpleNamespace(info=types.SimpleNamespace(run_id="new"),
                                         experiment_id="1")
        return call


class MlflowError(Exception):
    def __init__(self, code: str) -> None:
        super().__init__(f"{code}: no")
        self.error_code = code


def test_a_resume_makes_a_new_run_only_when_the_store_says_the_old_one_is_gone(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://host:5000")
    records.write(tmp_path, records.Tracking.of({"uri": "http://host:5000", "run_id": "old"}))
    refusing = Store(MlflowError("PERMISSION_DENIED"))
    monkeypatch.setattr(store, "client", lambda uri: refusing)
    with pytest.raises(RunError, match="refused the run: PERMISSION_DENIED"):
        TrackedRun.open(tracked_config(tmp_path), tmp_path, "fit")
    assert refusing.logged == []  # no second run
    gone = Store(MlflowError("RESOURCE_DOES_NOT_EXIST"))
    monkeypatch.setattr(store, "client", lambda uri: gone)
    opened = TrackedRun.open(tracked_config(tmp_path), tmp_path, "fit")
    assert opened is not None and opened.run_id == "new" and "create_run" in gone.logged
    assert "no longer has run old" in capsys.readouterr().err


def test_a_resume_keeps_the_server_its_run_was_logged_to(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    asked: list[str] = []
    monkeypatch.setattr(store, "client", lambda uri: asked.append(uri) or Store())
    records.write(tmp_path, records.Tracking.of({"uri": "http://host:5000", "run_id": "old"}))
    opened = TrackedRun.open(tracked_config(tmp_path), tmp_path, "fit")
    assert asked == ["http://host:5000"] and opened is not None and opened.run_id == "old"
    # A new fold of a resumed cross-validation: its parent's server, not a SQLite file.
    (tmp_path / "fold-1").mkdir()
    TrackedRun.open(tracked_config(tmp_path), tmp_path / "fold-1", "fit")
    assert asked[-1] == "http://host:5000"
    # Logged with a password, which no run file keeps: asked for, not a new run elsewhere.
    records.write(tmp_path, records.Tracking.of({"uri": "http://me:***@host:5000",
                                                 "run_id": "old"}))
    with pytest.raises(DltrainError, match="set MLFLOW_TRACKING_URI to that URI, password"):
        TrackedRun.open(tracked_config(tmp_path), tmp_path, "fit")
