"""tools/field.py (make field): its checks, its report lines and its exit code, without the fits."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

spec = importlib.util.spec_from_file_location("field", ROOT / "tools" / "field.py")
field = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
sys.modules["field"] = field  # its dataclass looks its module up there
spec.loader.exec_module(field)  # type: ignore[union-attr]


def test_it_lists_every_capability_the_shipped_size_run_covers(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert field.main(["--list"]) == 0
    assert capsys.readouterr().out.split() == [
        "quickstart-tf", "quickstart-jax", "data-parallel", "two-processes", "sigterm-resume",
        "cv", "tune", "export", "predict-folder", "mlflow", "lr-find", "graph-model",
        "precision-auto"]


def test_a_failed_check_prints_fail_with_its_reason_and_exits_1(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(_: object) -> str:
        raise field.CheckFailed("dltrain fit exited 134, not 0: rendezvous")

    monkeypatch.setattr(field, "CHECKS", {"good": lambda _: "fine", "bad": broken})
    assert field.main([]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok   good") and lines[0].endswith("fine")
    assert lines[1].startswith("FAIL bad") and lines[1].endswith("exited 134, not 0: rendezvous")
    assert lines[2].startswith("field: 1 passed, 1 failed in ")


def test_a_command_s_exit_code_and_last_words_fail_the_check(tmp_path: Path) -> None:
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit('no luck')"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    with pytest.raises(field.CheckFailed, match="dltrain fit exited 1, not 0: no luck"):
        field.finish(process, 0, ("fit",))
