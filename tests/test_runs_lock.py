"""One writer per run: the run folder's lock, who holds it, and runs whose writer is gone."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_train_resume import QUICKSTART, start_fit, wait_for_epochs

from conftest import copy_run, run_cli
from dltrain.errors import RunError
from dltrain.runs import lock
from dltrain.runs.layout import read_history, set_state

HOLD = ("import sys, time; from pathlib import Path; from dltrain.runs import lock; "
        "lock.acquire(Path(sys.argv[1])); print('held', flush=True); time.sleep(60)")


def hold_lock(run: Path) -> subprocess.Popen:
    """Another process holding the run's lock (until killed); returns once it holds it."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run), "--holder"],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline() == "held\n"
    return process


def test_a_second_writer_is_refused_naming_the_holder(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    holder = hold_lock(run)
    try:
        assert lock.writer_alive(run) is True
        with pytest.raises(RunError) as refused:
            lock.acquire(run)
        assert str(refused.value) == (
            f"{run} is being written by process {holder.pid} (-c {run} --holder); "
            "wait for it or stop it.")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert lock.writer_alive(run) is False  # the kernel dropped the dead holder's lock
    with lock.writing(run):
        assert lock.writer_alive(run) is True
    assert lock.writer_alive(run) is False


def test_a_run_without_a_lock_file_is_not_judged(tmp_path: Path) -> None:
    assert lock.writer_alive(tmp_path) is None


def test_fit_into_a_run_dir_another_process_is_writing_is_refused(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    holder = hold_lock(run)
    try:
        code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, "--smoke")
    finally:
        holder.kill()
        holder.wait(timeout=30)
    assert code == 2
    assert f"is being written by process {holder.pid}" in " ".join(err.split())
    assert sorted(p.name for p in run.iterdir()) == [".lock"]


@pytest.mark.slow
def test_two_resumes_at_once_one_proceeds_the_other_is_refused(
        tmp_path: Path, shared_small_run: Path) -> None:
    run = copy_run(shared_small_run, tmp_path / "run")
    set_state(run, "interrupted", epochs_done=1)  # as a Ctrl-C after epoch 1 leaves it
    script = Path(sys.executable).with_name("dltrain")
    processes = [subprocess.Popen([str(script), "fit", "--resume", str(run), "--epochs", "3"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                  env={**os.environ, "CI": "1"}) for _ in range(2)]
    results = []
    for process in processes:
        out, err = process.communicate(timeout=300)
        results.append((process.returncode, out, " ".join(err.split()), process.pid))
    assert sorted(code for code, *_ in results) == [0, 2], results
    (_, _, _, winner), (_, _, refusal, _) = sorted(results)
    assert f"{run} is being written by process {winner} (dltrain fit --resume {run} " \
           "--epochs 3); wait for it or stop it." in refusal
    metrics = json.loads((run / "metrics.json").read_text())
    assert len(read_history(run / "history.csv")) == metrics["epochs_run"] == 3
    assert json.loads((run / "run.json").read_text())["state"] == "completed"


@pytest.mark.slow
def test_runs_shows_a_killed_fit_as_interrupted(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "runs" / "killed"
    process = start_fit(run, "--epochs", "200", "--set", "dataset.train_limit=128")
    wait_for_epochs(run, 1, process)
    code, out, err = run_cli(capsys, "runs", run.parent, "--json")
    assert code == 0, err
    assert [row["state"] for row in json.loads(out)] == ["running"]
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=60)
    assert json.loads((run / "run.json").read_text())["state"] == "running"  # never told
    deadline = time.monotonic() + 10
    while lock.writer_alive(run) and time.monotonic() < deadline:
        time.sleep(0.05)
    code, out, err = run_cli(capsys, "runs", run.parent, "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["state"] == "interrupted"
    assert row["writer"] == "gone"
    code, out, err = run_cli(capsys, "runs", run.parent)
    assert "killed" in out and "interrupted" in out
    # eval and export say it as runs does (they said 'running' of the killed run)
    for command in (["eval", run], ["export", run, "--format", "onnx"]):
        code, _, err = run_cli(capsys, *command)
        assert code == 2 and "the run is 'interrupted', not completed" in err, err


def test_a_released_lock_names_no_one(tmp_path: Path) -> None:
    # The in-process fit of the two-resumes test left its PID behind: a later refusal named it,
    # a process that had long finished, instead of the one that held the lock.
    lock.acquire(tmp_path)
    lock.release(tmp_path)
    assert (tmp_path / lock.LOCK_FILE).read_text() == ""


def test_a_stale_holder_in_the_lock_file_is_not_named(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    # A holder killed earlier left its PID; a new holder has the lock but has not written its
    # own yet: the refusal must not name the dead process.
    monkeypatch.setattr(lock, "HOLDER_WAIT", 0.2)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, timeout=60).stdout.strip()
    (tmp_path / lock.LOCK_FILE).write_text(f"{dead}\ndltrain fit old.yaml\n")
    import fcntl

    holder = os.open(tmp_path / lock.LOCK_FILE, os.O_RDWR)
    try:
        fcntl.flock(holder, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(RunError) as caught:
            lock.acquire(tmp_path)
    finally:
        os.close(holder)
    assert str(caught.value) == f"{tmp_path} is being written by another process; wait for it " \
                                "or stop it."


def test_the_command_a_run_file_keeps_hides_a_url_s_password(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # environment.json and the lock file kept tune --storage's password as typed.
    monkeypatch.setattr(sys, "argv", [
        "dltrain", "tune", "--storage", "postgresql://me:pa@ss@db:5432/d",
        "--storage=postgresql+psycopg://me:pw@db/d", "sqlite:///x.db", "--set", "a=b:c@d",
        "postgresql://db/d?user=me&password=s3&sslmode=require", "--set", "x=y&password=z"])
    assert lock.command_line() == [
        "dltrain", "tune", "--storage", "postgresql://me:***@db:5432/d",
        "--storage=postgresql+psycopg://me:***@db/d", "sqlite:///x.db", "--set", "a=b:c@d",
        "postgresql://db/d?user=me&password=***&sslmode=require", "--set", "x=y&password=z"]
