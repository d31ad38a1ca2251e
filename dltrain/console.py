"""Where output goes: results on stdout, logs and errors on stderr, one JSON document with --json."""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def survive_any_encoding() -> None:
    """Print what the terminal's encoding cannot show as escapes (donn\\xe9es.yaml), instead of
    failing: LANG=C or PYTHONIOENCODING=ascii, and file names that are not even UTF-8 (their
    bytes arrive as lone surrogates), would otherwise crash every line that names the file."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None and getattr(stream, "errors", None) != "backslashreplace":
            reconfigure(errors="backslashreplace")


SHOWN = 80  # characters of a value a message quotes; a --set value can be 100,000


def shown(value: object) -> str:
    """A value the user gave, quoted as a message shows it: whole when short, else its first
    characters and its length, so one huge value cannot bury the message."""
    text = value if isinstance(value, str) else repr(value)
    if len(text) <= SHOWN:
        return repr(text) if isinstance(value, str) else text
    return f"{text[:SHOWN]!r}… ({len(text):,} characters)"


def clipped(text: str) -> str:
    """`shown` without quotes: for the --set option a message names, or a word of a message;
    control characters as escapes, which a terminal would otherwise obey (ESC, BEL)."""
    if not text.isprintable():
        text = "".join(char if char.isprintable() else ascii(char)[1:-1] for char in text)
    return text if len(text) <= SHOWN else f"{text[:SHOWN]}… ({len(text):,} characters)"


LONG_WORD = 1000  # longer than a path is in practice (a name is at most 255 bytes)


def for_terminal(message: str) -> str:
    """The message with every word longer than a long path clipped (a value quoted whole by a
    check that did not expect 100,000 characters still prints as one short line) and control
    characters, which a terminal would obey, as escapes (a file named with an ESC in it)."""
    message = re.sub(rf"\S{{{LONG_WORD + 1},}}", lambda word: clipped(word.group()), message)
    return re.sub(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", lambda char: ascii(char.group())[1:-1],
                  message)


def for_results(as_json: bool) -> Console:
    """With --json, stdout carries the JSON document alone, so tables and logs go to stderr."""
    return err if as_json else out


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(finite(data), indent=2, default=str, allow_nan=False) + "\n")
    sys.stdout.flush()


def finite(data: Any) -> Any:
    """`data` with NaN and the infinities as None (null): JSON has no such numbers, and the
    NaN that Python's json writes is refused by strict parsers (JavaScript's, Go's)."""
    if isinstance(data, float) and not math.isfinite(data):
        return None
    if isinstance(data, dict):
        return {key: finite(value) for key, value in data.items()}
    if isinstance(data, list | tuple):
        return [finite(value) for value in data]
    return data
