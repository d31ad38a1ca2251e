"""Files written whole or not at all; a checkpoint's second name shares its content."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

from dltrain.errors import RunError
from dltrain.runs.files import copy_file, read_history, read_json, write_atomic


def test_a_copy_is_a_second_name_that_keeps_its_content_when_the_source_is_replaced(
        tmp_path: Path) -> None:
    last, best = tmp_path / "last.keras", tmp_path / "best.keras"
    write_atomic(last, "epoch 3")
    copy_file(last, best)
    assert best.stat().st_ino == last.stat().st_ino  # nothing written: one file, two names
    write_atomic(last, "epoch 4")  # the next checkpoint is a new file renamed over the name
    assert best.read_text() == "epoch 3" and last.read_text() == "epoch 4"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]


def test_copying_onto_a_name_of_the_same_file_leaves_no_temporary_file(tmp_path: Path) -> None:
    """rename(2) of one name of a file over another name of it does nothing: the temporary
    name would stay behind if it were not removed."""
    last, best = tmp_path / "last.keras", tmp_path / "best.keras"
    write_atomic(last, "epoch 3")
    copy_file(last, best)
    copy_file(last, best)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]
    assert best.read_text() == "epoch 3"


def test_without_hard_links_the_content_is_copied(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(source: object, target: object) -> None:
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "link", refuse)
    last, best = tmp_path / "last.keras", tmp_path / "best.keras"
    write_atomic(last, "epoch 3")
    copy_file(last, best)
    assert best.read_text() == "epoch 3" and best.stat().st_ino != last.stat().st_ino
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]


# --- run files damaged on disk (a fault in the machine, not in a config) ----------------------

GARBAGE = bytes(range(128, 256)) * 2  # not UTF-8 from its first byte


def test_a_json_file_of_binary_garbage_is_named_as_not_json(tmp_path: Path) -> None:
    path = tmp_path / "run.json"
    path.write_bytes(GARBAGE)
    with pytest.raises(RunError) as caught:
        read_json(path)
    assert str(caught.value).startswith(f"{path}: not valid JSON (")


def test_a_history_of_binary_garbage_is_not_a_history(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_bytes(b"epoch,loss,seconds\n" + GARBAGE)
    with pytest.raises(RunError) as caught:
        read_history(path)
    assert str(caught.value) == f"{path}: not a history written by dltrain."


def test_a_history_with_a_field_over_the_csv_limit_is_not_a_history(tmp_path: Path) -> None:
    path = tmp_path / "history.csv"
    path.write_text('epoch,loss,seconds\n1,"' + "9" * 200_000 + '",1.0\n')
    with pytest.raises(RunError) as caught:
        read_history(path)
    assert str(caught.value) == f"{path}: not a history written by dltrain."


def test_a_saved_model_runs_one_step_per_execution_on_any_backend(tmp_path: Path) -> None:
    """Keras's torch trainer refuses steps_per_execution above 1 when a model is used, and a
    .keras file compiles as saved: the file says 1, the live model keeps its own number."""
    import json
    import zipfile

    import keras

    from dltrain.runs.files import save_model

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    model.compile(optimizer="adam", loss="mse", steps_per_execution=8)
    save_model(model, tmp_path / "model.keras")
    with zipfile.ZipFile(tmp_path / "model.keras") as archive:
        saved = json.loads(archive.read("config.json"))
    assert saved["compile_config"]["steps_per_execution"] == 1
    assert model.steps_per_execution == 8
    assert model.get_compile_config()["steps_per_execution"] == 8
