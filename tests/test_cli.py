"""The real `dltrain` command: exit codes, messages, run directories, fit/eval agreement."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, ROOT, copy_run, run_cli, write_yaml
from dltrain.runs import records
from dltrain.runs.records import RunState

QUICKSTART = CONFIGS / "quickstart.yaml"


def dltrain(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """The installed console script, in a subprocess, as a user runs it."""
    script = Path(sys.executable).with_name("dltrain")
    return subprocess.run([str(script), *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          env={**os.environ, "CI": "true", **(env or {})}, timeout=300)


@pytest.mark.slow
def test_quickstart_fit_then_eval_agree(tmp_path: Path) -> None:
    fitted = dltrain("fit", QUICKSTART, cwd=tmp_path)
    assert fitted.returncode == 0, fitted.stderr
    assert "Traceback" not in fitted.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and re.fullmatch(r"quickstart-\d{8}-\d{6}", runs[0].name)
    metrics = json.loads((runs[0] / "metrics.json").read_text())
    accuracy = metrics["test"]["accuracy"]
    assert accuracy > 0.7  # 10 balanced classes: chance is 0.1
    assert f"{accuracy:.4f}" in fitted.stdout
    assert metrics["epochs_run"] == yaml.safe_load(QUICKSTART.read_text())["training"]["epochs"]
    env = json.loads((runs[0] / "environment.json").read_text())
    assert env["device"] == "CPU" and env["tensorflow"].startswith("2.21")

    evaluated = dltrain("eval", runs[0], cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    scored = json.loads((runs[0] / "eval.json").read_text())["test"]["accuracy"]
    assert scored == pytest.approx(accuracy, abs=0.001)
    assert f"{accuracy:.4f}" in evaluated.stdout


def test_help_does_not_import_tensorflow(tmp_path: Path) -> None:
    code = ("import sys; from dltrain.cli import main; main(['--help']); "
            "main(['show', '--no-summary', sys.argv[1]]); "
            "print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, str(QUICKSTART)], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.stdout.strip().endswith("False False"), result.stdout + result.stderr


def test_misspelt_key_exits_2_with_path_and_suggestion_and_no_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    text = QUICKSTART.read_text().replace("optimizer:", "optimiser:")
    config = write_yaml(tmp_path / "typo.yaml", text)
    code, out, err = run_cli(capsys, "fit", config)
    assert code == 2
    assert f"{config}: unknown key 'optimiser' at top level" in err
    assert "Did you mean 'optimizer'?" in err
    assert "Traceback" not in err + out
    assert not (tmp_path / "runs").exists()


def test_config_error_found_by_keras_also_exits_2_without_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--set", "model.layers.0.Conv2D.filtres=3")
    assert code == 2
    assert "unknown argument 'filtres' for Conv2D. Did you mean 'filters'?" in err
    assert not (tmp_path / "runs").exists()


def test_missing_data_exits_2_naming_the_folder(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "fit", CONFIGS / "mnist_cnn.yaml", "--smoke", "--set",
                           f"dataset.data_dir={tmp_path / 'nowhere'}")
    assert code == 2
    assert f"dataset.data_dir: {tmp_path / 'nowhere'} is not a folder" in err
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_overrides_and_shortcuts_land_in_the_saved_config(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", run,
                           "--set", "optimizer.learning_rate=0.01", "--batch-size", "16",
                           "--seed", "7")
    assert code == 0, err
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["optimizer"]["learning_rate"] == 0.01
    assert saved["training"]["batch_size"] == 16 and saved["seed"] == 7
    assert saved["training"]["epochs"] == 1 and saved["dataset"]["train_limit"] == 256
    assert saved["training"]["steps_per_execution"] == 1  # a smoke run's few steps: one a call


def test_keras2_spelling_prints_a_note(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = QUICKSTART.read_text().replace("learning_rate: 0.001", "lr: 0.001")
    code, _, err = run_cli(capsys, "show", "--no-summary", write_yaml(tmp_path / "k2.yaml", text))
    assert code == 0
    assert "note: optimizer.lr is the Keras 2 name" in err


def test_run_dir_that_holds_files_is_not_overwritten(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "keep.txt").write_text("earlier work")
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", tmp_path)
    assert code == 2 and "already exists and is not empty" in err
    assert (tmp_path / "keep.txt").read_text() == "earlier work"


@pytest.mark.slow
def test_eval_refuses_an_incomplete_run(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        shared_smoke_run: Path) -> None:
    run = copy_run(shared_smoke_run, tmp_path / "run")
    records.write(run, records.read(run, RunState).model_copy(update={"state": "interrupted"}))
    code, _, err = run_cli(capsys, "eval", run)
    assert code == 2 and "the run is 'interrupted', not completed" in err
    code, out, err = run_cli(capsys, "eval", run, "--model", run / "best.keras")
    assert code == 0, err
    assert "best.keras" in out


def test_eval_refuses_a_model_file_that_carries_code(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras

    model = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(),
                              keras.layers.Lambda(lambda x: x * 2),
                              keras.layers.Dense(10, activation="softmax")])
    model.save(tmp_path / "lambda.keras")
    code, _, err = run_cli(capsys, "eval", tmp_path / "lambda.keras", "--config", QUICKSTART)
    assert code == 2
    assert "refused or unreadable model file" in err and "Lambda" in err


def test_gpu_requested_on_a_cpu_machine_is_a_clear_error(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--device", "gpu",
                           "--run-dir", tmp_path / "run")
    assert code == 2 and "TensorFlow sees no GPU here" in err
    assert not (tmp_path / "run").exists()


def test_internal_error_exits_1_without_traceback(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("dltrain.train.fit.fit", broken)
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", tmp_path / "run")
    assert code == 1
    assert "internal error" in err and "boom" in err
    # The command to run, --debug before the command (typer refuses it after: no such option).
    assert f"run again as dltrain --debug fit {QUICKSTART} --run-dir {tmp_path / 'run'}," in \
        " ".join(err.split())
    assert "Traceback" not in err
    with pytest.raises(RuntimeError):
        run_cli(capsys, "--debug", "fit", QUICKSTART, "--run-dir", tmp_path / "run")


def test_an_internal_error_s_command_to_run_again_hides_a_url_s_password(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A database that went away mid-search once reached this message, which echoed
    --storage's password."""
    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr("dltrain.cli.tuning.ready_to_train", broken)  # before TensorFlow
    config = CONFIGS / "mnist_cnn_search.yaml"
    code, _, err = run_cli(capsys, "tune", config, "--storage", "postgresql://me:pw-71c@db/d")
    assert code == 1 and "pw-71c" not in err
    assert f"run again as dltrain --debug tune {config} --storage 'postgresql://me:***@db/d'," in \
        " ".join(err.split())


def test_ctrl_c_exits_130_and_marks_the_run_interrupted(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dltrain.train.loop._train", interrupted)
    code, out, _ = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", tmp_path / "run")
    assert code == 130 and "interrupted after 0 completed epoch(s)" in out
    assert f"Resume with: dltrain fit --resume {tmp_path / 'run'}" in out
    assert json.loads((tmp_path / "run" / "run.json").read_text())["state"] == "interrupted"


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--device", "tpu")
    assert code == 2 and "tpu" in err


def test_python_dash_m_dltrain_runs_the_cli_without_a_warning() -> None:
    """Where the console script is not on PATH (a venv not activated, a copied tree on a GPU
    machine), `python -m dltrain` is the command."""
    from dltrain import __version__

    done = subprocess.run([sys.executable, "-m", "dltrain", "--version"], capture_output=True,
                          text=True, timeout=60, cwd=ROOT)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"dltrain {__version__}\n", "")
    done = subprocess.run([sys.executable, "-m", "dltrain", "fit", "no-such.yaml"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and "no-such.yaml: no such config file" in done.stderr


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from dltrain import __version__

    assert run_cli(capsys, "--version") == (0, f"dltrain {__version__}\n", "")


def test_ctrl_c_before_training_says_interrupted_and_exits_130(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # typer turns KeyboardInterrupt into exit code 130 without a word.
    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("dltrain.config.load.load_config", interrupted)
    code, _, err = run_cli(capsys, "show", QUICKSTART, "--no-summary")
    assert code == 130
    assert err.strip().splitlines()[-1] == "interrupted"


class Exited(Exception):
    """os._exit, recorded instead of ending the test process."""


@pytest.mark.parametrize(("code", "leaves"), [(130, "os._exit"), (143, "os._exit"),
                                              (0, "sys.exit"), (2, "sys.exit"), (1, "sys.exit")])
def test_the_script_leaves_an_interrupted_command_without_tearing_down(
        code: int, leaves: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A SIGTERM during TensorFlow's import left it half made, and the interpreter's teardown
    crashed (exit -11): an interrupted command ends at once, its output flushed."""
    import importlib

    app = importlib.import_module("dltrain.cli.app")  # the module: dltrain.cli.app is the Typer

    def record(status: int) -> None:
        raise Exited(status)

    flushed: list[str] = []
    monkeypatch.setattr(app, "main", lambda: code)
    monkeypatch.setattr(app.os, "_exit", record)
    monkeypatch.setattr(sys.stdout, "flush", lambda: flushed.append("stdout"))
    monkeypatch.setattr(sys.stderr, "flush", lambda: flushed.append("stderr"))
    with pytest.raises((Exited, SystemExit)) as ended:
        app.run()
    assert (ended.type is Exited) == (leaves == "os._exit")
    assert ended.value.args[0] == code
    assert flushed == (["stdout", "stderr"] if leaves == "os._exit" else [])


def test_python_m_dltrain_exits_with_the_command_s_code(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "dltrain", "show", str(tmp_path / "no.yaml")],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "CI": "true"})
    assert done.returncode == 2 and "no.yaml" in done.stderr
