"""Every command's --help is readable in an 80-column CI log: nothing cut off with an
ellipsis, and no option name, path or word split across lines."""

from __future__ import annotations

import re

import pytest
import typer

from conftest import run_cli
from dltrain.cli import app

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def whole_words(text: str) -> list[str]:
    """The words of a help text as they must appear in the output, markup and brackets aside."""
    return [word.strip("()[].,;:'\"") for word in text.split() if len(word.strip("()[].,;:'\"")) > 1]


@pytest.mark.parametrize("command", ["", *COMMANDS])
def test_help_at_80_columns_cuts_nothing(command: str, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run_cli(capsys, *([command] if command else []), "--help")
    assert code == 0, err
    assert "…" not in out
    cut = [line for line in out.splitlines() if re.search(r"[\w,±]\.\.\.$", line)
           and not line.startswith("Usage:")]
    assert cut == [], f"{command} --help cuts text short:\n{out}"
    split = [line for line in out.splitlines() if re.search(r"\w-$", line)]  # no-/smoke
    assert split == [], f"{command} --help splits a word at a hyphen:\n{out}"
    assert max(map(len, out.splitlines())) <= 80
    lines = out.splitlines()
    group = typer.main.get_command(app)
    described = group.commands[command] if command else group  # type: ignore[attr-defined]
    for param in described.params:
        help_text = getattr(param, "help", None) or ""
        names = [*param.opts, *param.secondary_opts] if param.param_type_name == "option" else []
        words = [*names, *whole_words(help_text)]
        envvar = getattr(param, "envvar", None)
        words += [envvar] if isinstance(envvar, str) else []
        for word in words:
            assert any(re.search(rf"(?<![\w-]){re.escape(word)}", line) for line in lines), (
                f"{command} --help: {word!r} is cut or split:\n{out}")
