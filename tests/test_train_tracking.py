"""MLflow tracking end to end, against a real `mlflow server` (SQLite behind it) on 127.0.0.1
that this module starts once and stops at its end, read back with MlflowClient: a fit and its
resume as one run with continuous epochs, a cross-validation's parent with nested folds, a
pruned trial, the embedded default store, a server that does not answer, and one killed while
a cross-validation trains (the module's last test: it stops the shared server)."""

from __future__ import annotations

import importlib.util
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import CONFIGS, run_cli
from dltrain.runs import records
from dltrain.runs.layout import read_history

if importlib.util.find_spec("mlflow") is None:
    if os.environ.get("CI") == "true":  # CI must run these: .ci/run installs the mlflow extra
        pytest.fail("MLflow is not installed (CI=true: make install adds the mlflow extra)",
                    pytrace=False)
    pytest.skip("MLflow is not installed: pip install -e \".[mlflow]\"", allow_module_level=True)
pytestmark = [pytest.mark.slow,  # MLflow's SQLite store on SQLAlchemy 2.1: not ours to fix
              pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated")]

SERVER_START = 120  # seconds: its first start makes the database's tables (15 s on a busy CPU)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.uri = f"http://127.0.0.1:{self.port}"
        mlflow = Path(sys.executable).with_name("mlflow")
        # Without its job runner (a dozen worker processes the tests never use).
        env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        self.log = (folder / "server.log").open("w")
        self.process = subprocess.Popen(
            [str(mlflow), "server", "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
             "--artifacts-destination", str(folder / "artifacts"), "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", "1"],
            stdout=self.log, stderr=subprocess.STDOUT, env=env, start_new_session=True)

    def wait_until_up(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with urllib.request.urlopen(f"{self.uri}/health", timeout=2):
                    return
            except OSError:
                alive = self.process.poll() is None
                if not alive or time.monotonic() > deadline:
                    self.stop()
                    log = Path(self.log.name).read_text()[-3000:]
                    pytest.fail(f"mlflow server did not answer in {timeout} s "
                                f"({'running' if alive else 'exited'}): {log}")
                time.sleep(0.2)

    def stop(self, signum: int = signal.SIGTERM) -> None:
        """The server and its workers (its own process group)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signum)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=20)
        self.log.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    running = Server(tmp_path_factory.mktemp("mlflow-server"))
    running.wait_until_up(SERVER_START)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shipped Pima classifier (768 rows, Dense 10-8-1): seconds per fit."""
    path = tmp_path_factory.mktemp("config") / "pima.yaml"
    path.write_text((CONFIGS / "tabular_binary.yaml").read_text().replace(
        "../dltrain", str(CONFIGS.parent / "dltrain")))
    return path


def client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=uri)


def steps(mlflow: Any, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((point.step, point.value) for point in mlflow.get_metric_history(run_id, key))


def tracking(run: Path) -> records.Tracking:
    return records.read(run, records.Tracking)


def stop_after_epoch(monkeypatch: pytest.MonkeyPatch, epoch: int, stop: Any) -> None:
    """`stop()` as the tracker hears `epoch` end (the run's own files are written after)."""
    from dltrain.train.tracking import MlflowTracking

    heard = MlflowTracking.epoch_ended

    def epoch_ended(self: MlflowTracking, event: Any) -> None:
        heard(self, event)
        if event.epoch == epoch:
            stop()

    monkeypatch.setattr(MlflowTracking, "epoch_ended", epoch_ended)


def test_a_fit_and_its_resume_are_one_run_with_every_epoch_once(
        server: Server, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The password rides in $MLFLOW_TRACKING_URI (the server ignores it): no run file keeps it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri.replace("//", "//me:s3cret@"))
    run = tmp_path / "run"
    stop_after_epoch(monkeypatch, 2, lambda: os.kill(os.getpid(), signal.SIGINT))
    code, out, err = run_cli(capsys, "fit", config, "--run-dir", run, "--epochs", "4",
                             "--set", "tracking.mlflow.experiment=pima",
                             "--set", "tracking.mlflow.run_name=first")
    assert code == 130, out + err
    assert "s3cret" not in out + err
    mlflow = client(server.uri)
    run_id = tracking(run).run_id
    assert mlflow.get_run(run_id).info.status == "KILLED"
    # Ctrl-C came as the tracker heard epoch 2 end, before its row and checkpoint: it is
    # trained again on resume, so MLflow holds what the run kept, no more.
    kept = [row["epoch"] for row in read_history(run / "history.csv")]
    assert [step for step, _ in steps(mlflow, run_id, "loss")] == kept == [1]
    monkeypatch.undo()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri.replace("//", "//me:s3cret@"))
    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, out + err
    assert "s3cret" not in out + err

    assert tracking(run).run_id == run_id and tracking(run).uri == server.uri.replace(
        "//", "//me:***@")
    logged = mlflow.get_run(run_id)
    assert logged.info.status == "FINISHED" and logged.info.run_name == "first"
    history = read_history(run / "history.csv")
    for key in ("loss", "val_accuracy", "seconds"):
        assert steps(mlflow, run_id, key) == [(row["epoch"], row[key]) for row in history]
    assert [row["epoch"] for row in history] == [1, 2, 3, 4]
    metrics = records.read(run, records.Metrics)
    assert logged.data.metrics["test_accuracy"] == pytest.approx(metrics.test["accuracy"])
    params = logged.data.params
    assert params["training.epochs"] == "4" and params["model.layers.0.Dense.units"] == "10"
    assert params["tracking.mlflow.experiment"] == "pima" and params["seed"] == "42"
    tags = logged.data.tags
    assert tags["dltrain.kind"] == "fit" and tags["dltrain.backend"] == "tensorflow"
    assert tags["dltrain.device"] and tags["dltrain.version"] and tags["dltrain.data_sha256"]
    artifacts = {item.path for item in mlflow.list_artifacts(run_id)}
    assert {"config.yaml", "metrics.json", "curves.png", "history.csv", "model"} <= artifacts
    assert [item.path for item in mlflow.list_artifacts(run_id, "model")] == ["model/model.keras"]
    leaked = [path.name for path in run.rglob("*") if path.is_file()
              and b"s3cret" in path.read_bytes()]
    assert leaked == []


def test_a_cross_validation_is_a_parent_with_its_folds_nested(
        server: Server, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "cv"
    code, out, err = run_cli(capsys, "cv", config, "--folds", "2", "--run-dir", parent,
                             "--set", "training.epochs=1",
                             "--set", f"tracking.mlflow.uri={server.uri}",
                             "--set", "tracking.mlflow.experiment=pima-cv")
    assert code == 0, out + err
    mlflow = client(server.uri)
    parent_id = tracking(parent).run_id
    logged = mlflow.get_run(parent_id)
    assert logged.info.status == "FINISHED" and logged.data.tags["dltrain.kind"] == "cv"
    assert "test_accuracy_mean" in logged.data.metrics
    assert "cv.json" in {item.path for item in mlflow.list_artifacts(parent_id)}
    children = mlflow.search_runs(
        [logged.info.experiment_id], f"tags.mlflow.parentRunId = '{parent_id}'")
    assert sorted(child.info.run_name for child in children) == ["fold-0", "fold-1"]
    assert {child.info.run_id for child in children} == {
        tracking(parent / f"fold-{index}").run_id for index in (0, 1)}
    assert all(child.info.status == "FINISHED" for child in children)


def test_a_search_is_a_parent_with_its_trials_nested_and_their_values_as_params(
        server: Server, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    searched = tmp_path / "search.yaml"
    searched.write_text(config.read_text() + "search:\n  method: grid\n  parameters:\n"
                        "    optimizer.learning_rate: {choice: [0.01, 0.001]}\n")
    parent = tmp_path / "tune"
    code, out, err = run_cli(capsys, "tune", searched, "--run-dir", parent,
                             "--set", "training.epochs=1",
                             "--set", f"tracking.mlflow.uri={server.uri}",
                             "--set", "tracking.mlflow.experiment=pima-tune")
    assert code == 0, out + err
    mlflow = client(server.uri)
    logged = mlflow.get_run(tracking(parent).run_id)
    assert logged.info.status == "FINISHED" and logged.data.tags["dltrain.kind"] == "tune"
    assert "tune.json" in {item.path for item in mlflow.list_artifacts(logged.info.run_id)}
    trials = mlflow.search_runs([logged.info.experiment_id],
                                f"tags.mlflow.parentRunId = '{logged.info.run_id}'")
    search = records.read(parent, records.Search)
    assert search.trials is not None
    assert sorted((trial.info.run_name, trial.data.params["optimizer.learning_rate"])
                  for trial in trials) == sorted(
        (Path(row["run_dir"]).name, str(row["params"]["optimizer.learning_rate"]))
        for row in search.trials)
    assert {trial.data.params["optimizer.learning_rate"] for trial in trials} == {"0.01", "0.001"}


def test_a_pruned_trial_is_killed_and_says_after_which_epoch(server: Server, config: Path,
                                                             tmp_path: Path) -> None:
    from dltrain.config.load import load_config
    from dltrain.tracking.run import mark_pruned

    mlflow = client(server.uri)
    run_id = mlflow.create_run(mlflow.create_experiment("pruned")).info.run_id
    records.write(tmp_path, records.Tracking.of({"uri": server.uri, "run_id": run_id}))
    loaded = load_config(config, [f"tracking.mlflow.uri={server.uri}"])
    mark_pruned(loaded.config, tmp_path, 2)
    logged = mlflow.get_run(run_id)
    assert logged.info.status == "KILLED"
    assert logged.data.tags["dltrain.pruned_after_epoch"] == "2"


def test_a_server_that_does_not_answer_is_exit_2_before_any_folder(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    uri = f"http://me:s3cret@127.0.0.1:{free_port()}"
    code, out, err = run_cli(capsys, "fit", config, "--run-dir", tmp_path / "run",
                             "--set", "tracking.mlflow.experiment=x", "--epochs", "1",
                             "--set", f"tracking.mlflow.uri={uri.replace('me:s3cret@', '')}")
    assert code == 2
    assert f"{uri.replace('me:s3cret@', '')} does not answer" in err
    assert "nothing was trained" in err and not (tmp_path / "run").exists()


def test_without_a_uri_the_store_is_a_sqlite_file_beside_the_runs(
        config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    code, out, err = run_cli(capsys, "fit", config, "--epochs", "1",
                             "--set", "tracking.mlflow.experiment=local")
    assert code == 0, out + err
    (run,) = (tmp_path / "runs").glob("tabular_binary-*")
    store = f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}"
    assert tracking(run).uri == store
    mlflow = client(store)
    logged = mlflow.get_run(tracking(run).run_id)
    assert logged.info.status == "FINISHED" and logged.info.run_name == run.name
    assert steps(mlflow, logged.info.run_id, "loss")[0][0] == 1
    # Its artifacts beside the database, not in ./mlruns wherever the command ran.
    assert "metrics.json" in {item.path for item in mlflow.list_artifacts(logged.info.run_id)}
    assert not (tmp_path / "mlruns").exists()


def test_a_server_killed_mid_cv_costs_one_warning_and_every_fold_trains(
        server: Server, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The module's last test: the shared server is gone after it. The password rides in
    # $MLFLOW_TRACKING_URI: no message and no run file shows it.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", server.uri.replace("//", "//me:s3cret@"))
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # no seconds of retries
    parent = tmp_path / "cv"
    stop_after_epoch(monkeypatch, 1, lambda: server.stop(signal.SIGKILL))
    code, out, err = run_cli(capsys, "cv", config, "--folds", "2", "--run-dir", parent,
                             "--set", "training.epochs=1",
                             "--set", "tracking.mlflow.experiment=pima-killed")
    assert code == 0, out + err
    shown = server.uri.replace("//", "//me:***@")
    assert err.count("warning:") == 1 and f"MLflow at {shown} stopped answering" in err
    assert "s3cret" not in out + err
    for run in (parent, parent / "fold-0", parent / "fold-1"):
        assert records.read(run, records.RunState).state == "completed"
    assert [row["epoch"] for row in read_history(parent / "fold-0" / "history.csv")] == [1]
    missed = tracking(parent / "fold-0").not_logged  # the fold the server died in
    assert missed is not None and missed[0] == "epochs 1"
    assert {"the test metrics", "artifact metrics.json", "status FINISHED"} <= set(missed)
    # The next fold trained untracked, and the parent noted what it could not send.
    assert tracking(parent / "fold-1").not_logged == ["run"]
    assert "status FINISHED" in (tracking(parent).not_logged or [])
    leaked = [str(path) for path in parent.rglob("*") if path.is_file()
              and b"s3cret" in path.read_bytes()]
    assert leaked == []
