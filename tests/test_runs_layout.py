"""Where a run folder goes: inside the working directory, even through symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import CONFIGS, run_cli
from dltrain.config.load import load_config
from dltrain.errors import RunError
from dltrain.runs import lock
from dltrain.runs.layout import new_run_dir

QUICKSTART = CONFIGS / "quickstart.yaml"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "work").mkdir()
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.mark.parametrize("runs_dir", ["out", "out/deeper", "inside/out"])
def test_runs_dir_through_a_symlink_out_of_the_working_directory_is_refused(
        workdir: Path, runs_dir: str) -> None:
    (workdir / "inside").mkdir()
    elsewhere = workdir.parent / "elsewhere"
    (workdir / "out").symlink_to(elsewhere)
    (workdir / "inside" / "out").symlink_to(elsewhere)
    config = load_config(QUICKSTART, [f"output.runs_dir={runs_dir}"]).config
    with pytest.raises(RunError) as refused:
        new_run_dir(config, None)
    target = elsewhere / runs_dir.split("out", 1)[1].lstrip("/")
    assert str(refused.value) == (
        f"output.runs_dir {runs_dir} leads to {target.resolve()}, outside the working directory "
        f"{workdir}; a config keeps its runs inside the folder it is run from. Use --run-dir "
        "to put a run elsewhere.")
    assert not any(elsewhere.iterdir())


def test_runs_dir_through_a_symlink_that_stays_inside_is_fine(workdir: Path) -> None:
    (workdir / "real").mkdir()
    (workdir / "out").symlink_to(workdir / "real")
    config = load_config(QUICKSTART, ["output.runs_dir=out"]).config
    run = new_run_dir(config, None)
    lock.release(run)
    assert run.parent == Path("out") and (workdir / "real" / run.name).is_dir()


def test_fit_refuses_the_escape_before_training(workdir: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (workdir / "out").symlink_to(workdir.parent / "elsewhere")
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--set", "output.runs_dir=out")
    assert code == 2
    assert "outside the working directory" in " ".join(err.split())
    assert not any((workdir.parent / "elsewhere").iterdir())


def test_a_run_dir_filled_between_the_check_and_the_lock_is_refused(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    take = lock.acquire

    def another_fit_first(folder: Path) -> None:  # it made the folder and wrote, then let go
        (folder / "config.yaml").write_text("the other fit's")
        take(folder)

    monkeypatch.setattr(lock, "acquire", another_fit_first)
    config = load_config(QUICKSTART).config
    with pytest.raises(RunError, match="already exists and is not empty"):
        new_run_dir(config, run)
    assert lock.writer_alive(run) is False  # not left held
    assert (run / "config.yaml").read_text() == "the other fit's"


def test_an_interrupted_fold_or_trial_is_resumed_by_its_parents_command(tmp_path: Path) -> None:
    # A trial stopped by SIGTERM said "Resume with: dltrain fit --resume .../trial-0001", which
    # fit then refused.
    from dltrain.runs.layout import resume_command, set_state

    search, cv = tmp_path / "search", tmp_path / "cv"
    (search / "trial-0001").mkdir(parents=True)
    set_state(search, "running", kind="tune")
    (cv / "fold-1").mkdir(parents=True)
    (cv / "cv.json").write_text("{}")
    (tmp_path / "run").mkdir()
    assert resume_command(search / "trial-0001") == f"dltrain tune --resume {search}"
    assert resume_command(cv / "fold-1") == f"dltrain cv --resume {cv}"
    assert resume_command(tmp_path / "run") == f"dltrain fit --resume {tmp_path / 'run'}"


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
def test_a_run_dir_where_no_folder_can_be_made_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    # /proc makes no folders (FileNotFoundError): an internal error of fit, cv and tune.
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", "/proc/dltrain-x")
    assert code == 2 and "--run-dir /proc/dltrain-x: no folder can be made there; choose one in " \
        "a folder you can write." in " ".join(err.split())


def test_a_resume_sets_aside_the_scores_of_the_checkpoints_it_will_replace(tmp_path: Path) -> None:
    """eval --model best.keras wrote eval-best.json and its pictures: best.keras and last.keras
    change as the resumed run trains, so those scores go like eval.json's."""
    from dltrain.runs import layout

    scored = ["eval.json", "eval-best.json", "confusion_matrix-best.png", "eval-last.json",
              "predicted_vs_actual-last.png", "residuals-last.png"]
    kept = ["confusion_matrix.png", "curves.png", "eval-mine.json"]  # the fit's, a user's file
    for name in scored + kept:
        (tmp_path / name).write_text("{}")
    notes = " ".join(layout.set_aside_scores(tmp_path))
    assert sorted(path.name for path in tmp_path.iterdir()) == sorted(kept)
    assert "eval-best.json" in notes and "eval-last.json" in notes
