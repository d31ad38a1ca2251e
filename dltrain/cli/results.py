"""The commands around training: runs, compare, predict, smoke and schema."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from dltrain.console import emit_json, err, for_results, out

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout; "
                                                      "logs go to stderr.")]


class SortKey(str, Enum):
    date = "date"
    name = "name"
    accuracy = "accuracy"
    loss = "loss"
    time = "time"
    state = "state"


def runs(
    folder: Annotated[Path, typer.Argument(help="The folder holding run directories.")]
    = Path("runs"),
    sort: Annotated[SortKey, typer.Option(help="Sort by this column.")] = SortKey.date,
    as_json: JsonOpt = False,
) -> None:
    """List runs: name, date, dataset, state, epochs, test accuracy and loss, time, samples/s.

    Example: dltrain runs runs --sort accuracy
    """
    from dltrain.catalog import list_runs
    from dltrain.report import runs_table

    rows = list_runs(folder, sort.value)
    for_results(as_json).print(runs_table(rows, folder))
    if as_json:
        emit_json(rows)


def compare(
    run_a: Annotated[Path, typer.Argument(help="The first run directory.", show_default=False)],
    run_b: Annotated[Path, typer.Argument(help="The second run directory.", show_default=False)],
    as_json: JsonOpt = False,
) -> None:
    """Show the config keys that differ (a -> b) and the test metrics side by side.

    Example: dltrain compare runs/cifar_cnn-20260101-120000 runs/cifar_cnn-20260102-090000
    """
    from dltrain.catalog import compare as compare_runs
    from dltrain.report import compare_tables

    comparison = compare_runs(run_a, run_b)
    console = for_results(as_json)
    for table in compare_tables(comparison):
        console.print(table)
    if as_json:
        emit_json(comparison)


def predict(
    run_dir: Annotated[Path, typer.Argument(help="A completed run directory.",
                                            show_default=False)],
    files: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, ...) or CSV files.",
                                                show_default=False)],
    top_k: Annotated[int, typer.Option(min=1, help="How many classes to show per input.")] = 3,
    as_json: JsonOpt = False,
) -> None:
    """Classify images or CSV rows, prepared like the run's training data.

    Example: dltrain predict runs/quickstart-20260101-120000 shoe.png shirt.png
    """
    from dltrain.predict import predict_files

    results = predict_files(run_dir, files, top_k)
    table = Table(title="Predictions", title_justify="left")
    table.add_column("input")
    table.add_column(f"top {top_k} (probability)")
    for result in results:
        table.add_row(escape(result["input"]), ", ".join(
            f"{escape(top['class'])} {top['probability']:.3f}" for top in result["top"]))
    for_results(as_json).print(table)
    if as_json:
        emit_json(results)


def smoke(
    paths: Annotated[list[Path] | None, typer.Argument(
        help="Config files or folders of them (default: configs).", show_default=False)] = None,
    junit: Annotated[Path | None, typer.Option(help="Also write JUnit XML here.",
                                               show_default=False)] = None,
) -> None:
    """Train every config briefly on a small subset; pass when the loss is finite and falls.

    Exits 1 when any config fails. Example: dltrain smoke configs/ --junit smoke.xml
    """
    from dltrain.smoke import config_files, smoke_one, write_junit

    results = []
    for path in config_files(paths or [Path("configs")]):
        err.print(f"smoke: {path}", highlight=False)
        results.append(smoke_one(path, "auto", err))
    table = Table(title="Smoke runs", title_justify="left")
    for column in ("config", "result", "seconds", "detail"):
        table.add_column(column)
    for result in results:
        verdict = "[green]pass[/]" if result.passed else "[red]FAIL[/]"
        table.add_row(escape(result.config), verdict, f"{result.seconds:.1f}",
                      escape(result.message))
    out.print(table)
    if junit is not None:
        write_junit(results, junit)
    failed = sum(not result.passed for result in results)
    out.print(f"{len(results) - failed} passed, {failed} failed", highlight=False)
    if failed:
        raise typer.Exit(1)


def schema() -> None:
    """Print the JSON Schema of the config file, for editors and validators.

    Example: dltrain schema > dltrain.schema.json
    """
    from dltrain.schema import json_schema

    emit_json(json_schema())


def register(app: typer.Typer) -> None:
    for command in (runs, compare, predict, smoke, schema):
        app.command()(command)
