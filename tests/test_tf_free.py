"""dltrain in an environment without TensorFlow (`make tf-free-env`): fit and eval on JAX.

Skipped, with the reason, where that environment has not been made. DLTRAIN_TF_FREE_VENV
points at it elsewhere than .venv-tf-free in the repository.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from cli_batch import run_several

from conftest import CONFIGS, ROOT

VENV = Path(os.environ.get("DLTRAIN_TF_FREE_VENV") or ROOT / ".venv-tf-free")
PYTHON = VENV / "bin" / "python"
# Runs the CLI, then says on the last line of stderr whether TensorFlow was ever imported.
WRAPPER = """
import atexit, sys
atexit.register(lambda: print("tensorflow imported:", "tensorflow" in sys.modules, file=sys.stderr))
from dltrain.cli import main
sys.exit(main())
"""
# Before several commands in one process (cli_batch): at exit, whether TensorFlow was imported.
PRELUDE = """
import atexit, sys
atexit.register(lambda: open("tensorflow-imported", "w").write(str("tensorflow" in sys.modules)))
"""

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not PYTHON.is_file(), reason=f"no TensorFlow-free environment at {VENV}; make tf-free-env")]


def environment(tmp_path: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if key not in ("KERAS_BACKEND", "PYTHONPATH", "VIRTUAL_ENV")}
    return {**env, "CI": "1", "DLTRAIN_JAX_CACHE": str(tmp_path / "cache")}


def dltrain(tmp_path: Path, *args: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([str(PYTHON), "-c", WRAPPER, *map(str, args)], capture_output=True,
                          text=True, timeout=400, cwd=tmp_path, env=environment(tmp_path))
    assert done.stderr.splitlines()[-1] == "tensorflow imported: False", done.stderr
    return done


def test_the_environment_has_no_tensorflow(tmp_path: Path) -> None:
    done = subprocess.run([str(PYTHON), "-c", "import importlib.util as u, dltrain; "
                           "print(u.find_spec('tensorflow'), dltrain.__file__)"],
                          capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert done.stdout.split()[0] == "None", done.stdout + done.stderr
    assert done.stdout.split()[1].startswith(str(ROOT)), "the venv should hold this checkout (-e)"


def test_fit_eval_and_predict_on_jax_never_import_tensorflow(tmp_path: Path) -> None:
    from PIL import Image

    Image.new("L", (40, 40), 200).save(tmp_path / "grey.png")  # decoded and resized by Pillow
    run = tmp_path / "run"
    # One process runs the three commands: at its end, TensorFlow was never imported.
    fit, evaluated, predicted = run_several(tmp_path / "commands", [
        ["fit", CONFIGS / "quickstart.yaml", "--backend", "jax", "--run-dir", run, "--epochs",
         "1", "--set", "dataset.train_limit=600", "--set", "dataset.test_limit=100", "--json"],
        ["eval", run, "--json"], ["predict", run, tmp_path / "grey.png", "--json"]],
        environment(tmp_path), 400, PRELUDE, str(PYTHON))
    assert (tmp_path / "commands" / "tensorflow-imported").read_text() == "False"
    assert fit.returncode == 0, fit.stderr
    assert "no TensorBoard logs on the jax backend without TensorFlow" in " ".join(
        fit.stdout.split() + fit.stderr.split())
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["test"]["accuracy"] == pytest.approx(
        metrics["test"]["accuracy"], abs=0.001)
    env = json.loads((tmp_path / "run" / "environment.json").read_text())
    assert env["backend"] == "jax" and "tensorflow" not in env
    # JAX's persistent compilation cache is on, where DLTRAIN_JAX_CACHE says, and was filled.
    assert env["jax_compilation_cache"] == str(tmp_path / "cache")
    assert any((tmp_path / "cache").iterdir())
    assert predicted.returncode == 0, predicted.stderr
    assert len(json.loads(predicted.stdout)[0]["top"]) == 3


def test_a_tensorflow_run_without_tensorflow_says_what_to_install(tmp_path: Path) -> None:
    done = dltrain(tmp_path, "fit", CONFIGS / "quickstart.yaml", "--backend", "tensorflow")
    assert done.returncode == 2
    assert ('backend tensorflow: the tensorflow package is not installed here. Install it with: '
            'pip install "tensorflow>=2.21,<2.22"') in " ".join(done.stderr.split())
