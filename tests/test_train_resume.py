"""Runs that survive: Ctrl-C, SIGTERM and SIGKILL mid-training, resume, divergence."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from test_train_fit import op_determinism, restore_op_determinism

from conftest import CONFIGS, copy_run, run_cli
from dltrain.cli import main
from dltrain.config.load import dump, load_config
from dltrain.runs import records
from dltrain.runs.layout import read_history, write_history
from dltrain.runs.records import Exports, RunState

pytestmark = pytest.mark.slow  # every test here trains a model

QUICKSTART = CONFIGS / "quickstart.yaml"
SMALL = ["--set", "dataset.train_limit=600", "--set", "dataset.test_limit=100"]
# Fewer training images, after SMALL, where no epoch's scores matter (min_delta 10 stops a run
# whatever it learns).
FEW = ["--set", "dataset.train_limit=128"]


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
    # 10 epochs: the signal, sent as epoch 2's row appears, lands with 8 still to train.
    process = start_fit(run, "--epochs", "10")
    wait_for_epochs(run, 2, process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=120)
    assert process.returncode == exit_code, out + err
    assert state(run) == "interrupted"
    assert f"Resume with: dltrain fit --resume {run}" in out
    done = len(read_history(run / "history.csv"))
    assert 2 <= done < 10

    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, err
    assert f"resuming {run} after epoch" in out
    history = read_history(run / "history.csv")
    assert [row["epoch"] for row in history] == list(range(1, 11))
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 10 and state(run) == "completed"
    code, out, err = run_cli(capsys, "eval", run)
    assert code == 0, err
    scored = json.loads((run / "eval.json").read_text())["test"]["accuracy"]
    assert scored == pytest.approx(metrics["test"]["accuracy"], abs=0.001)


def cli(*args: object) -> tuple[int, str, str]:
    """`dltrain ARGS` in-process, for a module's fixture (run_cli needs capsys, a test's)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(arg) for arg in args])
    return code, out.getvalue(), err.getvalue()


@dataclass
class Extended:
    """The shared one-epoch run, as dltrain 0.1 wrote it (no schema_version), scored by eval
    and exported, its config.yaml edited and put back, then resumed to 3 epochs."""

    run: Path
    before: dict[str, dict[str, Any]]  # its JSON files as dltrain 0.1 wrote them
    edited: tuple[int, str, int]  # the resume of the edited config: code, stderr, history rows
    not_extended: tuple[int, str]  # the resume without --epochs: code, stderr
    resumed: tuple[int, str, str]  # the resume to 3 epochs: code, stdout, stderr


@pytest.fixture(scope="module")
def extended(tmp_path_factory: pytest.TempPathFactory, shared_small_run: Path) -> Extended:
    """One resume, after the refusals, for the tests that check what a resume of a completed
    run keeps, adds and sets aside: read it, never change it."""
    run = copy_run(shared_small_run, tmp_path_factory.mktemp("extended") / "run")
    before = {}
    for path in run.glob("*.json"):  # as dltrain 0.1 wrote them
        data = json.loads(path.read_text())
        assert data.pop("schema_version") == records.SCHEMA_VERSION, path.name
        path.write_text(json.dumps(data))
        before[path.name] = data
    assert cli("eval", run)[0] == 0 and (run / "eval.json").is_file()
    records.write(run, Exports.of({"onnx": {"status": "passed", "path": str(run / "model.onnx")}}))
    written = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(written.replace("learning_rate: 0.001",
                                                     "learning_rate: 0.05"))
    code, _, err = cli("fit", "--resume", run, "--epochs", "3")
    edited = (code, err, len(read_history(run / "history.csv")))
    (run / "config.yaml").write_text(written)
    code, _, err = cli("fit", "--resume", run)
    return Extended(run, before, edited, (code, err), cli("fit", "--resume", run, "--epochs", "3"))


def test_resume_can_extend_a_completed_run(extended: Extended) -> None:
    run, started = extended.run, extended.before["environment.json"]
    code, err = extended.not_extended
    assert code == 2 and "the run is completed after 1 epochs; pass --epochs N with N > 1" in err
    code, out, err = extended.resumed
    assert code == 0, err
    assert f"resuming {run} after epoch 1" in out
    rows = read_history(run / "history.csv")
    assert [row["epoch"] for row in rows] == [1, 2, 3]
    # The session that started the run stays; the one that trained epochs 2 and 3 is added.
    environment = json.loads((run / "environment.json").read_text())
    assert {key: environment[key] for key in started} == started
    [resumed] = environment["resumed"]
    assert resumed["after_epoch"] == 1 and resumed["started"] >= started["started"]
    assert resumed["device"] == started["device"] and resumed["keras"] == started["keras"]
    assert "epochs: 3" in (run / "config.yaml").read_text()
    # The time of all three epochs, not only this command's two (runs showed those).
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["train_seconds_total"] == pytest.approx(sum(row["seconds"] for row in rows),
                                                           abs=0.002)
    assert metrics["train_seconds_total"] > sum(row["seconds"] for row in rows[1:])
    code, out, err = cli("runs", run.parent, "--json")
    assert json.loads(out)[0]["seconds"] == metrics["train_seconds_total"]
    # the manifest vouches for the config that was trained, not the one first written
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["config_sha256"] == hashlib.sha256((run / "config.yaml").read_bytes()).hexdigest()


def test_a_run_written_before_schema_version_resumes_and_gains_it(extended: Extended) -> None:
    run, before = extended.run, extended.before
    assert extended.resumed[0] == 0, extended.resumed[2]
    for name in ("environment.json", "manifest.json", "metrics.json", "run.json"):
        assert json.loads((run / name).read_text())["schema_version"] == records.SCHEMA_VERSION
    environment = records.read(run, records.Environment).as_json()
    assert list(environment) == [*before["environment.json"], "resumed"]  # its layout kept
    assert [entry["after_epoch"] for entry in environment["resumed"]] == [1]
    assert records.read(run, records.Metrics).epochs_run == 3
    assert records.read(run, RunState).state == "completed"
    # preprocessing.json is not written again on resume: an older run's file is kept as it is.
    assert json.loads((run / "preprocessing.json").read_text()) == before["preprocessing.json"]


def test_resume_refuses_a_config_yaml_edited_since_the_run_wrote_it(extended: Extended) -> None:
    # It trained on, and the manifest then vouched for a rate the first epoch never had.
    run = extended.run
    code, err, rows = extended.edited
    assert code == 2
    assert (f"error: {run / 'config.yaml'}: changed since the run wrote it (manifest.json holds "
            "another sha256); a run resumes with the config it was trained with. Put the "
            "original back") in " ".join(err.split())
    assert rows == 1
    assert extended.resumed[0] == 0, extended.resumed[2]  # once the original is back


def test_a_resume_that_trains_on_sets_aside_the_earlier_models_scores(
        extended: Extended) -> None:
    # eval.json and export.json went on describing the replaced model.keras.
    run, (code, out, err) = extended.run, extended.resumed
    assert code == 0, err
    assert not (run / "eval.json").exists()
    assert "eval.json removed: it scored the model before this resume" in " ".join(out.split())
    entry = json.loads((run / "export.json").read_text())["onnx"]
    assert entry["status"] == "passed" and entry["stale"].startswith(
        "of the model before the resume of ")


def test_a_damaged_environment_record_is_named_before_a_resume_trains(tmp_path: Path) -> None:
    from dltrain.errors import RunError
    from dltrain.train.resume import record_resume

    (tmp_path / "environment.json").write_text("[]")
    with pytest.raises(RunError, match=r"environment.json: not a JSON object; the run's files are "
                                       r"damaged, so start the run again"):
        record_resume(tmp_path, load_config(QUICKSTART).config, "cpu", 2)


def test_resume_refuses_other_changes_with_a_diff(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_small_run: Path) -> None:
    run = tmp_path / "run"
    copy_run(shared_small_run, run)
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--resume", run, *SMALL, "--epochs", "3",
                           "--set", "optimizer.learning_rate=0.01")
    assert code == 2
    assert "only training.epochs may change" in err
    assert "optimizer.learning_rate: 0.001 -> 0.01" in err
    assert len(read_history(run / "history.csv")) == 1


TABLE = """\
name: table
dataset: {name: csv, path: t.csv, label_column: y, validation_split: 0.2, standardize_target: true}
model: {input_shape: [2], layers: [{Dense: {units: 4, activation: relu}}, {Dense: {units: 1}}]}
loss: mse
training: {epochs: 1, batch_size: 16, tensorboard: false}
"""


def test_resume_refuses_data_changed_since_the_run_started(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It trained on the new targets with the old scaling, and the manifest kept the old data's
    # fingerprints; fewer rows were blamed on history.csv.
    rows = [f"{a},{a % 7},{3 * a + 1}" for a in range(80)]
    (tmp_path / "t.csv").write_text("a,b,y\n" + "\n".join(rows) + "\n")
    (tmp_path / "c.yaml").write_text(TABLE)
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", tmp_path / "c.yaml", "--run-dir", run)
    assert code == 0, err
    tripled = [f"{a},{a % 7},{9 * a + 3}" for a in range(80)]
    (tmp_path / "t.csv").write_text("a,b,y\n" + "\n".join(tripled) + "\n")
    code, _, err = run_cli(capsys, "fit", "--resume", run, "--epochs", "2")
    assert code == 2
    assert (f"error: {run}: the data differs from what the run trained on (y_train, y_test by "
            "manifest.json's fingerprints); a run resumes on the same data. Put the data back, "
            f"or train on the new data as a new run: dltrain fit {run / 'config.yaml'} "
            "--run-dir NEW_FOLDER.") in " ".join(err.split())
    assert len(read_history(run / "history.csv")) == 1


def test_a_resume_cut_short_lists_no_scores_of_the_model_it_replaced(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_small_run: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    # `runs` showed an interrupted extension with the test scores of the run before it.
    run = tmp_path / "run"
    copy_run(shared_small_run, run)
    with monkeypatch.context() as patch:  # Ctrl-C as epoch 3 ends
        cut_after(patch, 3)
        code, out, err = run_cli(capsys, "fit", "--resume", run, "--epochs", "40")
    assert code == 130, out + err
    assert "metrics.json removed: its test scores were the model's before this resume" in \
        " ".join(out.split())
    code, out, err = run_cli(capsys, "runs", tmp_path, "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["state"] == "interrupted" and row["accuracy"] is None and row["loss"] is None
    assert row["epochs"] == len(read_history(run / "history.csv")) >= 3
    code, out, err = run_cli(capsys, "compare", run, run, "--json")
    assert code == 0 and json.loads(out)["metrics"] == []


def test_resume_of_a_folder_that_is_not_there_says_so(tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    # It said "no config.yaml ... a fit killed this early kept nothing" of a typo.
    code, _, err = run_cli(capsys, "fit", "--resume", tmp_path / "nope")
    assert code == 2
    assert (f"error: {tmp_path / 'nope'}: no such folder; give a run directory that fit wrote "
            "(dltrain runs lists them).") in " ".join(err.split())
    assert not (tmp_path / "nope").exists()
    code, _, err = run_cli(capsys, "fit", "--resume", QUICKSTART)
    assert code == 2
    assert (f"error: {QUICKSTART}: a file; --resume takes a run directory that fit wrote. To "
            f"train this config: dltrain fit {QUICKSTART}") in " ".join(err.split())


def steps_taken(path: Path) -> int:
    """The optimizer's step count saved in a .keras file."""
    import keras

    return int(keras.saving.load_model(path).optimizer.iterations.numpy())


def steps_per_epoch(run: Path, batch_size: int = 64) -> int:
    return math.ceil(json.loads((run / "metrics.json").read_text())["train_samples"] / batch_size)


def assert_consistent(run: Path, epochs: int) -> None:
    """Weights, optimizer steps, history, metrics and best.keras all tell the same epochs."""
    metrics = json.loads((run / "metrics.json").read_text())
    steps = steps_per_epoch(run)
    assert state(run) == "completed"
    assert steps_taken(run / "model.keras") == epochs * steps
    assert [row["epoch"] for row in read_history(run / "history.csv")] == list(
        range(1, epochs + 1))
    assert metrics["epochs_run"] == epochs
    assert steps_taken(run / "best.keras") == metrics["best_epoch"] * steps
    assert (run / "curves.png").is_file() and (run / "confusion_matrix.png").is_file()
    # No temporary file is left; the lock file stays (the kernel's lock, not its file, marks a
    # writer).
    assert [path.name for path in run.iterdir() if path.name.startswith(".")] == [".lock"]


def finished_then_cut_back(run: Path, shared_small_run: Path) -> None:
    """A one-epoch run as a kill after its epoch but before its final files leaves it."""
    copy_run(shared_small_run, run)
    for name in ("model.keras", "metrics.json", "curves.png", "confusion_matrix.png"):
        (run / name).unlink()
    records.write(run, RunState(state="running"))


def test_resume_finishes_a_run_killed_after_its_last_epoch(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_small_run: Path) -> None:
    run = tmp_path / "run"
    finished_then_cut_back(run, shared_small_run)
    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, err
    assert_consistent(run, 1)
    assert run_cli(capsys, "eval", run)[0] == 0


def test_resume_finishes_an_early_stopped_run_without_training_on(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    run = tmp_path / "run"
    # No epoch can improve val_loss by 10, so patience 0 stops after the second of six epochs;
    # Ctrl-C comes while the final files are written.
    with monkeypatch.context() as patch:
        patch.setattr("dltrain.train.loop.score", interrupted)
        code, out, _ = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "6",
                               "--set", "training.early_stopping={monitor: val_loss, patience: 0, "
                               "min_delta: 10}", *FEW)
    assert code == 130 and state(run) == "interrupted"
    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, err
    assert f"finishing {run} after epoch 2" in out
    assert_consistent(run, 2)
    assert "epochs: 6" in (run / "config.yaml").read_text()


def test_resume_refuses_a_state_whose_parts_disagree(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_small_run: Path) -> None:
    import keras

    run = tmp_path / "run"
    finished_then_cut_back(run, shared_small_run)
    short = tmp_path / "short"
    shutil.copytree(run, short)
    (short / "history.csv").unlink()
    code, _, err = run_cli(capsys, "fit", "--resume", short)
    assert code == 2
    assert "last.keras holds 1 epoch(s) but history.csv has 0 rows" in " ".join(err.split())
    assert "start the run again" in " ".join(err.split())

    gone = tmp_path / "gone"  # a completed run whose last.keras was deleted
    shutil.copytree(run, gone)
    records.write(gone, RunState(state="completed"))
    (gone / "last.keras").unlink()
    code, _, err = run_cli(capsys, "fit", "--resume", gone, "--epochs", "3")
    assert code == 2
    assert "there is no last.keras but history.csv has 1 rows" in " ".join(err.split())
    assert len(read_history(gone / "history.csv")) == 1

    model = keras.saving.load_model(run / "last.keras")
    model.optimizer.iterations.assign(model.optimizer.iterations + 1)
    model.save(run / "last.keras")
    code, _, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 2
    assert "not a whole number of epochs" in " ".join(err.split())
    assert "start the run again" in " ".join(err.split())


def test_resume_of_a_run_without_a_completed_epoch_starts_it_and_cleans_up(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    config = load_config(QUICKSTART, ["dataset.train_limit=600", "dataset.test_limit=100",
                                      "training.epochs=1"]).config
    (run / "config.yaml").write_text(dump(config))
    records.write(run, RunState(state="running"))
    write_history(run / "history.csv", [{"epoch": 1, "loss": 2.0, "seconds": 1.0}])
    leftovers = [".last.keras.k2j4h5g6.keras", ".history.csv.ab_d12e4.tmp",
                 ".curves.png.zz99yy88.png"]
    for name in leftovers:
        (run / name).write_bytes(b"half")
    (run / "notes.txt").write_text("mine")
    (run / ".my.keras.k2j4h5g6.keras").write_text("mine too")
    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, err
    (run / "notes.txt").unlink()
    (run / ".my.keras.k2j4h5g6.keras").unlink()
    assert_consistent(run, 1)


def test_fit_run_dir_takes_a_folder_holding_only_its_own_temporary_files(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / ".config.yaml.ab_d12e4.tmp").write_text("half")
    code, _, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 2 and f"dltrain fit CONFIG --run-dir {run}" in " ".join(err.split())
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "1")
    assert code == 0, err
    assert_consistent(run, 1)
    (run / "notes.txt").write_text("mine")
    for item in run.iterdir():
        if item.is_dir():
            shutil.rmtree(item)
        elif item.name != "notes.txt":
            item.unlink()
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "1")
    assert code == 2 and "already exists and is not empty" in err


# Where to SIGKILL a fit: once `arm` exists, at the first sight of a name starting with one of
# `names` (a write's temporary file, or the next write's when polling missed it), or when
# `replaced` is renamed over (right after that write).
KILL_POINTS = {
    "run.json": ("config.yaml", ("run.json", ".environment.json."), None),
    "history.csv": ("best.keras", (".history.csv.", ".last.keras."), None),
    "last.keras": ("best.keras", (".best.keras.", ".model.keras."), "last.keras"),
    "best.keras": ("best.keras", (".best.keras.", ".model.keras."), None),
    "model.keras": ("best.keras", (".model.keras.", ".curves.png."), None),
    "curves.png": ("model.keras", (".curves.png.", ".confusion_matrix.png.", "curves.png"), None),
    "metrics.json": ("model.keras", (".metrics.json.", ".run.json.", "metrics.json"), None),
}


def kill_at(run: Path, process: subprocess.Popen, arm: str, names: tuple[str, ...],
            replaced: str | None, limit: float = 240) -> str:
    """SIGKILL `process` at the kill point; returns what it saw then."""
    deadline = time.monotonic() + limit
    armed_inode: int | None = None
    while time.monotonic() < deadline and process.poll() is None:
        try:
            seen = {entry.name: entry.inode() for entry in os.scandir(run)}
        except FileNotFoundError:
            seen = {}
        if armed_inode is None and arm in seen:
            armed_inode = seen.get(replaced or "", -1)
        if armed_inode is not None:
            hit = next((name for name in seen if name.startswith(names)), None)
            if replaced is not None and seen.get(replaced, -1) != armed_inode:
                hit = f"{replaced} replaced"
            if hit is not None:
                process.kill()
                process.communicate(timeout=60)
                return hit
        time.sleep(0.002)
    raise AssertionError(f"no kill point within {limit}s: {process.communicate(timeout=60)}")


def assert_nothing_half_written(run: Path) -> None:
    """Every model file a killed fit left loads and every JSON record parses; a temporary file
    it left is a model's or a .tmp, which the resume cleans up."""
    import keras

    for name in ("model.keras", "best.keras", "last.keras"):
        if (run / name).exists():
            keras.saving.load_model(run / name)
    for name in ("metrics.json", "run.json", "environment.json"):
        if (run / name).exists():
            json.loads((run / name).read_text())
    assert not list(run.glob(".*tmp*")) or all(p.suffix in (".keras", ".tmp")
                                               for p in run.glob(".*tmp*"))


@pytest.mark.slow
@pytest.mark.parametrize("write", list(KILL_POINTS))
def test_sigkill_at_each_state_write_leaves_nothing_half_written_and_resumes_consistent(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], write: str) -> None:
    """A SIGKILL as each of the run's files is being written (its temporary file just made) or
    has just been replaced: no artifact is half-written, and the resume completes the run.
    (These instants replaced a test that killed four more fits at timed instants after epochs
    1 to 4 of a long run, which land in the same writes: history.csv's, last.keras's,
    best.keras's.)"""
    run = tmp_path / "run"
    process = start_fit(run, "--epochs", "2", "--set", "dataset.train_limit=128")
    hit = kill_at(run, process, *KILL_POINTS[write])
    assert process.returncode == -signal.SIGKILL, hit
    assert_nothing_half_written(run)
    if write != "run.json":  # killed once epoch 1's row was written
        assert len(read_history(run / "history.csv")) >= 1, hit
    code, out, _ = run_cli(capsys, "runs", tmp_path, "--json")
    assert code == 0 and [row["name"] for row in json.loads(out)] == ["run"]  # listed at once
    if state(run) != "completed":  # the kill can land after the last write
        code, out, err = run_cli(capsys, "fit", "--resume", run)
        assert code == 0, f"killed at {hit}: {err}"
    assert_consistent(run, 2)
    print(f"killed at {hit}")  # pytest -rP shows where the kill landed


def test_divergence_stops_at_once_and_keeps_the_last_good_checkpoint(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    run = tmp_path / "run"
    # A sane rate for the first epoch (9 steps of 60 samples) and on, then a huge one.
    schedule = ("optimizer.schedule={name: PiecewiseConstantDecay, boundaries: [10], "
                "values: [0.001, 1.0e+12]}")
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs", "5",
                           "--batch-size", "60", "--set", schedule)
    assert code == 2
    assert "the loss became NaN or infinite" in err and "optimizer.clipnorm" in err
    assert state(run) == "failed"
    history = read_history(run / "history.csv")
    assert steps_taken(run / "last.keras") == 9  # one epoch of 9 steps (540 samples): the good one
    assert len(history) == 2  # the diverging epoch stopped early, the run did not go on
    kept = keras.saving.load_model(run / "best.keras")
    assert kept.count_params() > 0
    code, _, err = run_cli(capsys, "eval", run, "--model", run / "last.keras")
    assert code == 0, err


@pytest.mark.parametrize("interrupt_at", [None, 2])
def test_a_resumed_run_stops_early_at_the_epoch_the_uninterrupted_run_did(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        interrupt_at: int | None) -> None:
    """No epoch improves val_loss by 10, so patience 2 stops after epoch 3 of 6. Interrupted
    as epoch 2 ends (before its checkpoint), the run resumes after epoch 1: Keras's
    EarlyStopping alone would count afresh from there and stop after epoch 4."""
    run = tmp_path / "run"
    stopping = ["--set", "training.early_stopping={monitor: val_loss, patience: 2, min_delta: 10}"]
    with monkeypatch.context() as patch:
        if interrupt_at is not None:
            cut_after(patch, interrupt_at)
        code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs",
                               "6", *stopping, *FEW)
    if interrupt_at is not None:
        assert code == 130 and state(run) == "interrupted", err
        code, out, err = run_cli(capsys, "fit", "--resume", run)
        assert f"resuming {run} after epoch 1" in out
    assert code == 0, err
    assert [row["epoch"] for row in read_history(run / "history.csv")] == [1, 2, 3]
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 3


def weights(path: Path) -> list[Any]:
    import keras

    return list(keras.saving.load_model(path, compile=False).get_weights())


def cut_after(monkeypatch: pytest.MonkeyPatch, interrupt_at: int) -> None:
    """Ctrl-C as epoch `interrupt_at` ends, after its history row, before its checkpoint: the
    run resumes after the epoch before."""
    from dltrain.train.events import EpochEnded
    from dltrain.train.history import HistoryFile

    plain = HistoryFile.epoch_ended

    def cut(self: HistoryFile, event: EpochEnded) -> None:
        plain(self, event)
        if event.epoch == interrupt_at:
            raise KeyboardInterrupt

    monkeypatch.setattr(HistoryFile, "epoch_ended", cut)


def test_a_resumed_run_restores_a_best_epoch_from_before_the_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """At learning rate 0.03, val_loss is lowest at epoch 4 of 6 (0.91; 1.08 and 1.17 after).
    Resumed after epoch 5, Keras's EarlyStopping had lost epoch 4's weights and restored
    epoch 6's; best.keras holds epoch 4's."""
    run = tmp_path / "run"
    with monkeypatch.context() as patch:
        cut_after(patch, 6)
        code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", run, *SMALL, "--epochs",
                               "6", "--set", "optimizer.learning_rate=0.03", "--set",
                               "training.early_stopping={monitor: val_loss, patience: 5, "
                               "restore_best_weights: true}")
    assert code == 130, err
    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, err
    assert f"resuming {run} after epoch 5" in out
    best = json.loads((run / "metrics.json").read_text())["best_epoch"]
    assert best < 5  # the case: a best epoch before the resume, not the one it resumed with
    final, kept = weights(run / "model.keras"), weights(run / "best.keras")
    assert all(np.array_equal(a, b) for a, b in zip(final, kept, strict=True))


TF_FREE = Path(__file__).resolve().parents[1] / ".venv-tf-free" / "bin" / "python"
PYTHONS = {"tensorflow": sys.executable, "jax": sys.executable, "torch": str(TF_FREE)}
FLIPPED = [*SMALL, "--set", "training.deterministic=true", "--set",
           "augmentation={horizontal_flip: true, brightness_range: [0.8, 1.2]}", "--set",
           "training.tensorboard=false"]


def dltrain(backend: str, *commands: list[object]) -> None:
    """The CLI on `backend`, each command in turn, in a process of their own (a process runs one
    Keras backend); stops at the first that fails."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    script = ("import json, sys; from dltrain.cli import main\n"
              "for args in json.loads(sys.argv[1]):\n"
              "    if main(args) != 0: sys.exit(1)")
    done = subprocess.run([PYTHONS[backend], "-c", script,
                           json.dumps([list(map(str, args)) for args in commands])],
                          capture_output=True, text=True, timeout=600, env={**env, "CI": "1"})
    assert done.returncode == 0, done.stderr


def resume_elsewhere(backend: str, resumes: list[list[object]]) -> None:
    """`resumes` in a process that did not train the runs: this one where Keras runs `backend`
    here (what the deterministic runs switch on for it put back after), else one of their own."""
    keras = sys.modules.get("keras")  # not imported yet: it will be on the default backend
    here = keras.backend.backend() if keras else os.environ.get("KERAS_BACKEND", "tensorflow")
    if here != backend:
        dltrain(backend, *resumes)
        return
    flags, before = os.environ.get("XLA_FLAGS"), op_determinism()
    try:
        for args in resumes:
            code, _, err = cli(*args)
            assert code == 0, err
            print(f"resumed in pytest's process: {args}")
    finally:
        restore_op_determinism(before)
        os.environ.pop("XLA_FLAGS", None)
        if flags is not None:
            os.environ["XLA_FLAGS"] = flags


# TensorFlow's auto is 1 on these short epochs (SMALL's train_limit): 4, written, is the loop.
AUGMENTED = [("tensorflow", "4"), ("tensorflow", "1"), ("jax", "auto"), ("torch", "auto")]


@pytest.fixture(scope="module")
def augmented_runs(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Per backend, for each of its steps_per_execution in AUGMENTED: an uninterrupted run of
    3 epochs (`whole-STEPS`) and one of 1 epoch resumed to 3 (`resumed-STEPS`). A backend's
    fits share a process (one start of the backend instead of one per fit); its resumes share
    another, as a resume after a Ctrl-C would: nothing of the process that began the runs
    helps them: on this process's own backend, the resumes run here (one start of the backend
    fewer). Trained on first use, so a skipped backend costs nothing."""
    folders: dict[str, Path] = {}

    def trained(backend: str) -> Path:
        if backend not in folders:
            folder = tmp_path_factory.mktemp(f"augmented-{backend}")
            fits, resumes = [], []
            for steps in (steps for name, steps in AUGMENTED if name == backend):
                flipped = [*FLIPPED, "--set", f"training.steps_per_execution={steps}"]
                fits += [["fit", QUICKSTART, "--backend", backend, "--run-dir",
                          folder / f"whole-{steps}", *flipped, "--epochs", "3"],
                         ["fit", QUICKSTART, "--backend", backend, "--run-dir",
                          folder / f"resumed-{steps}", *flipped, "--epochs", "1"]]
                resumes.append(["fit", "--resume", folder / f"resumed-{steps}", "--epochs", "3"])
            dltrain(backend, *fits)
            resume_elsewhere(backend, resumes)
            folders[backend] = folder
        return folders[backend]

    return trained


@pytest.mark.parametrize(("backend", "steps"), [
    *AUGMENTED[:3],
    pytest.param(*AUGMENTED[3], marks=pytest.mark.skipif(
        not TF_FREE.is_file(), reason="torch runs in .venv-tf-free: make tf-free-env"))])
def test_a_resumed_augmented_run_trains_on_the_uninterrupted_run_s_draws(
        augmented_runs: Callable[[str], Path], backend: str, steps: str) -> None:
    """Flips, brightness and the shuffle after the resume are the ones the uninterrupted run
    drew: they restarted from the seed, and the resumed run trained on others. (TensorFlow
    iterates its data afresh each epoch at 4 steps per execution, once at 1.)"""
    folder = augmented_runs(backend)
    whole, resumed = folder / f"whole-{steps}", folder / f"resumed-{steps}"

    def rows(run: Path) -> list[dict[str, float]]:
        return [{k: v for k, v in row.items() if k != "seconds"}
                for row in read_history(run / "history.csv")]

    assert [row["epoch"] for row in rows(resumed)] == [1, 2, 3]
    assert rows(resumed) == rows(whole)
    final, kept = weights(whole / "model.keras"), weights(resumed / "model.keras")
    assert all(np.array_equal(a, b) for a, b in zip(final, kept, strict=True))
