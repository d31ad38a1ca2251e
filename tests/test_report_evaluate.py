"""Loading a saved model for eval, predict and export: what Keras itself would fail on."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dltrain.errors import RunError
from dltrain.report.evaluate import load_model

# What Keras 3.15 writes for the optimizer of a model compiled on the torch backend: torch's own
# Adam subclass, which has no public name and imports torch.
TORCH_ADAM = {"module": "keras.src.backend.torch.optimizers.torch_adam", "class_name": "Adam",
              "registered_name": "Adam"}


def saved_model(path: Path, optimizer: dict[str, Any] | None = None,
                compiled: dict[str, Any] | None = None) -> Path:
    """A small compiled model saved to `path`, its optimizer entry and then its compile config
    changed as given."""
    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.005), loss="sparse_categorical_crossentropy")
    model.fit(np.ones((8, 4)), np.zeros(8), epochs=1, verbose=0)
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        files = {name: archive.read(name) for name in archive.namelist()}
    config = json.loads(files["config.json"])
    config["compile_config"]["optimizer"].update(optimizer or {})
    config["compile_config"].update(compiled or {})
    files["config.json"] = json.dumps(config).encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_a_model_trained_on_torch_loads_on_another_backend(tmp_path: Path) -> None:
    model = load_model(saved_model(tmp_path / "model.keras", TORCH_ADAM))
    assert type(model.optimizer).__name__ == "Adam"
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    assert model.predict(np.ones((2, 4)), verbose=0).shape == (2, 3)


def test_a_model_compiles_for_scoring_as_its_run_says_on_this_backend(tmp_path: Path) -> None:
    """A .keras file holds what jit_compile auto became where it was saved (JAX: True). Loaded
    on torch, every step of a JAX-trained model's eval went through torch.compile: 17 s to
    score 100 images instead of 0.4 s. Here, where auto is what Keras makes of it (no XLA
    with TensorFlow on a CPU)."""
    import keras

    fresh = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    fresh.compile(optimizer="adam", loss="mse", jit_compile="auto")
    if fresh.jit_compile:
        pytest.skip(f"auto is XLA on {keras.backend.backend()} here, as in the file")
    path = saved_model(tmp_path / "model.keras", compiled={"jit_compile": True})
    assert load_model(path).jit_compile is True  # the file's own, as a resume keeps it
    model = load_model(path, "auto")
    assert model.jit_compile is False
    assert int(model.optimizer.iterations) == 1  # the optimizer as loaded, its step kept
    assert float(model.optimizer.learning_rate) == pytest.approx(0.005)
    assert model.loss == "sparse_categorical_crossentropy"
    scores = model.evaluate(np.ones((8, 4)), np.zeros(8), verbose=0, return_dict=True)
    assert set(scores) == {"loss"} and np.isfinite(scores["loss"])
    assert load_model(path, True).jit_compile is True  # a run's explicit choice is kept


def test_a_model_file_keras_cannot_read_back_is_named(tmp_path: Path) -> None:
    path = saved_model(tmp_path / "model.keras", {"module": "keras.src.nowhere",
                                                   "class_name": "Nothing",
                                                   "registered_name": "Nothing"})
    with pytest.raises(RunError) as caught:
        load_model(path)
    assert str(caught.value).startswith(f"{path}: refused or unreadable model file: ")
    assert "Nothing" in str(caught.value)


def test_a_truncated_model_file_is_called_so_with_the_runs_other_models(tmp_path: Path) -> None:
    # Keras said "File not found: filepath=...model.keras" of a file that is there.
    whole = saved_model(tmp_path / "best.keras", TORCH_ADAM)
    (tmp_path / "model.keras").write_bytes(whole.read_bytes()[:1000])
    with pytest.raises(RunError) as caught:
        load_model(tmp_path / "model.keras")
    assert str(caught.value) == (
        f"{tmp_path / 'model.keras'}: not a whole .keras file (a zip archive): truncated or "
        "damaged. Its other model files: best.keras (dltrain eval and export take one with "
        "--model best.keras).")
    with pytest.raises(RunError) as caught:
        load_model(tmp_path / "last.keras")
    assert str(caught.value).startswith(f"{tmp_path / 'last.keras'}: no such model file. Its ")
