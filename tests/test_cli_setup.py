"""What a training command says before it trains: the backend's seconds-long import is
announced on a terminal only (issue 27)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console

from conftest import CONFIGS
from dltrain.cli import setup


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Pipe(io.StringIO):
    def isatty(self) -> bool:
        return False


def prepared(monkeypatch: pytest.MonkeyPatch, screen: io.StringIO, ci: bool) -> str:
    if ci:
        monkeypatch.setenv("CI", "1")
    else:
        monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(setup, "err", Console(file=screen, highlight=False))
    monkeypatch.setattr("dltrain.backend.use_backend", lambda *args: None)
    monkeypatch.delitem(sys.modules, "keras", raising=False)  # as in a fresh process
    setup.ready_to_train(Path(CONFIGS / "quickstart.yaml"), [], "cpu", smoke=True)
    return screen.getvalue()


def test_a_terminal_hears_at_once_that_the_backend_is_loading(
        monkeypatch: pytest.MonkeyPatch) -> None:
    assert "Loading TensorFlow…" in prepared(monkeypatch, Terminal(), ci=False)


@pytest.mark.parametrize(("screen", "ci"), [(Pipe(), False), (Terminal(), True)],
                         ids=["pipe", "ci"])
def test_logs_and_ci_get_no_loading_line(monkeypatch: pytest.MonkeyPatch, screen: io.StringIO,
                                        ci: bool) -> None:
    assert "Loading" not in prepared(monkeypatch, screen, ci)


def test_a_process_with_keras_loaded_already_gets_no_loading_line(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A cross-validation's second fold, a search's second trial: nothing is loading.
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setattr(setup, "err", Console(file=(screen := Terminal()), highlight=False))
    monkeypatch.setitem(sys.modules, "keras", object())
    setup.announce_loading("tensorflow")
    assert screen.getvalue() == ""
