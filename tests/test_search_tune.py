"""`dltrain tune` end to end on the shipped Fashion-MNIST subset: a grid, Ctrl-C and resume,
two processes on one study."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import CONFIGS, run_cli

pytestmark = pytest.mark.slow  # its tests train models (the last ones import Keras, as tune does)

LEARNING_RATES, BATCH_SIZES = [0.001, 0.003], [32, 64]
GRID = {(rate, size) for rate in LEARNING_RATES for size in BATCH_SIZES}


def grid_config(tmp_path: Path) -> Path:
    """The quickstart config with a grid of 2 learning rates x 2 batch sizes."""
    raw = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    raw["search"] = {"method": "grid", "objective": "val_accuracy", "parameters": {
        "optimizer.learning_rate": {"choice": LEARNING_RATES},
        "training.batch_size": {"choice": BATCH_SIZES}}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def values(trial: dict) -> tuple:
    return trial["params"]["optimizer.learning_rate"], trial["params"]["training.batch_size"]


def finished(document: dict) -> list[dict]:
    return [trial for trial in document["trials"]
            if trial["state"] in ("complete", "pruned", "failed")]


def start_tune(*args: object) -> subprocess.Popen:
    script = Path(sys.executable).with_name("dltrain")
    return subprocess.Popen([str(script), "tune", *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "1"})


def wait_for(path: Path, process: subprocess.Popen, limit: float = 180) -> None:
    """Poll until `path` exists (bounded by `limit` seconds, and by the process ending)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if path.exists():
            return
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no {path} within {limit}s: {process.communicate(timeout=60)}")


def test_grid_search_runs_each_combination_once_and_writes_a_runnable_best_yaml(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "search"
    code, out, err = run_cli(capsys, "tune", grid_config(tmp_path), "--smoke", "--run-dir",
                             parent, "--json")
    assert code == 0, err
    document = json.loads(out)
    assert {"schema_version": 1, **document} == json.loads((parent / "tune.json").read_text())
    trials = document["trials"]
    assert len(trials) == 4 and {trial["state"] for trial in trials} == {"complete"}
    assert {values(trial) for trial in trials} == GRID
    scores = [trial["objective"] for trial in trials]
    assert scores == sorted(scores, reverse=True)  # val_accuracy: higher is better
    assert document["direction"] == "maximize" and document["best"] == trials[0]
    for trial in trials:
        run = Path(trial["run_dir"])
        assert run.parent == parent and run.name == f"trial-{trial['number']:04d}"
        assert json.loads((run / "run.json").read_text())["state"] == "completed"
        history = [line.split(",") for line in (run / "history.csv").read_text().splitlines()]
        best = max(float(row[history[0].index("val_accuracy")]) for row in history[1:])
        assert trial["objective"] == pytest.approx(best) and trial["epochs"] == 1
    assert "Trials by val_accuracy" in err and "train it: dltrain fit" in err
    for name in ("study.db", "trials.png", "importance.png", "best.yaml", "config.yaml"):
        assert (parent / name).is_file(), name

    best = yaml.safe_load((parent / "best.yaml").read_text())
    assert "search" not in best
    assert (best["optimizer"]["learning_rate"], best["training"]["batch_size"]) == values(trials[0])
    # The config as written, not the --smoke trials' 1 epoch on 256 samples (issue 27).
    assert best["training"]["epochs"] == 4 and best["dataset"].get("train_limit") is None
    assert "without --smoke's settings" in " ".join(err.split())
    assert run_cli(capsys, "show", parent / "best.yaml")[0] == 0
    code, _, err = run_cli(capsys, "fit", parent / "best.yaml", "--smoke", "--run-dir",
                           tmp_path / "best")
    assert code == 0, err
    code, out, _ = run_cli(capsys, "runs", tmp_path, "--json")
    assert code == 0
    rows = {row["name"]: row for row in json.loads(out)}
    assert rows["search"]["kind"] == "tune" and rows["search"]["state"] == "completed"
    assert set(rows) == {"search", "best"}  # the trials are inside the search's row
    # Its date and backend come from its environment.json (they were "-", sorted last).
    assert rows["search"]["backend"] == rows["best"]["backend"] and rows["search"]["date"]


def test_ctrl_c_during_trial_2_then_resume_runs_exactly_the_planned_trials(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "search"
    # 4 epochs a trial, so the signal lands while trial 2 trains.
    process = start_tune(grid_config(tmp_path), "--smoke", "--set", "training.epochs=4",
                         "--run-dir", parent)
    wait_for(parent / "trial-0002" / "history.csv", process)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert f"Continue with: dltrain tune --resume {parent}" in " ".join(out.split())
    stopped = json.loads((parent / "tune.json").read_text())
    assert [trial["state"] for trial in sorted(stopped["trials"], key=lambda t: t["number"])] \
        == ["complete", "complete", "interrupted"]
    assert json.loads((parent / "run.json").read_text())["state"] == "interrupted"

    code, out, err = run_cli(capsys, "tune", "--resume", parent, "--json")
    assert code == 0, err
    document = json.loads(out)
    done = finished(document)
    assert len(done) == 4 and {values(trial) for trial in done} == GRID  # none twice
    retry = next(trial for trial in document["trials"] if trial["retry_of"] == 2)
    interrupted = next(trial for trial in document["trials"] if trial["number"] == 2)
    assert interrupted["state"] == "interrupted" and values(retry) == values(interrupted)
    assert json.loads((parent / "run.json").read_text())["state"] == "completed"
    code, out, err = run_cli(capsys, "tune", "--resume", parent, "--json")
    assert code == 0 and len(json.loads(out)["trials"]) == 5  # nothing left to run
    # --trials below the trials run recorded "planned 2" beside 4 done.
    code, out, err = run_cli(capsys, "tune", "--resume", parent, "--trials", "2")
    assert code == 2 and f"--trials 2: the search {parent} has run 4 trials already; --trials " \
        "is the total, so give more than 4 to run more." in " ".join(err.split())
    assert "trials: 2" not in (parent / "config.yaml").read_text()


def test_two_processes_share_one_study_without_repeating_a_trial(tmp_path: Path) -> None:
    parent = tmp_path / "search"
    first = start_tune(grid_config(tmp_path), "--smoke", "--set", "training.epochs=2",
                       "--run-dir", parent)
    second = None
    try:
        wait_for(parent / "trial-0000" / "run.json", first)
        second = start_tune("--resume", parent, "--json")
        logs = [*second.communicate(timeout=300), *first.communicate(timeout=300)]
        assert second.returncode == 0 and first.returncode == 0, logs
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate(timeout=60)
    document = json.loads((parent / "tune.json").read_text())
    numbers = [trial["number"] for trial in document["trials"]]
    assert sorted(numbers) == [0, 1, 2, 3]
    assert {values(trial) for trial in finished(document)} == GRID
    started = re.findall(r"^trial (\d+): ", "\n".join(logs), flags=re.MULTILINE)
    assert sorted(started) == ["0", "1", "2", "3"]  # each trial run by one process, once
    assert sorted(path.name for path in parent.glob("trial-*")) == [
        f"trial-{number:04d}" for number in range(4)]


def test_a_failing_trial_is_recorded_with_its_reason_and_the_search_goes_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    raw["search"] = {"method": "grid", "parameters": {  # 40 > the 28x28 input: cannot build
        "model.layers.0.Conv2D.kernel_size": {"choice": [40, 3]}}}
    path = tmp_path / "kernel.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, out, err = run_cli(capsys, "tune", path, "--smoke", "--run-dir", tmp_path / "s", "--json")
    assert code == 0, err
    document = json.loads(out)
    states = {trial["params"]["model.layers.0.Conv2D.kernel_size"]: trial
              for trial in document["trials"]}
    assert states[3]["state"] == "complete" and states[40]["state"] == "failed"
    assert "model.layers.0.Conv2D" in states[40]["error"] and states[40]["objective"] is None
    assert document["best"]["number"] == states[3]["number"]
    assert document["direction"] == "minimize"  # the default objective: val_loss
    assert "no importance.png: parameter importance needs at least 2 completed trials" in err


def test_fit_trains_a_search_config_as_written_and_says_tune_searches_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = grid_config(tmp_path)
    code, _, err = run_cli(capsys, "fit", config, "--smoke", "--run-dir", tmp_path / "run")
    assert code == 0, err
    # Without white space: the console may wrap the long temporary path inside a word.
    said = f"has a search: section: fit trains the config as written; dltrain tune {config} " \
        "runs the search"
    assert "".join(said.split()) in "".join(err.split())
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert saved["optimizer"]["learning_rate"] == 0.001 and saved["training"]["batch_size"] == 64


class FakeTrial:
    """What ReportEpochs asks of an Optuna trial: report, and whether to prune."""

    def __init__(self, prune_from: int) -> None:
        self.reported: list[tuple[float, int]] = []
        self.prune_from = prune_from

    def report(self, value: float, step: int) -> None:
        self.reported.append((value, step))

    def should_prune(self) -> bool:
        return self.reported[-1][1] >= self.prune_from


def test_report_epochs_stops_training_when_the_pruner_says_so_not_before_after_epoch() -> None:
    from types import SimpleNamespace

    from dltrain.search.trial import ReportEpochs

    trial = FakeTrial(prune_from=1)
    callback = ReportEpochs(trial, "val_accuracy", after_epoch=2)
    model = SimpleNamespace(stop_training=False)
    callback.set_model(model)
    callback.on_epoch_end(0, {"val_accuracy": 0.5, "loss": 1.0})
    assert trial.reported == [(0.5, 1)] and not model.stop_training  # epoch 1 < after_epoch
    callback.on_epoch_end(1, {"val_accuracy": float("nan")})
    assert len(trial.reported) == 1  # a NaN epoch is not reported
    callback.on_epoch_end(2, {"val_accuracy": 0.6})
    assert model.stop_training and callback.pruned_at == 3


def test_an_objective_on_a_metric_given_with_arguments_is_found_in_every_trial(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Keras logs Precision(thresholds=0.5) as precision; made without that name, the second
    # instance in the process would be precision_1 and no trial would find its objective.
    code, out, err = run_cli(
        capsys, "tune", CONFIGS / "tabular_binary.yaml", "--run-dir", tmp_path / "s", "--json",
        "--set", "training.epochs=2", "--set", "metrics=[{name: Precision, thresholds: 0.5}]",
        "--set", "search={method: grid, objective: val_precision, "
        "parameters: {seed: {choice: [1, 2]}}}")
    assert code == 0, err
    document = json.loads(out)
    assert document["direction"] == "maximize"
    assert [trial["state"] for trial in document["trials"]] == ["complete", "complete"]
    assert all(isinstance(trial["objective"], float) for trial in document["trials"])


def test_a_search_whose_every_trial_failed_exits_2_with_the_first_reason(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It exited 0, run.json "completed", with only a note that no trial completed.
    raw = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    raw["search"] = {"method": "grid", "parameters": {  # both beyond the 28x28 input
        "model.layers.0.Conv2D.kernel_size": {"choice": [40, 50]}}}
    path = tmp_path / "kernel.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, out, err = run_cli(capsys, "tune", path, "--smoke", "--run-dir", tmp_path / "s", "--json")
    assert code == 2
    assert [trial["state"] for trial in json.loads(out)["trials"]] == ["failed", "failed"]
    assert re.search(r"every trial failed \(2\), so the search found nothing; trial [01]: .*"
                     r"model\.layers\.0\.Conv2D: cannot follow", " ".join(err.split()))
    assert json.loads((tmp_path / "s" / "run.json").read_text())["state"] == "failed"


def test_data_the_model_cannot_take_is_refused_before_the_search_starts(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An internal error (ValueError from Sequential.call), where fit says which shape to set.
    code, _, err = run_cli(capsys, "tune", grid_config(tmp_path), "--smoke", "--run-dir",
                           tmp_path / "s", "--set", "model.input_shape=[28, 28, 3]")
    assert code == 2 and "model.input_shape is [28, 28, 3] but the data's samples have shape " \
        "[28, 28, 1]. Set model.input_shape to match." in " ".join(err.split())
    assert not (tmp_path / "s").exists()


def test_a_killed_search_is_listed_interrupted_not_running(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Its processes share the folder, so none holds its lock: `runs` showed it running for ever.
    parent = tmp_path / "runs" / "search"
    process = start_tune(grid_config(tmp_path), "--smoke", "--set", "training.epochs=4",
                         "--run-dir", parent)
    wait_for(parent / "trial-0001" / "history.csv", process)
    code, out, err = run_cli(capsys, "runs", tmp_path / "runs", "--json")
    assert code == 0 and json.loads(out)[0]["state"] == "running", err  # while it runs
    process.kill()
    process.communicate(timeout=60)
    assert json.loads((parent / "run.json").read_text())["state"] == "running"  # as it was left
    code, out, err = run_cli(capsys, "runs", tmp_path / "runs", "--json")
    [row] = json.loads(out)
    assert code == 0 and (row["state"], row["writer"]) == ("interrupted", "gone"), err


# --- where a search's folder is left when what holds it fails (no training) ----------------------

SECRET = "pw-9d2e"  # in the URL, and in no message


def _parent(tmp_path: Path) -> tuple[Path, object]:
    """A search folder marked running, as start() leaves it, and its config."""
    from dltrain.config.load import load_config
    from dltrain.runs import layout as runs

    parent = tmp_path / "search"
    parent.mkdir()
    runs.set_state(parent, "running", kind="tune")
    return parent, load_config(grid_config(tmp_path)).config


def _state(parent: Path) -> str:
    return json.loads((parent / "run.json").read_text())["state"]


def _searcher(config: object) -> object:
    from types import SimpleNamespace

    from rich.console import Console

    return SimpleNamespace(search=config.search, goal="maximize", console=Console())  # type: ignore[attr-defined]


def test_a_database_that_stops_answering_is_a_message_naming_it_and_the_folder_interrupted(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The budget's lock could not reach the server: an OperationalError traceback, and
    run.json "running" for ever."""
    from types import SimpleNamespace

    from dltrain.errors import RunError
    from dltrain.search import tune

    pytest.importorskip("psycopg")
    parent, config = _parent(tmp_path)
    monkeypatch.setattr(tune, "open_study", lambda *_: SimpleNamespace(study_name="study"))
    url = f"postgresql://me:{SECRET}@127.0.0.1:1/db"  # port 1: refused at once
    with pytest.raises(RunError) as error:
        tune._search(parent, config, _searcher(config), url, [], [])  # type: ignore[arg-type]
    message = str(error.value)
    assert message.startswith("--storage postgresql://me:***@127.0.0.1:1/db: the database stopped "
                              "answering (") and SECRET not in message
    assert f"continue with: dltrain tune --resume {parent}" in message
    assert _state(parent) == "interrupted"


def test_an_mlflow_run_that_cannot_open_leaves_the_search_failed_not_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from contextlib import contextmanager

    from dltrain.errors import RunError
    from dltrain.search import tune

    @contextmanager
    def refused(*_: object) -> object:
        raise RunError("MLflow at http://127.0.0.1:1 refused the run")
        yield

    parent, config = _parent(tmp_path)
    monkeypatch.setattr(tune, "tracked_parent", refused)
    monkeypatch.setattr(tune, "open_study", lambda *_: pytest.fail("the study opened"))
    with pytest.raises(RunError, match="refused the run"):
        tune._search(parent, config, _searcher(config), None, [], [])  # type: ignore[arg-type]
    assert _state(parent) == "failed"


def test_a_trial_names_its_host_and_process_before_the_budget_s_lock_lets_go() -> None:
    """Another process that took the lock saw the trial without a pid and, its clock ahead,
    ran the same values again."""
    import socket
    from types import SimpleNamespace

    from dltrain.search.trial import Runner

    attrs: dict[str, object] = {}
    seen: list[dict[str, object]] = []

    class Started(Exception):
        pass

    def started() -> None:
        seen.append(dict(attrs))
        raise Started

    trial = SimpleNamespace(number=3, set_user_attr=attrs.__setitem__)
    with pytest.raises(Started):
        Runner.__call__(SimpleNamespace(started=started, current=None), trial)  # type: ignore[arg-type]
    assert seen == [{"host": socket.gethostname(), "pid": os.getpid()}]


def test_optuna_s_error_for_a_failed_commit_is_named_by_the_driver_s_error_under_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Optuna raises StorageInternalError ("An exception is raised during the commit") when
    the server goes away mid-trial: it was an internal error."""
    from types import SimpleNamespace

    import optuna
    import sqlalchemy.exc

    from dltrain.errors import RunError
    from dltrain.search import tune

    def lost() -> None:
        try:
            raise sqlalchemy.exc.OperationalError(
                "COMMIT", {}, Exception("server closed the connection unexpectedly"))
        except sqlalchemy.exc.OperationalError as exc:
            raise optuna.exceptions.StorageInternalError(
                "An exception is raised during the commit.") from exc

    parent, config = _parent(tmp_path)
    monkeypatch.setattr(tune, "open_study", lambda *_: SimpleNamespace(
        study_name="study", get_trials=lambda **_: lost()))
    with pytest.raises(RunError) as error:
        tune._search(parent, config, _searcher(config), None, [], [])  # type: ignore[arg-type]
    assert "the database stopped answering ((builtins.Exception) server closed the connection " \
           "unexpectedly)" in str(error.value)
    assert _state(parent) == "interrupted"


def test_the_summary_is_read_and_written_with_the_study_locked(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two processes on one study: the one whose last trial ended first read the other's as
    running, and its tune.json, written seconds later (the plots), replaced the other's. Each
    reads the study and writes tune.json holding the study's lock, so the last one written
    is read last."""
    import fcntl

    from dltrain.search import results, tune

    parent = tmp_path / "search"
    locked: list[bool] = []

    def held() -> bool:  # another open file's flock on study.lock fails while it is held
        handle = os.open(parent / "study.lock", os.O_RDONLY)
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(handle)
        return False

    def checked(function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            locked.append(held())
            return function(*args, **kwargs)
        return call

    monkeypatch.setattr(tune, "summary", checked(tune.summary))
    monkeypatch.setattr(results, "write_results", checked(results.write_results))
    raw = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    raw["search"] = {"method": "grid", "parameters": {"optimizer.learning_rate": {
        "choice": [0.001]}}}
    config = tmp_path / "one.yaml"
    config.write_text(yaml.safe_dump(raw, sort_keys=False))
    code, _, err = run_cli(capsys, "tune", config, "--smoke", "--run-dir", parent)
    assert code == 0, err
    assert locked == [True, True]
