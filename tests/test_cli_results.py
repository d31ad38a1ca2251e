"""The commands that start from runs: eval and runs, on a real smoke run."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import CONFIGS, copy_run, run_cli

QUICKSTART = CONFIGS / "quickstart.yaml"


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, shared_smoke_run: Path) -> Path:
    """One quickstart --smoke run, shared by the tests of this module (copy it to change it)."""
    return copy_run(shared_smoke_run, tmp_path_factory.mktemp("results") /
                    "quickstart-20261126-031500")


@pytest.mark.slow
def test_eval_finds_a_bare_model_name_inside_the_run(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    monkeypatch.chdir(tmp_path)  # the README's example: the working directory is not the run
    code, out, err = run_cli(capsys, "eval", run, "--model", "best.keras", "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == str(run / "best.keras")
    assert json.loads((run / "eval-best.json").read_text())["model"] == str(run / "best.keras")


@pytest.mark.slow
def test_eval_of_another_model_file_leaves_the_runs_own_files_alone(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # eval --model best.keras replaced the fit's eval.json and confusion matrix (issue 27).
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    assert run_cli(capsys, "eval", run)[0] == 0  # without --model: the run's own, as before
    own = json.loads((run / "eval.json").read_text())
    assert own["model"] == str(run / "model.keras")
    picture = (run / "confusion_matrix.png").read_bytes()
    code, out, err = run_cli(capsys, "eval", run, "--model", "best.keras")
    assert code == 0, err
    assert json.loads((run / "eval.json").read_text()) == own
    assert (run / "confusion_matrix.png").read_bytes() == picture
    assert json.loads((run / "eval-best.json").read_text())["model"] == str(run / "best.keras")
    assert (run / "confusion_matrix-best.png").read_bytes()[:4] == b"\x89PNG"
    assert (f"note: best.keras's scores are saved in {run / 'eval-best.json'}, "
            f"confusion_matrix-best.png; the run's own eval.json and pictures are "
            f"model.keras's.") in " ".join(err.split())
    code, _, err = run_cli(capsys, "eval", run, "--model", run / "model.keras")
    assert code == 0, err  # the run's own model by its whole path: the run's own files
    assert "note:" not in err and not (run / "eval-model.json").exists()


@pytest.mark.slow
def test_eval_prefers_the_run_for_a_relative_model_and_still_takes_other_paths(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(run / "last.keras", elsewhere / "best.keras")  # a namesake outside the run
    shutil.copy(run / "last.keras", elsewhere / "kept.keras")
    monkeypatch.chdir(elsewhere)
    code, out, err = run_cli(capsys, "eval", run, "--model", "best.keras", "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == str(run / "best.keras")
    code, out, err = run_cli(capsys, "eval", run, "--model", "kept.keras", "--json")
    assert code == 0, err
    assert json.loads(out)["model"] == "kept.keras"


@pytest.mark.slow
def test_eval_on_another_configs_data_leaves_the_runs_own_files_alone(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It replaced the run's eval.json and confusion matrix with scores on 1000 other samples.
    run = tmp_path / "run"
    shutil.copytree(smoke_run, run)
    assert run_cli(capsys, "eval", run)[0] == 0
    own = (run / "eval.json").read_text()
    picture = (run / "confusion_matrix.png").read_bytes()
    other = tmp_path / "other.yaml"
    other.write_text(QUICKSTART.read_text())  # the whole test split, not --smoke's 128
    code, out, err = run_cli(capsys, "eval", run / "model.keras", "--config", other, "--json")
    assert code == 0, err
    assert json.loads(out)["test_samples"] > json.loads(own)["test_samples"] == 128
    assert f"note: not saved into {run}: these scores are on {other}'s test data, not the " \
        "run's." in " ".join(err.split())
    assert (run / "eval.json").read_text() == own
    assert (run / "confusion_matrix.png").read_bytes() == picture
    bare = tmp_path / "bare"  # a model file outside any run: its eval.json goes beside it
    bare.mkdir()
    shutil.copy(run / "model.keras", bare / "model.keras")
    assert run_cli(capsys, "eval", bare / "model.keras", "--config", other)[0] == 0
    assert (bare / "eval.json").is_file()
    # ... whatever the file's name: a folder that is no run has no model.keras of its own.
    (bare / "eval.json").unlink()
    shutil.move(bare / "model.keras", bare / "fashion.keras")
    code, _, err = run_cli(capsys, "eval", bare / "fashion.keras", "--config", other)
    assert code == 0, err
    assert sorted(path.name for path in bare.iterdir() if path.suffix == ".json") == ["eval.json"]
    assert "the run's own" not in err


@pytest.mark.slow
def test_eval_names_both_places_it_looked_for_a_missing_model(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, "eval", smoke_run, "--model", "nowhere.keras")
    assert code == 2 and out == ""
    assert err == (f"error: --model nowhere.keras: no such file in the run "
                   f"({smoke_run / 'nowhere.keras'}) or the working directory "
                   f"({tmp_path / 'nowhere.keras'}).\n")


@pytest.mark.slow
def test_runs_marks_a_smoke_fit_as_smoke(smoke_run: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "runs", smoke_run.parent, "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert (row["name"], row["state"], row["kind"]) == (smoke_run.name, "completed", "smoke")
    code, out, err = run_cli(capsys, "runs", smoke_run.parent)
    assert code == 0, err
    assert max(len(line) for line in out.splitlines()) <= 80
    [line] = [line for line in out.splitlines() if smoke_run.name in line]
    cells = line.split()
    assert cells[0] == smoke_run.name
    assert cells[cells.index("completed") + 1] == "smoke"


@pytest.mark.parametrize("kind, children", [("cv", ["fold-0", "fold-1", "refit"]),
                                            ("tune", ["trial-0000", "trial-0001"])])
def test_eval_predict_export_of_a_cv_or_tune_folder_name_the_runs_inside_it(
        kind: str, children: list[str], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / kind
    for child in children:
        (parent / child).mkdir(parents=True)
        (parent / child / "run.json").write_text('{"state": "completed"}')
    (parent / "run.json").write_text(f'{{"state": "completed", "kind": "{kind}"}}')
    (parent / "config.yaml").write_text((CONFIGS / "quickstart.yaml").read_text())
    what = {"cv": "a cross-validation", "tune": "a search"}[kind]
    for command, args, use in [
            ("eval", [], "evaluate one: dltrain eval {run}"),
            ("predict", [parent / "x.png"], "predict with one: dltrain predict {run} FILE..."),
            ("export", ["--format", "tflite"],
             "export one: dltrain export {run} --format FORMAT")]:
        code, out, err = run_cli(capsys, command, parent, *args)
        assert code == 2, out + err
        assert (f"error: {parent}: {what}, whose models are in the runs inside it "
                f"({', '.join(children)}); {use.format(run=parent / children[0])}"
                ) in " ".join(err.split()), command
