"""Hostile input at the command line and in its environment: a wrong KERAS_BACKEND, huge values,
files that are no regular files, control characters, unwritable targets, a terminal that cannot
show a name. Each is exit 2 (or a clean 0) with a message naming what to fix, promptly, with no
traceback and nothing written where it was not asked for."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONFIGS, ROOT, run_cli, write_yaml

QUICKSTART = CONFIGS / "quickstart.yaml"
LONG = "x" * 100_000


def one_line(text: str) -> str:
    return " ".join(text.split())


def dltrain(*args: str | bytes, cwd: Path, env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess[bytes]:
    """`python -m dltrain ARGS` in a subprocess; bytes in and out (a name may not decode)."""
    return subprocess.run([sys.executable, "-m", "dltrain", *args], cwd=cwd, capture_output=True,
                          env={**os.environ, "CI": "true", **(env or {})}, timeout=timeout)


# --- KERAS_BACKEND -------------------------------------------------------------------------------

@pytest.mark.parametrize("value", ["tensorflw", "", "numpy", "TensorFlow", " jax"])
@pytest.mark.parametrize("command", [["show", str(QUICKSTART), "--no-summary"],
                                     ["fit", str(QUICKSTART), "--smoke"],
                                     ["eval", "no-such-run"]])
def test_an_invalid_keras_backend_variable_is_named_with_the_valid_names(
        value: str, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", value)
    monkeypatch.chdir(tmp_path)
    code, out, err = run_cli(capsys, *command)
    message = one_line(err)
    print(message)
    assert code == 2, message
    assert "KERAS_BACKEND" in message and repr(value) in message
    assert "tensorflow, jax or torch" in message
    assert "Traceback" not in err and "internal error" not in message
    assert list(tmp_path.iterdir()) == []  # no run begun


def test_a_valid_keras_backend_variable_or_none_is_accepted(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")
    assert run_cli(capsys, "show", QUICKSTART, "--no-summary")[0] == 0
    monkeypatch.delenv("KERAS_BACKEND")
    assert run_cli(capsys, "show", QUICKSTART, "--no-summary")[0] == 0
