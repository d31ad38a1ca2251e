"""What every command that trains does before it trains: read and check the config (before
TensorFlow's seconds-long import), show its notes, choose the backend, and decide whether the
console shows live progress."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from dltrain.backend.names import NAMES, Device
from dltrain.console import err

if TYPE_CHECKING:  # the config's modules load pydantic: not for `dltrain --help`
    from dltrain.config.load import Loaded


def checked_config(path: Path, overrides: list[str], smoke: bool = False,
                   check: Callable[[Loaded], None] | None = None) -> Loaded:
    """The config read, overridden and checked (names and arguments too; `check` adds a
    command's own check), with its notes shown: all before TensorFlow is imported."""
    from dltrain.config.catalog import check_loaded
    from dltrain.config.load import load_config
    from dltrain.report.tables import print_notes

    loaded = load_config(path, overrides, smoke=smoke)
    check_loaded(loaded)
    if check is not None:
        check(loaded)
    print_notes(err, loaded.notes)
    return loaded


def ready_to_train(path: Path, overrides: list[str], device: Device, smoke: bool = False,
                   check: Callable[[Loaded], None] | None = None) -> Loaded:
    """checked_config, then its backend chosen for this process (Keras is not imported yet)."""
    from dltrain.backend import use_backend

    loaded = checked_config(path, overrides, smoke, check)
    use_backend(loaded.config.backend, device)
    announce_loading(loaded.config.backend)
    return loaded


def announce_loading(backend: str) -> None:
    """Say on a terminal, at once, what the next seconds are: importing the backend (about
    10 s for TensorFlow from cold) is silent. Never in CI logs or pipes (stdout, which --json
    holds, never hears it), nor when Keras is already loaded."""
    if "keras" not in sys.modules and shows_live_progress(err):
        err.print(f"Loading {NAMES.get(backend, backend)}…", style="dim", highlight=False)


def shows_live_progress(console: Console) -> bool:
    """A live progress bar on a terminal; plain lines in CI logs and pipes."""
    return console.is_terminal and not os.environ.get("CI")
