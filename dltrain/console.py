"""Where output goes: results on stdout, logs and errors on stderr, one JSON document with --json."""

from __future__ import annotations

import json
import sys
from typing import Any

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def for_results(as_json: bool) -> Console:
    """With --json, stdout carries the JSON document alone, so tables and logs go to stderr."""
    return err if as_json else out


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()
