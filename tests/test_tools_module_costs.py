"""tools/module_costs.py and the order tests/conftest.py gives the modules by their costs."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

from conftest import ROOT, costliest_first


def load_tool():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("module_costs", ROOT / "tools/module_costs.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_costs_are_each_modules_seconds_from_a_junit_file(tmp_path: Path) -> None:
    junit = tmp_path / "run.xml"
    junit.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="tests.test_a" name="one" time="1.4"/>'
        '<testcase classname="tests.test_a" name="two" time="2.3"/>'
        '<testcase classname="tests.test_b" name="one" time="0.2"/>'
        "</testsuite></testsuites>")
    assert load_tool().module_costs(junit) == {"tests/test_a.py": 4, "tests/test_b.py": 0}


@dataclass
class Item:
    nodeid: str
    slow: bool = False

    def get_closest_marker(self, name: str) -> object | None:
        return name if name == "slow" and self.slow else None


def test_modules_run_costliest_first_and_each_as_written() -> None:
    items = [Item("tests/test_fast.py::a"), Item("tests/test_fast.py::b"),
             Item("tests/test_new.py::x", slow=True), Item("tests/test_new.py::y", slow=True),
             Item("tests/test_fits.py::c"), Item("tests/test_fits.py::d")]
    costs = {"tests/test_fast.py": 3, "tests/test_fits.py": 200}
    order = [item.nodeid for item in costliest_first(items, costs)]
    # test_new.py is not in the costs: two slow tests count 10 s.
    assert order == ["tests/test_fits.py::c", "tests/test_fits.py::d", "tests/test_new.py::x",
                     "tests/test_new.py::y", "tests/test_fast.py::a", "tests/test_fast.py::b"]
