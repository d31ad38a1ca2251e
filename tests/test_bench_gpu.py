"""The GPU benchmark's wiring, in its dry mode on the CPU: the one prepared GPU call must not be
the first time its steps run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="needs JAX (pip install -e '.[jax]')")]


def test_dry_run_measures_the_classic_convnet_side_by_side(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu" / "bench.py"),
                           str(tmp_path / "out"), "--dry", "--only", "classic"],
                          capture_output=True, text=True, timeout=400, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    classic = results["classic"]
    assert results["backend"] == "jax" and results["dry"] is True
    assert len(classic["script_epochs"]) == len(classic["dltrain_epochs"]) == 2
    assert classic["ratio"] == round(classic["dltrain_steady_s"] / classic["script_steady_s"], 3)
    assert "classic convnet, steady epoch" in (tmp_path / "out" / "results.md").read_text()
