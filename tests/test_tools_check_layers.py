"""The layering lint: the package passes it, and each kind of violation is caught."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("check_layers", ROOT / "tools" / "check_layers.py")
check_layers = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(check_layers)  # type: ignore[union-attr]


def package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "dltrain"
    for name, text in {"__init__.py": "", **files}.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_dltrain_follows_its_own_layers() -> None:
    assert check_layers.check() == []


def test_a_cycle_between_readers_is_found(tmp_path: Path) -> None:
    # The shape the flat package had: sources -> tabular -> sources.
    root = package(tmp_path, {"data/__init__.py": "",
                              "data/sources.py": "def read():\n    from dltrain.data import tabular\n",
                              "data/tabular.py": "from dltrain.data.sources import read\n"})
    problems = check_layers.check(root)
    assert problems == ["import cycle: dltrain.data.sources -> dltrain.data.tabular -> "
                        "dltrain.data.sources"]


def test_an_import_of_a_later_stage_is_found_even_inside_a_function(tmp_path: Path) -> None:
    root = package(tmp_path, {"data/__init__.py": "", "model/__init__.py": "",
                              "model/build.py": "X = 1\n",
                              "data/augment.py": "def f():\n    from dltrain.model.build import X\n"})
    problems = check_layers.check(root)
    assert len(problems) == 1
    assert "dltrain.data.augment (stage data) imports dltrain.model.build, a later stage" in problems[0]


def test_tensorflow_outside_the_backend_seam_is_found(tmp_path: Path) -> None:
    root = package(tmp_path, {"backend.py": "import tensorflow\n",
                              "report.py": "def f():\n    import tensorflow as tf\n"})
    problems = check_layers.check(root)
    assert len(problems) == 1 and problems[0].startswith("dltrain/report.py:2: imports tensorflow")


def test_any_module_of_the_backend_package_may_import_a_framework(tmp_path: Path) -> None:
    root = package(tmp_path, {"backend/__init__.py": "import keras\n",
                              "backend/distribution.py": "def f():\n    import jax\n",
                              "backendish.py": "import jax\n"})
    problems = check_layers.check(root)
    assert len(problems) == 1 and problems[0].startswith("dltrain/backendish.py:1: imports jax")


def test_the_package_main_is_the_command_line_stage(tmp_path: Path) -> None:
    """`python -m dltrain` runs the CLI: dltrain/__main__.py may import it; the package's other
    top-level modules (errors, console) still may not."""
    root = package(tmp_path, {"cli/__init__.py": "X = 1\n",
                              "__main__.py": "from dltrain.cli import X\n",
                              "console.py": "from dltrain.cli import X\n"})
    assert check_layers.check(root) == [
        "dltrain/console.py:1: dltrain.console (stage dltrain) imports dltrain.cli, a later stage "
        "(cli)."]


def test_tasks_come_before_config_which_may_ask_them(tmp_path: Path) -> None:
    """The tasks see no config (their methods take plain values); config asks the tasks."""
    root = package(tmp_path, {"tasks/__init__.py": "", "config/__init__.py": "",
                              "tasks/base.py": "from dltrain.errors import X\n",
                              "errors.py": "X = 1\n",
                              "tasks/regression.py": "from dltrain.config.schema import Config\n",
                              "config/schema.py": "from dltrain.tasks.base import X\n"})
    problems = check_layers.check(root)
    assert len(problems) == 1, problems
    assert problems[0].startswith("dltrain/tasks/regression.py:1: dltrain.tasks.regression "
                                  "(stage tasks) imports dltrain.config.schema, a later stage "
                                  "(config).")


@pytest.mark.parametrize(("stage", "names", "sibling"), [
    ("backend", "BACKENDS = ('tensorflow',)\n", "runtime"),  # the config validates backend:
    ("runs", "CONFIG_FILE = 'config.yaml'\n", "layout"),  # ... and names a run's config.yaml
])
def test_only_a_shared_names_module_may_be_imported_by_an_earlier_stage(
        tmp_path: Path, stage: str, names: str, sibling: str) -> None:
    name = names.split(" ")[0]
    root = package(tmp_path, {"config/__init__.py": "", f"{stage}/__init__.py": "",
                              f"{stage}/names.py": names, f"{stage}/{sibling}.py": "X = 1\n",
                              "config/schema.py": f"from dltrain.{stage}.names import {name}\n"
                                                  f"from dltrain.{stage}.{sibling} import X\n"})
    problems = check_layers.check(root)
    assert len(problems) == 1
    assert problems[0].startswith(f"dltrain/config/schema.py:2: dltrain.config.schema (stage "
                                  f"config) imports dltrain.{stage}.{sibling}, a later stage")


def test_the_backend_names_import_nothing_of_dltrain_and_no_framework(tmp_path: Path) -> None:
    root = package(tmp_path, {"errors.py": "X = 1\n", "backend/__init__.py": "",
                              "backend/names.py": "import typing\nfrom dltrain.errors import X\n"
                                                  "def f():\n    import keras\n"})
    problems = check_layers.check(root)
    assert [problem.split(";")[0] for problem in problems] == [
        "dltrain/backend/names.py:2: imports dltrain.errors",
        "dltrain/backend/names.py:4: imports keras"]


def test_the_backend_names_may_read_the_root_packages_constants(tmp_path: Path) -> None:
    root = package(tmp_path, {"backend/__init__.py": "",
                              "backend/names.py": "from dltrain import install_line\n"})
    assert check_layers.check(root) == []
