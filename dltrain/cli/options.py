"""Options that several commands share, defined once."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout; "
                                                      "logs go to stderr.")]
ConfigArg = Annotated[Path, typer.Argument(help="The experiment's YAML config file.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a config value: key.path=value (repeatable).", show_default=False)]


class Device(str, Enum):
    auto = "auto"
    cpu = "cpu"
    gpu = "gpu"


DeviceOpt = Annotated[Device, typer.Option(help="Where to run the model.")]


class Backend(str, Enum):
    tensorflow = "tensorflow"
    jax = "jax"
    torch = "torch"


BackendOpt = Annotated[Backend | None, typer.Option(
    help="The Keras backend to run on (default: the run's own).", show_default=False)]
