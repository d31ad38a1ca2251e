"""Run folders tampered with by hand or by someone hostile: links planted where dltrain writes,
absurd or mistyped values in the files it reads back. Each is refused with exit 2 and a message
naming the file (and key), and nothing outside the run is written."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import test_report_export

from conftest import run_cli
from dltrain.errors import RunError
from dltrain.runs import lock

# The export tests' --smoke run (training one takes seconds), copied for each test to change it.
trained, run = test_report_export.trained, test_report_export.run
PRECIOUS = "someone's file, outside the run\n"


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A file outside the run that a planted link points to."""
    path = tmp_path / "elsewhere" / "precious.txt"
    path.parent.mkdir()
    path.write_text(PRECIOUS)
    return path


def plant(run: Path, name: str, target: Path, how: str = "symlink") -> Path:
    link = run / name
    if link.is_dir():
        shutil.rmtree(link)
    else:
        link.unlink(missing_ok=True)
    if how == "symlink":
        link.symlink_to(target.parent if name == "tensorboard" else target)
    else:
        os.link(target, link)
    return link


RESUME_LINKS = [(".lock", "symlink"), (".lock", "hardlink"), ("run.json", "symlink"),
                ("history.csv", "symlink"), ("metrics.json", "symlink"),
                ("environment.json", "symlink"), ("tensorboard", "symlink")]


@pytest.mark.parametrize(("name", "how"), RESUME_LINKS)
def test_resume_refuses_a_link_planted_in_the_run_and_writes_nothing_through_it(
        run: Path, outside: Path, name: str, how: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # A .lock linked to a file outside the run was emptied by fit --resume (issue 26).
    link = plant(run, name, outside, how)
    code, _, err = run_cli(capsys, "fit", "--resume", run, "--epochs", "2")
    message = " ".join(err.split())
    assert code == 2, err
    assert f"{link}: a {'symbolic' if how == 'symlink' else 'hard'} link" in message
    assert "Traceback" not in err
    assert outside.read_text() == PRECIOUS
    assert sorted(path.name for path in outside.parent.iterdir()) == ["precious.txt"]


@pytest.mark.parametrize("name", ["eval.json", "confusion_matrix.png"])
def test_eval_refuses_a_link_where_it_writes(run: Path, outside: Path, name: str,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    link = plant(run, name, outside)
    code, _, err = run_cli(capsys, "eval", run)
    assert code == 2, err
    assert f"{link}: a symbolic link" in " ".join(err.split()) and "Traceback" not in err
    assert outside.read_text() == PRECIOUS


def test_export_refuses_a_link_where_it_writes(run: Path, outside: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    link = plant(run, "export.json", outside)
    code, _, err = run_cli(capsys, "export", run, "--format", "saved_model")
    assert code == 2, err
    assert f"{link}: a symbolic link" in " ".join(err.split()) and "Traceback" not in err
    assert outside.read_text() == PRECIOUS
    assert not (run / "model_saved_model").exists()


def test_a_search_lock_planted_as_a_link_makes_no_file_outside(tmp_path: Path) -> None:
    # Opened with O_CREAT through a dangling link, it made the file the link names.
    target = tmp_path / "elsewhere"
    (tmp_path / lock.SEARCH_LOCK).symlink_to(target)
    with pytest.raises(RunError, match="searching: a symbolic link"), lock.searching(tmp_path):
        pass
    assert not target.exists()
