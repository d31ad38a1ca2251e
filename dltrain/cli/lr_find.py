"""The lr-find command: the learning-rate range test (train.lr_find), its answer and the line
that uses it."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated

import typer

from dltrain.cli.options import ConfigArg, ConfigBackendOpt, DeviceOpt, JsonOpt, SetOpt
from dltrain.cli.setup import ready_to_train
from dltrain.cli.targets import check_target
from dltrain.console import emit_json, for_results


def lr_find(
    config: ConfigArg,
    set_: SetOpt = None,
    start: Annotated[float, typer.Option(help="The first (lowest) learning rate.")] = 1e-7,
    end: Annotated[float, typer.Option(help="The last (highest) learning rate.")] = 10.0,
    steps: Annotated[int, typer.Option(
        help="Training steps from --start to --end (the data is cycled over as needed).")] = 200,
    output: Annotated[Path | None, typer.Option(
        help="Where to write the plot (default: <runs_dir>/lr_find/<name>/lr_find.png).",
        show_default=False)] = None,
    device: DeviceOpt = "auto",
    backend: ConfigBackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Suggest a learning rate: train a fresh model briefly with the rate rising, plot the loss.

    The range test (Smith 2015; fastai's lr_find): the rate rises exponentially from --start to
    --end, stopping when the loss diverges; the suggestion is where the smoothed loss falls
    fastest. No run and no config is changed; a schedule is replaced by the ramp for the test.

    Example: dltrain lr-find configs/quickstart.yaml, then dltrain fit configs/quickstart.yaml
    --set optimizer.learning_rate=RATE
    """
    from dltrain.config.load import shortcut_overrides
    from dltrain.report.tables import print_notes
    from dltrain.train.lr_find import RULE, check_range, run_range_test

    check_range(start, end, steps)  # before the backend's seconds-long import
    if output is not None:
        check_target(output, "--output")
    overrides = [*(set_ or []), *shortcut_overrides(backend=backend)]
    loaded = ready_to_train(config, overrides, device)
    console = for_results(as_json)
    result = run_range_test(loaded, start=start, end=end, steps=steps, device=device,
                            plot=output, console=console)
    given = [arg for item in set_ or [] for arg in ("--set", item)]
    given += ["--backend", backend] if backend is not None else []
    # No key (a schedule made of its values alone): the notes say what to change instead.
    use = None if result.key is None else shlex.join(
        ["dltrain", "fit", str(config), *given, "--set", f"{result.key}={result.suggested:g}"])
    print_notes(console, result.notes)
    console.print(f"lr-find: {len(result.rates)} steps from {start:g} to {result.rates[-1]:.3g} "
                  f"in {result.seconds:.1f} s; {result.stopped}.", highlight=False, soft_wrap=True)
    console.print(f"suggested learning rate: {result.suggested:g}, the {RULE}. The loss is "
                  f"lowest at {result.lowest:g} (a tenth of it, {result.lowest / 10:.2g}, is "
                  "the other common choice).", highlight=False, soft_wrap=True)
    console.print(f"plot: {result.plot}", highlight=False, soft_wrap=True, markup=False)
    if use is not None:
        console.print(f"use it: {use}", highlight=False, soft_wrap=True, markup=False)
    if as_json:
        emit_json({**result.to_json(), **({} if use is None else {"command": use})})
