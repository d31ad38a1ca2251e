"""Runs that survive: Ctrl-C, SIGTERM and SIGKILL mid-training, resume, divergence."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import CONFIGS, run_cli
from dltrain.runs.layout import read_history

pytestmark = pytest.mark.slow  # every test here trains a model

QUICKSTART = CONFIGS / "quickstart.yaml"
SMALL = ["--set", "dataset.train_limit=600", "--set", "dataset.test_limit=100"]


def start_fit(run: Path, *args: str) -> subprocess.Popen:
    script = Path(sys.executable).with_name("dltrain")
    return subprocess.Popen([str(script), "fit", str(QUICKSTART), "--run-dir", str(run), *SMALL,
                             *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "CI": "1"})


def wait_for_epochs(run: Path, count: int, process: subprocess.Popen, limit: float = 120) -> None:
    """Poll history.csv until `count` epochs are written (bounded by `limit` seconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if len(read_history(run / "history.csv")) >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {count} epochs within {limit}s: {process.communicate()}")


def state(run: Path) -> str:
    return json.loads((run / "run.json").read_text())["state"]


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_training_then_resume_finishes_the_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], signum: int, exit_code: int) -> None:
    run = tmp_path / "run"
    process = start_fit(run, "--epochs", "40")
    wait_for_epochs(run, 2, process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == exit_code, out + err
    assert state(run) == "interrupted"
    assert f"Resume with: dltrain fit --resume {run}" in out
    done = len(read_history(run / "history.csv"))
    assert 2 <= done < 40

    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, err
    assert f"resuming {run} after epoch" in out
    history = read_history(run / "history.csv")
    assert [row["epoch"] for row in history] == list(range(1, 41))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 40 and state(run) == "completed"
    code, out, err = run_cli(capsys, "eval", run)
    assert code == 0, err
    scored = json.loads((run / "eval.json").read_text())["test"]["accuracy"]
    assert scored == pytest.approx(metrics["test"]["accuracy"], abs=0.001)


def test_resume_can_extend_a_completed_run(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "2")[0] == 0
    code, _, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 2 and "the run is completed after 2 epochs; pass --epochs N with N > 2" in err
    code, _, err = run_cli(capsys, "fit", "--resume", run, "--epochs", "4")
    assert code == 0, err
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1, 2, 3, 4]
    assert "epochs: 4" in (run / "config.yaml").read_text()


def test_resume_refuses_other_changes_with_a_diff(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "1")[0] == 0
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--resume", run, *SMALL, "--epochs", "3",
                           "--set", "optimizer.learning_rate=0.01")
    assert code == 2
    assert "only training.epochs may change" in err
    assert "optimizer.learning_rate: 0.001 -> 0.01" in err
    assert len(read_history(run / "history.csv")) == 1


def test_resume_without_a_completed_epoch(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    assert run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "1")[0] == 0
    (run / "last.json").unlink()
    code, _, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 2 and "no completed epoch to resume from" in err


def test_sigkill_never_leaves_a_half_written_artifact(tmp_path: Path) -> None:
    import keras

    for attempt in range(4):
        run = tmp_path / f"run{attempt}"
        process = start_fit(run, "--epochs", "200", "--set", "dataset.train_limit=128")
        wait_for_epochs(run, 1 + attempt, process)
        time.sleep(0.013 * attempt)  # land at different points of the epoch/save cycle
        process.kill()
        process.communicate(timeout=60)
        for name in ("model.keras", "best.keras", "last.keras"):
            if (run / name).exists():
                keras.saving.load_model(run / name)
        for name in ("metrics.json", "run.json", "last.json", "environment.json"):
            if (run / name).exists():
                json.loads((run / name).read_text())
        assert len(read_history(run / "history.csv")) >= 1
        assert not list(run.glob(".*tmp*")) or all(p.suffix in (".keras", ".tmp")
                                                   for p in run.glob(".*tmp*"))


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    run = tmp_path / "run"
    # A sane rate for the first epoch (10 steps of 60 samples), then a huge one.
    schedule = ("optimizer.schedule={name: PiecewiseConstantDecay, boundaries: [10], "
                "values: [0.001, 1.0e+12]}")
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "5",
                           "--batch-size", "60", "--set", schedule)
    assert code == 2
    assert "the loss became NaN or infinite" in err and "optimizer.clipnorm" in err
    assert state(run) == "failed"
    assert json.loads((run / "last.json").read_text())["epoch"] == 1
    history = read_history(run / "history.csv")
    assert len(history) == 2  # the diverging epoch stopped early, the run did not go on
    kept = keras.saving.load_model(run / "best.keras")
    assert kept.count_params() > 0
    code, _, err = run_cli(capsys, "eval", run, "--model", run / "last.keras")
    assert code == 0, err
