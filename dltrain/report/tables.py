"""What a person reads at the end of a command: tables of results, runs and differences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich import box
from rich.console import Console, ConsoleOptions, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from dltrain.report.widths import Fitted, fitted, unique_names


def metrics_table(title: str, test: dict[str, float]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("test metric", no_wrap=True)
    table.add_column("value", justify="right", no_wrap=True)
    for key, value in test.items():
        table.add_row(key, f"{value:.4f}")
    return table


def report_table(report: dict[str, Any]) -> Table:
    """Per-class precision, recall, F1 and support, with the overall figures as a caption."""
    table = Table(title="Per class (test split)", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right", no_wrap=True)
    for row in report["per_class"]:
        table.add_row(escape(row["class"]), f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                      f"{row['f1']:.3f}", str(row["support"]))
    extras = [f"accuracy {report['accuracy']:.4f}", f"macro F1 {report['macro_f1']:.4f}"]
    extras += [f"{key.replace('_', ' ')} {value:.4f}" for key, value in report.items()
               if key.startswith("top_")]
    if "roc_auc" in report:
        extras.append(f"ROC AUC {report['roc_auc']:.4f} (threshold {report['threshold']})")
    table.caption = ", ".join(extras)
    return table


def regression_table(report: dict[str, Any]) -> Table:
    """MAE, RMSE and R² per target, beside the target's spread (std) to read them against."""
    table = Table(title="Regression (test split)", title_justify="left")
    for column in ("target", "MAE", "RMSE", "R²", "std"):
        table.add_column(column, justify="left" if column == "target" else "right", no_wrap=True)
    rows = report["per_target"]
    for row in rows:
        table.add_row(escape(row["target"]), *(_figure(row[key]) for key in
                                               ("mae", "rmse", "r2", "target_std")))
    if len(rows) > 1:
        table.add_row("all", *(_figure(report[key]) for key in ("mae", "rmse", "r2", "target_std")))
    table.caption = ("in the targets' own units; R² 1 is perfect, 0 no better than predicting "
                     "the mean")
    return table


def values_table(results: list[dict[str, Any]]) -> Fitted:
    """predict's answer for a regression: one column per target, in its own units; each input
    by its shortest unique path."""
    table = Table(title="Predictions", title_justify="left")
    table.add_column("input", no_wrap=True)
    targets = list(results[0]["values"])
    actual = any("actual" in result for result in results)  # rows that hold their own targets
    for target in targets:
        table.add_column(escape(target), justify="right", no_wrap=True)
        if actual:
            table.add_column(f"actual {escape(target)}", justify="right", no_wrap=True)
    names = unique_names([result["input"] for result in results], stem=False)
    for name, result in zip(names, results, strict=True):
        cells = []
        for target in targets:
            cells.append(_figure(result["values"][target]))
            if actual:
                value = result.get("actual", {}).get(target)
                cells.append("" if value is None else _figure(value))
        table.add_row(escape(name), *cells)
    return fitted(table)


def predictions_table(results: list[dict[str, Any]], top_k: int) -> Fitted:
    """predict's answer for a classifier: each input by its shortest unique path, its top
    classes with their probabilities (free text, wrapped between classes)."""
    table = Table(title="Predictions", title_justify="left")
    table.add_column("input", no_wrap=True)
    table.add_column(f"top {top_k} (probability)")
    actual = any("actual" in result for result in results)  # CSV rows with their own labels
    if actual:
        table.add_column("actual")
    names = unique_names([result["input"] for result in results], stem=False)
    for name, result in zip(names, results, strict=True):
        table.add_row(escape(name), ", ".join(
            f"{escape(top['class'])} {top['probability']:.3f}" for top in result["top"]),
            *([escape(result.get("actual", ""))] if actual else []))
    return fitted(table)


def _figure(value: float) -> str:
    """Short at any scale: 0.2500, 23.41, 1.235e+05."""
    if value != value or value == 0 or 1e-3 <= abs(value) < 10:
        return f"{value:.4f}"
    return f"{value:.2f}" if 10 <= abs(value) < 1e5 else f"{value:.4g}"


def print_scores(console: Console, title: str, result: dict[str, Any]) -> None:
    table = metrics_table(title, result["test"])
    if result.get("regression", {}).get("standardized_target"):
        table.caption = "on standardised targets"
    console.print(fitted(table))
    if "report" in result:
        console.print(fitted(report_table(result["report"])))
    if "regression" in result:
        console.print(fitted(regression_table(result["regression"])))


def print_fit(console: Console, run_dir: Path, metrics: dict[str, Any]) -> None:
    print_scores(console, "Test results", metrics)
    summary = Table(show_header=False, box=None)
    summary.add_row("epochs run", str(metrics["epochs_run"]))
    summary.add_row("best epoch", str(metrics["best_epoch"]))
    summary.add_row("samples (train/val/test)", f"{metrics['train_samples']}/"
                    f"{metrics['validation_samples']}/{metrics['test_samples']}")
    summary.add_row("training time", f"{metrics['train_seconds']:.1f} s")
    if metrics["samples_per_second"] is not None:  # None: a resume that only finished the run
        summary.add_row("throughput", f"{metrics['samples_per_second']:.0f} samples/s")
    if "smoke" in metrics:
        smoke = metrics["smoke"]
        summary.add_row("smoke: train loss", f"{smoke['loss_before']:.4f} -> "
                        f"{smoke['loss_after']:.4f}")
    console.print(summary)
    console.print(f"run directory: {run_dir}", highlight=False, soft_wrap=True)


def print_eval(console: Console, result: dict[str, Any]) -> None:
    print_scores(console, "Evaluation", result)
    console.print(f"model: {result['model']}", highlight=False, soft_wrap=True)
    console.print(f"test samples: {result['test_samples']}", highlight=False)


def print_notes(console: Console, notes: list[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)


# (header, row key, right-aligned); the order they are shown in.
RUN_COLUMNS = [("name", "name", False), ("date", "date", False), ("dataset", "dataset", False),
               ("state", "state", False), ("kind", "kind", False), ("backend", "backend", False),
               ("epochs", "epochs", True),
               ("acc", "accuracy", True), ("loss", "loss", True), ("time", "seconds", True),
               ("samples/s", "samples_per_second", True)]
# Dropped in this order until the table fits the terminal; name, state, kind and acc stay.
RUN_OPTIONAL = ["backend", "samples_per_second", "dataset", "date", "epochs", "seconds", "loss"]
STATE_COLOURS = {"completed": "green", "interrupted": "yellow", "failed": "red",
                 "corrupt": "red"}
KIND_COLOURS = {"fit": "dim", "smoke": "magenta", "synthetic": "magenta", "cv": "cyan"}


class RunsTable:
    """The runs table, with as many columns as fit the width it is printed at.

    Names are never wrapped (a run's name is its folder's name, to be copied); the least
    needed columns go first at narrow widths.
    """

    def __init__(self, rows: list[dict[str, Any]], folder: Path) -> None:
        self.rows, self.folder = rows, folder

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        keys = [key for _, key, _ in RUN_COLUMNS]
        table = self.table(keys)
        unbounded = options.update(max_width=10_000)  # the width it wants, not the one it gets
        for key in RUN_OPTIONAL:
            if Measurement.get(console, unbounded, table).maximum <= options.max_width:
                break
            keys.remove(key)
            table = self.table(keys)
        yield table

    def table(self, keys: list[str]) -> Table:
        table = Table(title=f"Runs in {escape(str(self.folder))}", title_justify="left",
                      box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
        for header, key, right in RUN_COLUMNS:
            if key in keys:
                table.add_column(header, justify="right" if right else "left", no_wrap=True)
        for row in self.rows:
            table.add_row(*[row_cell(row, key) for key in keys])
        return table


def runs_table(rows: list[dict[str, Any]], folder: Path) -> RunsTable:
    return RunsTable(rows, folder)


def row_cell(row: dict[str, Any], key: str) -> str:
    """A cell of the row; a cross-validation's accuracy with its std over the folds, a
    regression's R² in the accuracy column, marked as such."""
    if key == "accuracy" and row.get("accuracy") is None and row.get("r2") is not None:
        return f"R² {float(row['r2']):.3f}"
    std = row.get(f"{key}_std") if key == "accuracy" else None
    cell = run_cell(key, row.get(key))
    return cell if std is None or row.get(key) is None else f"{cell}±{std:.4f}"


def run_cell(key: str, value: Any) -> str:
    """One cell of the runs table, short: MM-DD HH:MM, 1m05s, whole samples per second."""
    if value is None:
        return "-"
    if key == "state":
        return f"[{STATE_COLOURS.get(value, 'white')}]{escape(str(value))}[/]"
    if key == "kind":
        return f"[{KIND_COLOURS.get(value, 'white')}]{escape(str(value))}[/]"
    if key == "date":
        return escape(str(value)[5:16])
    if key == "seconds":
        return duration(float(value))
    if key == "samples_per_second":
        return f"{float(value):.0f}"
    return _cell(value)


def duration(seconds: float) -> str:
    """42s, 1m05s, 1h02m: as short as a table cell wants."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4f}" if value < 10 else f"{value:.1f}"
    return escape(str(value))


def compare_tables(comparison: dict[str, Any]) -> list[Table]:
    config = Table(title="Config differences", title_justify="left")
    for column in ("key", comparison["a"], comparison["b"]):
        config.add_column(escape(column))
    for change in comparison["config"]:
        config.add_row(escape(change["key"]), escape(repr(change["a"])), escape(repr(change["b"])))
    if not comparison["config"]:
        config.add_row("(none)", "", "")
    folds = any(comparison.get("mean_of_folds") or [])
    metrics = Table(title="Test metrics" + (" (of a cross-validation: the mean over its folds)"
                                            if folds else ""), title_justify="left")
    for column in ("metric", comparison["a"], comparison["b"], "b - a"):
        metrics.add_column(escape(column), justify="left" if column == "metric" else "right")
    for change in comparison["metrics"]:
        metrics.add_row(change["metric"], _cell(change["a"]), _cell(change["b"]),
                        "-" if change["delta"] is None else f"{change['delta']:+.4f}")
    return [config, metrics]


def export_table(entry: dict[str, Any]) -> Fitted:
    """`dltrain export`: where the export went and how it compared with the Keras model."""
    passed = entry["status"] == "passed"
    table = Table(title=f"Export: {entry['format']}", title_justify="left", show_header=False)
    table.add_column(no_wrap=True)
    table.add_column(overflow="fold")  # free text; the file's path folded, never cut
    table.add_row("parity", "[green]passed[/]" if passed else "[red]FAILED[/]")
    table.add_row("file", escape(entry["path"]))
    diff = entry["max_abs_diff"]
    table.add_row("max |diff| vs Keras", ("-" if diff is None else f"{diff:.3g}")
                  + f" (tolerance {entry['tolerance']:g}, {entry['test_samples']} test samples)")
    if "accuracy" in entry:
        accuracy = entry["accuracy"]
        table.add_row("test accuracy", f"Keras {accuracy['keras']:.4f}, export "
                      f"{accuracy['export']:.4f}, same class {entry['predictions_agree']:.1%}")
    given = entry["input"]
    table.add_row("input", f"{given['dtype']} {given['shape']}, {escape(given['values'])}, "
                  f"range {given['value_range']}; includes {', '.join(given['included_steps'])}")
    table.add_row("checked with", escape(entry["runtime"]))
    seconds = entry["seconds"]
    table.add_row("time", f"export {seconds['export']:.2f} s, check {seconds['check']:.2f} s")
    return fitted(table)
