"""`dltrain cv`'s bad inputs: each refused with exit 2 and a message, before anything trains."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from conftest import CONFIGS, run_cli, write_yaml
from dltrain.config.load import dump, load_config
from dltrain.runs import records
from dltrain.runs.records import RunState

QUICKSTART = CONFIGS / "quickstart.yaml"


def refused(capsys: pytest.CaptureFixture[str], *args: object) -> str:
    code, out, err = run_cli(capsys, "cv", *args)
    assert code == 2, out + err
    return " ".join(err.split())  # the message, unwrapped


def test_fewer_than_two_folds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    message = refused(capsys, QUICKSTART, "--folds", "1", "--smoke", "--run-dir", tmp_path / "cv")
    assert ("error: --folds must be at least 2: each fold trains on the others and validates "
            "on itself. Received: 1. Try --folds 5.") in message
    assert not (tmp_path / "cv").exists()  # refused before the run directory is made


def test_more_folds_than_the_smallest_class(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    message = refused(capsys, QUICKSTART, "--folds", "40", "--smoke", "--run-dir",
                      tmp_path / "cv")
    # --smoke keeps 256 stratified samples of the 10 classes: 25 or 26 of each.
    assert "error: --folds 40 is more than the 25 training samples of class" in message
    assert ("the smallest class; stratified folds need each class in every fold. Use --folds "
            "25 or fewer, or more training data (dataset.train_limit).") in message
    assert not (tmp_path / "cv").exists()


@pytest.mark.parametrize(("override", "expected"), [
    ("model.input_shape=[28, 28, 3]", "error: model.input_shape is [28, 28, 3] but the data's "
     "samples have shape [28, 28, 1]. Set model.input_shape to match."),
    ("model.layers.4.Dense.units=0", "error: model.layers.4.Dense: Received an invalid value for "
     "`units`, expected a positive integer."),
])
def test_a_model_the_folds_cannot_train_is_refused_before_the_run_directory(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], override: str, expected: str) -> None:
    # It left a parent folder marked failed, which the next try's --run-dir then refused.
    message = refused(capsys, QUICKSTART, "--folds", "2", "--smoke", "--run-dir",
                      tmp_path / "cv", "--set", override)
    assert expected in message
    assert not (tmp_path / "cv").exists()


def test_refit_with_a_validation_monitor(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    config = write_yaml(tmp_path / "stops.yaml", QUICKSTART.read_text() + (
        "  early_stopping: {monitor: val_loss, patience: 2}\n"))
    message = refused(capsys, config, "--refit", "--smoke", "--run-dir", tmp_path / "cv")
    assert (f"error: {config}: --refit trains on all the training data, none held out for "
            "validation, so training.early_stopping.monitor (line 22): must be one of loss, "
            "accuracy. Received: 'val_loss'") in message
    assert "Change the config to monitor training metrics (loss) or drop --refit." in message
    assert not (tmp_path / "cv").exists()


def test_resume_of_a_fit_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(QUICKSTART.read_text())
    assert (f"error: {run}: no cv.json, so it is not a cross-validation to resume. It is a "
            f"fit's run directory: dltrain fit --resume {run}. Start one with: dltrain cv "
            "CONFIG --folds K") in refused(capsys, "--resume", run)


def test_resume_of_a_fold_or_a_search_names_what_goes_on_with_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = cv_parent(tmp_path / "cv", {"folds": 2, "per_fold": []})
    fold = parent / "fold-0"
    fold.mkdir()
    (fold / "config.yaml").write_text(QUICKSTART.read_text())
    assert (f"It is a run of the cross-validation {parent}: dltrain cv --resume {parent}. Start "
            "one with") in refused(capsys, "--resume", fold)
    search = tmp_path / "search"
    search.mkdir()
    records.write(search, RunState(state="interrupted", kind="tune"))
    (search / "config.yaml").write_text(QUICKSTART.read_text())
    assert f"It is a search: dltrain tune --resume {search}. Start one with" in refused(
        capsys, "--resume", search)


def test_resume_of_a_folder_that_is_no_run(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    assert (f"error: {tmp_path}: no cv.json, so it is not a cross-validation to resume. Start "
            "one with: dltrain cv CONFIG --folds K") in refused(capsys, "--resume", tmp_path)


def cv_parent(folder: Path, record: object) -> Path:
    folder.mkdir()
    (folder / "config.yaml").write_text(dump(load_config(QUICKSTART, smoke=True).config))
    (folder / "cv.json").write_text(json.dumps(record))
    return folder


@pytest.mark.parametrize("record", [{"folds": "three"}, [3], {"folds": 3, "per_fold": [{}]}])
def test_resume_of_a_broken_cv_json(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                    record: object) -> None:
    parent = cv_parent(tmp_path / "cv", record)
    assert (f"error: {parent / 'cv.json'}: not the cv.json dltrain writes; start a new "
            "cross-validation with dltrain cv.") in refused(capsys, "--resume", parent)


def test_resume_when_the_data_changed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = cv_parent(tmp_path / "cv", {"folds": 3, "smoke": True, "refit": False,
                                         "per_fold": [], "folds_sha256": "0", "data": "0"})
    assert (f"error: {parent}: the training data or its folds differ from those the finished "
            "folds used (the dataset changed), so their results cannot be combined. Start a "
            "new cross-validation with dltrain cv.") in refused(capsys, "--resume", parent)
    assert not (parent / "fold-0").exists()


@pytest.mark.parametrize("extra", [[QUICKSTART], ["--folds", "3"], ["--smoke"],
                                   ["--set", "seed=1"], ["--run-dir", "elsewhere"],
                                   ["--backend", "jax"]])
def test_resume_takes_nothing_the_cv_already_fixed(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], extra: list[object]) -> None:
    assert ("error: --resume finishes the cross-validation with its own config and folds; drop "
            "CONFIG, --folds, --set, --backend, --smoke and --run-dir.") in refused(
        capsys, "--resume", tmp_path, *extra)


def test_neither_config_nor_resume(capsys: pytest.CaptureFixture[str]) -> None:
    assert "error: cv needs a CONFIG file, or --resume PARENT_RUN_DIR." in refused(capsys)


def test_an_existing_run_dir_is_not_overwritten(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "cv").mkdir()
    (tmp_path / "cv" / "notes.txt").write_text("mine")
    assert (f"error: --run-dir {tmp_path / 'cv'} already exists and is not empty; choose a new "
            "folder so no earlier run is overwritten.") in refused(
        capsys, QUICKSTART, "--folds", "2", "--smoke", "--run-dir", tmp_path / "cv")


def test_an_existing_cross_validation_as_run_dir_names_cv_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Its hint said "To finish the run in it, dltrain fit --resume", which fit refuses.
    cv_parent(tmp_path / "cv", {"folds": 3, "per_fold": []})
    message = refused(capsys, QUICKSTART, "--folds", "2", "--smoke", "--run-dir", tmp_path / "cv")
    assert message.endswith(f"It holds a cross-validation: dltrain cv --resume {tmp_path / 'cv'}.")
    assert "fit --resume" not in message


def test_fit_resume_of_the_cross_validation_itself_points_to_cv_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """It once trained a fit into the parent folder, beside the folds: the parent's config.yaml
    is the cross-validation's, and fit took it for a run's."""
    parent = cv_parent(tmp_path / "cv", {"folds": 2, "per_fold": []})
    records.write(parent, RunState(state="completed"))
    before = sorted(path.name for path in parent.iterdir())
    code, out, err = run_cli(capsys, "fit", "--resume", parent, "--epochs", "2")
    assert code == 2, out + err
    assert (f"error: {parent}: a cross-validation, not a fit's run; go on with: dltrain cv "
            f"--resume {parent}") in " ".join(err.split())
    assert sorted(path.name for path in parent.iterdir()) == before


def test_fit_resume_of_a_fold_points_to_cv_resume(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    parent = cv_parent(tmp_path / "cv", {"folds": 3, "per_fold": []})
    fold = parent / "fold-1"
    fold.mkdir()
    (fold / "config.yaml").write_text((parent / "config.yaml").read_text())
    code, out, err = run_cli(capsys, "fit", "--resume", fold)
    assert code == 2, out + err
    assert (f"error: {fold}: a run of the cross-validation {parent}; finish it with: dltrain "
            f"cv --resume {parent}") in " ".join(err.split())
