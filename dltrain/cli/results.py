"""Commands that start from runs: eval, runs, compare, predict and export."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from dltrain.cli.options import BackendOpt, DeviceOpt, JsonOpt
from dltrain.cli.targets import check_target
from dltrain.console import emit_json, err, for_results
from dltrain.errors import DltrainError


class SortKey(str, Enum):
    """--sort's values: the runs table's headings, then the names it took before."""

    name = "name"
    date = "date"
    dataset = "dataset"
    state = "state"
    kind = "kind"
    backend = "backend"
    epochs = "epochs"
    acc = "acc"
    loss = "loss"
    time = "time"
    samples = "samples/s"
    accuracy = "accuracy"
    r2 = "r2"


def eval_(
    target: Annotated[Path, typer.Argument(help="A run directory, or a .keras file with --config.",
                                           show_default=False)],
    config: Annotated[Path | None, typer.Option(
        help="The config that says which data to use (default: the run's config.yaml).",
        show_default=False)] = None,
    model: Annotated[Path | None, typer.Option(
        help="Evaluate this model file instead of the run's model.keras (e.g. best.keras): a "
        "relative path is looked up in the run first, then in the working directory.",
        show_default=False)] = None,
    device: DeviceOpt = "auto",
    backend: BackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reload a saved model, score it on the test split and write eval.json (another model
    file's scores, --model best.keras: eval-best.json and pictures named alike).

    Example: dltrain eval runs/quickstart-20260101-120000
    """
    from dltrain.report.evaluate import evaluate_run, model_in_run
    from dltrain.report.tables import print_eval

    if target.suffix == ".keras":
        if config is None:
            raise DltrainError(f"{target}: a bare model file needs --config to say which data "
                               "to evaluate on.")
        run_dir, model = target.parent, target
    elif target.is_dir():
        run_dir = target
        model = None if model is None else model_in_run(run_dir, model)
    else:
        raise DltrainError(f"{target}: not a run directory or a .keras file.")
    evaluation = evaluate_run(run_dir, model_path=model, config_path=config,
                              device=device,
                              backend=backend)
    print_eval(for_results(as_json), evaluation.result)
    if as_json:
        emit_json(evaluation.result)
    from dltrain.runs.names import EVAL_FILE, MODEL_FILE, STATE_FILE

    if config is not None and (run_dir / STATE_FILE).is_file():
        # Another config's data: the run's eval.json and confusion matrix stay the run's own.
        err.print(f"note: not saved into {escape(str(run_dir))}: these scores are on "
                  f"{escape(str(config))}'s test data, not the run's.", highlight=False,
                  soft_wrap=True)
        return
    saved = evaluation.save(run_dir)  # after the scores are shown: a read-only run still shows
    if evaluation.model_stem is not None:  # not the run's model.keras: files named after it
        err.print(f"note: {escape(Path(evaluation.result['model']).name)}'s scores are saved in "
                  f"{escape(', '.join([str(run_dir / saved[0]), *saved[1:]]))}; the "
                  f"run's own {EVAL_FILE} and pictures are {MODEL_FILE}'s.", highlight=False,
                  soft_wrap=True)

def runs(
    folder: Annotated[Path, typer.Argument(help="The folder holding run directories.")]
    = Path("runs"),
    sort: Annotated[SortKey, typer.Option(
        metavar="COLUMN",
        help="Sort by this column, by its heading: name, date, dataset, state, kind, backend, "
        "epochs, acc, loss, time or samples/s (accuracy and r2 also work); scores best first, "
        "the date newest first (to the second), text A to Z.")] = SortKey.date,
    as_json: JsonOpt = False,
) -> None:
    """List runs, one row each: state, kind, backend, epochs, test scores and time.

    Columns: name, date, dataset, state, kind (fit, smoke, synthetic, cv or tune), backend,
    epochs, test accuracy (a regression's R²; a cv's mean ± std) and loss, training time and
    samples/s; a narrow terminal shows the date to the minute, then drops the least needed
    columns (backend, samples/s, dataset, date, epochs, time, loss) and never cuts a name.
    --json rows all have the same keys (null where unknown) and ISO 8601 dates.

    Example: dltrain runs runs --sort acc
    """
    from dltrain.report.tables import runs_table
    from dltrain.runs.listing import list_runs

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

    Each key by its leaf path (model.layers.0.Conv2D.filters); b - a only where the scores
    compare (not across tasks, nor between two losses). --json adds each metric's "why".

    Example: dltrain compare runs/cifar_cnn-20260101-120000 runs/cifar_cnn-20260102-090000
    """
    from dltrain.report.tables import compare_tables
    from dltrain.runs.listing import compare as compare_runs

    comparison = compare_runs(run_a, run_b)
    console = for_results(as_json)
    for table in compare_tables(comparison):
        console.print(table)
    if as_json:
        emit_json(comparison)


def predict(
    run_dir: Annotated[Path, typer.Argument(help="A completed run directory.",
                                            show_default=False)],
    files: Annotated[list[Path], typer.Argument(help="Image files (PNG, JPEG, ...), CSV files, "
                                                "folders of them, or - for standard input.",
                                                show_default=False)],
    top_k: Annotated[int, typer.Option(min=1, help="How many classes to show per input.")] = 3,
    model: Annotated[Path | None, typer.Option(
        help="Predict with this model file instead of the run's model.keras (e.g. best.keras, "
        "last.keras of an unfinished run).", show_default=False)] = None,
    backend: BackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Classify images or CSV rows, prepared like the run's training data; a regression's run
    prints the predicted values. CSV rows that hold the label columns show their own labels
    (or targets) beside, as "actual".

    Example: dltrain predict runs/quickstart-20260101-120000 shoe.png shirt.png
    """
    from dltrain.report.evaluate import model_in_run
    from dltrain.report.predict import predict_files
    from dltrain.report.tables import predictions_table, values_table

    results = predict_files(run_dir, files, top_k, backend,
                            model_path=None if model is None else model_in_run(run_dir, model))
    regression = bool(results) and "values" in results[0]
    for_results(as_json).print(values_table(results) if regression
                               else predictions_table(results, top_k))
    if as_json:
        emit_json(results)


class ExportFormat(str, Enum):
    saved_model = "saved_model"
    onnx = "onnx"
    tflite = "tflite"


def export(
    run_dir: Annotated[Path, typer.Argument(help="A completed run directory.", show_default=False)],
    format_: Annotated[ExportFormat, typer.Option(
        "--format", help="saved_model (TensorFlow), onnx (ONNX Runtime) or tflite (LiteRT).",
        show_default=False)],
    model: Annotated[Path | None, typer.Option(
        help="Export this model file instead of the run's model.keras (e.g. best.keras).",
        show_default=False)] = None,
    output: Annotated[Path | None, typer.Option(
        help="Where to write the export (default: beside the model in the run, e.g. "
        "model.onnx, model.tflite, model_saved_model/).", show_default=False)] = None,
    backend: BackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export the model with its input scaling; check it against Keras on the test split.

    The check (each format's own runtime, max difference, accuracy) goes to export.json; exits
    1 when it fails.

    Example: dltrain export runs/quickstart-20260101-120000 --format onnx
    """
    from dltrain.report.evaluate import model_in_run
    from dltrain.report.export import export_run
    from dltrain.report.tables import export_table

    if output is not None:  # before the model is loaded and exported, which takes minutes
        check_target(output, "--output", folder=format_ is ExportFormat.saved_model)
    if not run_dir.is_dir():
        raise DltrainError(f"{run_dir}: not a run directory; pass a folder made by dltrain fit.")
    entry = export_run(run_dir, format_.value,
                       model_path=None if model is None else model_in_run(run_dir, model),
                       output=output, backend=backend)
    for_results(as_json).print(export_table(entry))
    if as_json:
        emit_json(entry)
    if entry["status"] != "passed":
        diff = entry["max_abs_diff"]
        why = entry.get("problem") if diff is None else (
            f"its outputs differ from the Keras model's by up to {diff:.3g} (tolerance "
            f"{entry['tolerance']:g})")
        err.print(f"[red]parity FAILED:[/] the {format_.value} export {escape(str(why))}; set "
                  f"aside as {escape(entry['path'])}.", highlight=False, soft_wrap=True)
        raise typer.Exit(1)
