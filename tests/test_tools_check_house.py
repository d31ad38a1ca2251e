"""The house lint: module and function sizes, run file names and backend names in one place."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from conftest import ROOT

spec = importlib.util.spec_from_file_location("check_house", ROOT / "tools" / "check_house.py")
check_house = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(check_house)  # type: ignore[union-attr]

RUNS = {"runs/__init__.py": "", "runs/layout.py": 'METRICS_FILE = "metrics.json"\n'}


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "dltrain"
    for name, text in {"__init__.py": "", **RUNS, **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_dltrain_keeps_its_house_rules() -> None:
    assert check_house.check() == []


def test_a_long_module_and_a_long_function_are_found(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(61))
    root = package(tmp_path, {"report/__init__.py": "",
                              "report/big.py": 'def f():\n    """Doc."""\n' + body
                              + "\n" * 340})
    assert check_house.check(root) == [
        "dltrain/report/big.py: 403 lines, over 400: split it by concern.",
        "dltrain/report/big.py:1: f's body is 61 lines, over 60."]


def test_a_function_of_sixty_lines_after_its_docstring_passes(tmp_path: Path) -> None:
    body = "".join(f"    x{i} = {i}\n" for i in range(60))
    root = package(tmp_path, {"report/ok.py": 'def f():\n    """Doc."""\n' + body})
    assert check_house.check(root) == []


def test_a_run_file_name_outside_runs_is_found(tmp_path: Path) -> None:
    root = package(tmp_path, {"report/read.py": 'NAME = "metrics.json"\n',
                              "runs/other.py": 'USE = "metrics.json"\n'})
    assert check_house.check(root) == [
        "dltrain/report/read.py:1: spells the run file name 'metrics.json'; ask dltrain.runs "
        "for it."]


def test_a_backend_name_compared_outside_backend_is_found(tmp_path: Path) -> None:
    root = package(tmp_path, {"train/fit.py": 'def f(b):\n    return b in ("jax", "torch")\n',
                              "backend/ok.py": 'def g(b):\n    return b == "jax"\n',
                              "data/ok.py": 'NAMES = {"jax": "JAX"}\n'})
    assert check_house.check(root) == [
        "dltrain/train/fit.py:2: compares a backend name (jax, torch); ask dltrain.backend what "
        "it can do."]
