"""`dltrain tune`'s command: what it does before the search starts."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow  # a process that imports Keras
def test_resume_chooses_the_search_s_backend_before_keras_is_imported() -> None:
    # search.tune imports Keras: imported before use_backend, it pinned TensorFlow and a JAX
    # search could not be resumed ("Keras is already loaded on the tensorflow backend").
    code = """
import sys
from pathlib import Path
from types import SimpleNamespace
import dltrain.backend, dltrain.config.load, dltrain.search.results
seen = []
dltrain.backend.use_backend = lambda name, device="auto": seen.append((name, "keras" in sys.modules))
dltrain.search.results.search_state = lambda *args: None
dltrain.config.load.load_config = lambda path: SimpleNamespace(config=SimpleNamespace(backend="jax"))
from dltrain.cli import tuning
try:
    tuning._resume(Path("no-such-search"), None, None, "auto", None)
except Exception:
    pass  # the stubbed search has no study: only the order is checked here
print(seen)
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[('jax', False)]"
