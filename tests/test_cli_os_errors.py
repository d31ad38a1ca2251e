"""The user's environment, not dltrain: a full disk, a read-only folder, a name too long, a
number too long. Each is exit 2 with one message that names the path, never an internal error."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import CONFIGS, copy_run, run_cli, write_yaml

QUICKSTART = CONFIGS / "quickstart.yaml"
SMALL = ["--set", "dataset.train_limit=600", "--set", "dataset.test_limit=100"]


@contextlib.contextmanager
def tmpfs(folder: Path, size: str, read_only: bool = False) -> Iterator[Path]:
    """A small tmpfs at `folder` (read-only if asked), unmounted afterwards; skips where it
    cannot be mounted."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    folder.mkdir(parents=True, exist_ok=True)
    options = f"{'ro,' if read_only else ''}size={size}"
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True, timeout=30)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)


def one_line(text: str) -> str:
    return " ".join(text.split())


@pytest.mark.slow
def test_fit_onto_a_full_disk_says_so_and_leaves_nothing_half_written(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with tmpfs(tmp_path / "small", "600k") as disk:
        run = disk / "run"
        code, _, err = run_cli(capsys, "fit", QUICKSTART, *SMALL, "--epochs", "1",
                               "--run-dir", run)
        assert code == 2, err
        message = one_line(err)
        assert "internal error" not in message
        assert f"error: cannot write {run}/" in message
        assert ": No space left on device. Free space or choose another --run-dir." in message
        assert not [p.name for p in run.iterdir() if ".tmp" in p.name]
        for name in ("run.json", "environment.json", "manifest.json", "preprocessing.json"):
            json.loads((run / name).read_text())
        assert json.loads((run / "run.json").read_text())["state"] == "failed"


@pytest.mark.slow
def test_eval_in_a_read_only_folder_prints_its_metrics_then_names_the_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_smoke_run: Path) -> None:
    trained = copy_run(shared_smoke_run, tmp_path / "trained")
    with tmpfs(tmp_path / "readonly", "20m") as disk:
        run = disk / "run"
        shutil.copytree(trained, run)
        (run / "confusion_matrix.png").unlink()
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True, timeout=30)
        code, out, err = run_cli(capsys, "eval", run)
        assert code == 2, err
        assert "accuracy" in out and "loss" in out  # the scores came first
        assert one_line(err) == (f"error: cannot write {run / 'eval.json'}: Read-only file "
                                 "system. Make it writable or work in another folder.")
        assert not (run / "eval.json").exists() and not (run / "confusion_matrix.png").exists()


def test_a_file_name_too_long_names_the_path(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / ("a" * 300)
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", run)
    assert code == 2, err
    assert one_line(err) == f"error: cannot use {run}: File name too long. Choose a shorter name."


def test_a_number_with_too_many_digits_is_refused(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    digits = "9" * 5000
    code, _, err = run_cli(capsys, "show", "--no-summary", QUICKSTART,
                           "--set", f"training.epochs={digits}")
    assert code == 2, err
    assert one_line(err) == (
        f"error: --set training.epochs={'9' * 20}... (5000 digits): a number has more digits "
        "than Python reads (4300). Write a shorter number.")
    config = write_yaml(tmp_path / "huge.yaml",
                        QUICKSTART.read_text().replace("epochs: 4", f"epochs: {digits}"))
    code, _, err = run_cli(capsys, "show", "--no-summary", config)
    assert code == 2, err
    assert one_line(err) == (f"error: {config}: a number has more digits than Python reads "
                             "(4300). Write a shorter number.")


def test_a_folder_where_a_run_file_belongs_names_it(tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    (run / "run.json").mkdir(parents=True)
    shutil.copy(QUICKSTART, run / "config.yaml")
    code, _, err = run_cli(capsys, "eval", run)
    assert code == 2, err
    assert one_line(err) == (f"error: cannot use {run / 'run.json'}: Is a directory. A file "
                             "belongs there: move the folder away.")


def test_a_run_dir_under_a_file_names_it(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "notes").write_text("a file, not a folder")
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir",
                           tmp_path / "notes" / "run")
    assert code == 2, err
    assert "internal error" not in err
    assert "Not a directory. A part of that path is a file, not a folder: choose another " \
           "path." in one_line(err)


def test_an_input_output_error_from_the_disk_says_so() -> None:
    from dltrain.cli.app import environment_error

    failed = OSError(errno.EIO, os.strerror(errno.EIO), "/data/run/last.keras")
    assert environment_error(failed, []) == (
        "cannot use /data/run/last.keras: Input/output error. The disk reported an error: "
        "check it, or work on another one.")


def test_running_out_of_memory_says_what_to_lower(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    import numpy as np

    import dltrain.train.fit

    def fit(*args: object, **kwargs: object) -> None:
        np.empty(2**50, dtype=np.uint8)  # the allocation that fails, as a step's would

    monkeypatch.setattr(dltrain.train.fit, "fit", fit)
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--run-dir", tmp_path / "run")
    assert code == 2, err
    assert one_line(err).startswith("error: out of memory (Unable to allocate 1.00 PiB")
    assert one_line(err).endswith("Lower training.batch_size, train in training.mixed_precision: "
                                  "bf16 on a GPU, or make the model smaller.")


def test_tensorflows_full_disk_is_not_called_out_of_memory() -> None:
    # TensorFlow reports ENOSPC as a ResourceExhaustedError: dltrain said "out of memory ...
    # Lower training.batch_size".
    from dltrain.cli.app import environment_error

    class ResourceExhaustedError(Exception):
        pass

    error = ResourceExhaustedError("run/.model_saved_model.partial/variables/x.tempstate; No "
                                   "space left on device")
    assert environment_error(error, ["export", "run", "--format", "saved_model"]) == (
        "cannot write: the disk is full (run/.model_saved_model.partial/variables/x.tempstate; "
        "No space left on device). Free space or choose another --output.")
    enospc = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), "run/eval.json")
    assert environment_error(enospc, ["eval", "run"]) == (
        "cannot write run/eval.json: No space left on device. Free space.")


@pytest.mark.slow
def test_export_onto_a_full_disk_says_so_and_leaves_no_partial_export(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], shared_smoke_run: Path) -> None:
    trained = copy_run(shared_smoke_run, tmp_path / "trained")
    shutil.rmtree(trained / "tensorboard")
    size = sum(p.stat().st_size for p in trained.rglob("*") if p.is_file())
    with tmpfs(tmp_path / "small", f"{size // 1024 + 1024}k") as disk:
        run = disk / "run"
        shutil.copytree(trained, run)
        free = shutil.disk_usage(disk).free
        (disk / "filler").write_bytes(b"\0" * max(free - 64 * 1024, 0))
        code, _, err = run_cli(capsys, "export", run, "--format", "saved_model")
        assert code == 2, err
        message = one_line(err)
        assert "out of memory" not in message and "internal error" not in message
        assert message.startswith("error: cannot write")
        assert message.endswith("Free space or choose another --output.")
        assert not [p.name for p in run.iterdir() if "partial" in p.name]
