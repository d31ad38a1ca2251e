"""Keras is imported without the optional packages it would load for features dltrain never
calls (scikit-learn, pandas, matplotlib, JAX and TensorFlow off their backends), and each still
imports afterwards."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONFIGS
from dltrain.backend import lean_import
from dltrain.backend.lean_import import unused_imports_refused

# A fresh process (pytest's has them all loaded): Keras on TensorFlow through keras_module, a
# classification and a regression report, then what was loaded; then each imports as usual.
PROBE = """
import json, sys
import numpy as np
from dltrain.backend import keras_module
from dltrain.tasks.classification_report import classification_report
from dltrain.tasks.regression_report import regression_report
keras = keras_module()
classification_report(np.array([0, 1, 2, 1]), np.eye(3)[[0, 1, 1, 1]], None)
regression_report(np.array([1.0, 2.0, 4.0]), np.array([1.5, 2.0, 3.0]), ["y"])
loaded = sorted(name for name in ("sklearn", "scipy", "pandas", "matplotlib", "jax")
                if name in sys.modules)
import sklearn.metrics, pandas, matplotlib.pyplot
print(json.dumps({"backend": keras.backend.backend(), "loaded": loaded,
                  "later": [pandas.__name__, sklearn.metrics.__name__]}))
"""


@pytest.mark.slow
def test_keras_on_tensorflow_loads_none_of_them_and_each_imports_later(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path,
                          env={**os.environ, "KERAS_BACKEND": "tensorflow"})
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # SciPy: TensorFlow's own import still loads it, where it is installed.
    assert found["backend"] == "tensorflow"
    assert set(found["loaded"]) <= {"scipy"}, found
    assert found["later"] == ["pandas", "sklearn.metrics"]


# Two fits on JAX in one process: without TensorBoard, then with it (it writes through tf.summary).
JAX_PROBE = """
import json, sys
from dltrain.cli import main
args = ["fit", sys.argv[1], "--backend", "jax", "--epochs", "1", "--set", "dataset.train_limit=64",
        "--set", "dataset.test_limit=32"]
plain = main([*args, "--run-dir", "plain", "--set", "training.tensorboard=false"])
before = "tensorflow" in sys.modules
logged = main([*args, "--run-dir", "logged"])
print(json.dumps({"codes": [plain, logged], "before": before,
                  "after": "tensorflow" in sys.modules}))
"""


@pytest.mark.slow
def test_a_jax_fit_imports_tensorflow_only_to_write_tensorboard_logs(tmp_path: Path) -> None:
    # Keras imported TensorFlow on JAX wherever it was installed (to seed it, to recognise its
    # tensors): 2.5 CPU-s of each command's start-up.
    pytest.importorskip("tensorflow")
    pytest.importorskip("jax")
    done = subprocess.run([sys.executable, "-c", JAX_PROBE, str(CONFIGS / "quickstart.yaml")],
                          capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "CI": "1"})
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    assert found == {"codes": [0, 0], "before": False, "after": True}, done.stderr[-3000:]
    assert list((tmp_path / "logged" / "tensorboard").rglob("events.out.tfevents.*"))
    assert not (tmp_path / "plain" / "tensorboard").exists()


@pytest.fixture
def unloaded(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Two small standard modules in place of UNUSED, not loaded."""
    names = ["wave", "colorsys"]
    for name in names:
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(lean_import, "UNUSED", tuple(names))
    return names


def test_an_unused_module_is_refused_inside_the_block_only(unloaded: list[str]) -> None:
    with unused_imports_refused("tensorflow"):
        for name in unloaded:
            with pytest.raises(ImportError):
                importlib.import_module(name)
    assert [importlib.import_module(name).__name__ for name in unloaded] == unloaded


def test_the_backend_itself_and_a_module_already_loaded_are_not_refused(
        unloaded: list[str]) -> None:
    import colorsys  # loaded before the block

    with unused_imports_refused("wave"):  # as JAX when it is the backend
        assert importlib.import_module("wave").__name__ == "wave"
        assert importlib.import_module("colorsys") is colorsys
