"""Run folders tampered with by hand or by someone hostile: links planted where dltrain writes,
absurd or mistyped values in the files it reads back. Each is refused with exit 2 and a message
naming the file (and key), and nothing outside the run is written."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import test_report_export

from conftest import run_cli
from dltrain.errors import RunError
from dltrain.report import export
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


def image(tmp_path: Path) -> Path:
    """A 28x28 grayscale PNG, the quickstart model's input."""
    import tensorflow as tf

    path = tmp_path / "item.png"
    pixels = np.arange(28 * 28, dtype=np.uint8).reshape(28, 28, 1)
    path.write_bytes(tf.io.encode_png(pixels).numpy())
    return path


def tamper(run: Path, name: str, change: dict[str, Any] | str) -> Path:
    """`change` merged into the run file (a dict), or the file's whole text (a str: JSON that
    Python's own writer allows, Infinity and NaN included)."""
    path = run / name
    if isinstance(change, dict):
        change = json.dumps({**json.loads(path.read_text()), **change})
    path.write_text(change)
    return path


SQUARE = [[[0.5]] * 28] * 28  # a mean or std of the quickstart sample's shape, 28x28x1
ABSURD_PREPARATION = [
    ("rescale", '{"rescale": Infinity, "num_classes": 10}'),
    ("rescale", '{"rescale": NaN, "num_classes": 10}'),
    ("rescale", {"rescale": 0}),
    ("rescale", {"rescale": -0.00392}),
    ("rescale", {"rescale": "1/255"}),
    ("rescale", {"rescale": True}),
    ("mean", {"mean": [0.5, 0.5, 0.5], "std": [0.2, 0.2, 0.2]}),
    ("std", {"mean": SQUARE, "std": [[[0.0]] * 28] * 28}),
    ("std", {"mean": SQUARE, "std": [[[-1.0]] * 28] * 28}),
    ("mean", {"mean": [[["x"]] * 28] * 28, "std": SQUARE}),
    ("std", {"mean": SQUARE}),
    ("class_names", {"class_names": ["cat", "dog", "frog"]}),
    ("class_names", {"class_names": "T-shirt/top"}),
    ("num_classes", {"num_classes": 12, "class_names": [str(i) for i in range(12)]}),
    ("num_classes", {"num_classes": "10"}),
    ("flatten_from", {"flatten_from": [28, -28]}),
    ("input_shape", {"input_shape": "28x28"}),
    ("feature_names", {"feature_names": ["pixel"]}),
]


@pytest.mark.parametrize(("key", "change"), ABSURD_PREPARATION)
def test_predict_refuses_an_absurd_preprocessing_json_naming_the_key(
        run: Path, tmp_path: Path, key: str, change: dict[str, Any] | str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # A rescale of NaN gave NaN probabilities; 3 class names for 10 outputs were dropped for
    # numbers without a word; a list for the file was an internal error.
    path = tamper(run, "preprocessing.json", change)
    code, out, err = run_cli(capsys, "predict", run, image(tmp_path), "--json")
    message = " ".join(err.split())
    assert code == 2, out
    assert f"error: {path}: {key} must be " in message and "Received: " in message
    assert "fit the run again" in message and "Traceback" not in err


@pytest.mark.parametrize("text", ["[]", '"rescale"', "3", "null"])
def test_a_preprocessing_json_that_is_no_object_is_named(run: Path, tmp_path: Path, text: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    path = tamper(run, "preprocessing.json", text)
    code, _, err = run_cli(capsys, "predict", run, image(tmp_path))
    assert code == 2
    message = " ".join(err.split())
    assert f"error: {path}: holds " in message and "not the JSON object" in message


@pytest.mark.parametrize(("key", "change"), [ABSURD_PREPARATION[2], ABSURD_PREPARATION[1],
                                             ABSURD_PREPARATION[11]])
def test_export_refuses_an_absurd_preprocessing_json_and_exports_nothing(
        run: Path, key: str, change: dict[str, Any] | str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # A rescale of 0 made every input 0: the export and Keras agreed, "parity passed", at chance.
    path = tamper(run, "preprocessing.json", change)
    code, _, err = run_cli(capsys, "export", run, "--format", "saved_model")
    assert code == 2
    assert f"error: {path}: {key} must be " in " ".join(err.split()) and "Traceback" not in err
    assert not (run / "model_saved_model").exists() and not (run / "export.json").exists()


def test_parity_cannot_pass_on_outputs_that_are_not_finite() -> None:
    # NaN compares false with everything, so no difference was "over the tolerance" either.
    nan = np.full((4, 3), np.nan)
    for reference, got in [(nan, nan), (np.zeros((4, 3)), nan), (nan, np.zeros((4, 3)))]:
        result = export.compare(reference, got, np.zeros(4, np.int64), 1e-4)
        assert result["passed"] is False
        assert "not finite" in result["problem"]


NOT_OBJECTS = ["[]", '"completed"', "3", "null", "true"]
WRONG_STATE = ['{"state": ["completed"]}', '{"state": "completed", "kind": 7}']


@pytest.mark.parametrize("command", ["eval", "predict", "export"])
@pytest.mark.parametrize("text", NOT_OBJECTS + WRONG_STATE)
def test_a_run_json_of_another_type_is_named_by_the_commands_that_read_it(
        run: Path, tmp_path: Path, command: str, text: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # A list, a string or a number was an internal error (AttributeError: .get).
    path = tamper(run, "run.json", text)
    extra = {"eval": [], "predict": [image(tmp_path)], "export": ["--format", "saved_model"]}
    code, _, err = run_cli(capsys, command, run, *extra[command])
    message = " ".join(err.split())
    assert code == 2, err
    assert f"error: {path}: " in message and "dltrain writes" in message
    assert "Traceback" not in err


RESUMED_FILES = [("run.json", text) for text in NOT_OBJECTS[:3] + WRONG_STATE[:1]] + [
    ("manifest.json", text) for text in NOT_OBJECTS[:3]] + [
    ("manifest.json", '{"config_sha256": 12, "data": {}}'),
    ("manifest.json", '{"config_sha256": null, "data": [1, 2]}'),
    ("environment.json", "[]"), ("environment.json", '{"resumed": "yesterday"}'),
    ("history.csv", "loss,accuracy\n2.0,0.1\n"), ("history.csv", "[1, 2, 3]\n")]


@pytest.mark.parametrize(("name", "text"), RESUMED_FILES)
def test_resume_names_a_run_file_of_another_type_and_trains_nothing(
        run: Path, name: str, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tamper(run, name, text)
    model = (run / "last.keras").stat().st_mtime_ns
    code, _, err = run_cli(capsys, "fit", "--resume", run, "--epochs", "2")
    assert code == 2, err
    assert f"error: {path}: " in " ".join(err.split()) and "Traceback" not in err
    assert (run / "last.keras").stat().st_mtime_ns == model
    assert path.read_text() == text


LISTED_FILES = [("run.json", text) for text in NOT_OBJECTS + WRONG_STATE[:1]] + [
    ("metrics.json", text) for text in ["[]", '"x"', '{"test": [0.5]}', '{"regression": 3}']] + [
    ("environment.json", "[1]"), ("history.csv", "loss\n0.5\n")]


@pytest.mark.parametrize(("name", "text"), LISTED_FILES)
def test_runs_lists_a_run_with_a_file_of_another_type_as_corrupt(
        run: Path, name: str, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tamper(run, name, text)
    code, out, err = run_cli(capsys, "runs", run.parent, "--json")
    assert code == 0, err
    [row] = json.loads(out)
    assert row["state"] == "corrupt" and row["unreadable"] == str(path)


@pytest.mark.parametrize("text", ["[]", '"x"', '{"test": [0.5]}', '{"test": {"loss": "low"}}',
                                  '{"regression": [1]}'])
def test_compare_names_a_metrics_json_of_another_type(
        run: Path, trained: Path, text: str, capsys: pytest.CaptureFixture[str]) -> None:
    path = tamper(run, "metrics.json", text)
    code, _, err = run_cli(capsys, "compare", trained, run)
    assert code == 2, err
    assert f"error: {path}: " in " ".join(err.split()) and "Traceback" not in err


ARCHITECTURES = [  # (where in model.layers, the layer there instead, the layer named)
    (3, {"Dense": {"units": 32, "activation": "relu"}}, "layer 4 (Dense)"),
    (0, {"Conv2D": {"filters": 16, "kernel_size": 3, "activation": "relu"}}, "layer 1 (Conv2D)"),
    (3, {"Dense": {"units": 64, "activation": "tanh"}}, "layer 4 (Dense)"),
    (1, {"AveragePooling2D": {"pool_size": 2}}, "layer 2 (AveragePooling2D)"),
    (None, {"Dense": {"units": 64, "activation": "relu"}}, "layer 5 (Dense)"),
]


@pytest.mark.parametrize(("index", "layer", "named"), ARCHITECTURES)
def test_resume_refuses_a_config_yaml_edited_with_its_hash_whose_model_is_not_last_keras(
        run: Path, index: int | None, layer: dict[str, Any], named: str,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Editing config.yaml and manifest.json's sha256 together resumed last.keras's own model
    # under a config that described another.
    import hashlib

    import yaml

    config = run / "config.yaml"
    data = yaml.safe_load(config.read_text())
    if index is None:  # one layer more, after Flatten
        data["model"]["layers"].insert(3, layer)
    else:
        data["model"]["layers"][index] = layer
    config.write_text(yaml.safe_dump(data, sort_keys=False))
    tamper(run, "manifest.json", {"config_sha256": hashlib.sha256(config.read_bytes()).hexdigest()})
    model = (run / "last.keras").stat().st_mtime_ns
    code, _, err = run_cli(capsys, "fit", "--resume", run, "--epochs", "2")
    message = " ".join(err.split())
    assert code == 2, err
    assert f"error: {config}: " in message and named in message and "last.keras" in message
    assert "Traceback" not in err
    assert (run / "last.keras").stat().st_mtime_ns == model
