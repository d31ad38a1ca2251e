"""Options that several commands share, defined once."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltrain.backend.names import BackendName, Device

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout; "
                                                      "logs go to stderr.")]
ConfigArg = Annotated[Path, typer.Argument(help="The experiment's YAML config file.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override a config value: key.path=value (repeatable).", show_default=False)]


# Choices typer offers from the Literals the backend defines: one list of each, plain strings.
DeviceOpt = Annotated[Device, typer.Option(help="Where to run the model.")]
BackendOpt = Annotated[BackendName | None, typer.Option(
    help="The Keras backend to run on (default: the run's own).", show_default=False)]
ConfigBackendOpt = Annotated[BackendName | None, typer.Option(
    "--backend", help="Shortcut for --set backend=NAME (default: $KERAS_BACKEND, else "
    "tensorflow).", show_default=False)]


# Several processes (JAX, one per machine): the names keras.distribution.initialize() reads.
CoordinatorOpt = Annotated[str | None, typer.Option(
    envvar="KERAS_DISTRIBUTION_JOB_ADDRESSES", show_default=False,
    help="HOST:PORT of process 0, which all processes join (jax.distributed); a comma-separated "
         "list counts its first address. Needs --num-processes and --process-id.")]
NumProcessesOpt = Annotated[int | None, typer.Option(
    envvar="KERAS_DISTRIBUTION_NUM_PROCESSES", show_default=False, min=1,
    help="How many processes (machines) train together.")]
ProcessIdOpt = Annotated[int | None, typer.Option(
    envvar="KERAS_DISTRIBUTION_PROCESS_ID", show_default=False, min=0,
    help="This process's number, 0 to N-1; process 0 writes the run directory.")]
JoinTimeoutOpt = Annotated[int, typer.Option(
    min=1, help="Seconds to wait for the coordinator and the other processes, and for a silent "
                "process before the others stop.")]
