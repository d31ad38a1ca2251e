"""One tracked run against a stand-in for MLflow's client: a server that stops answering costs
one warning, and tracking.json lists what it did not receive."""

from __future__ import annotations

import collections
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from dltrain.runs import records
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
