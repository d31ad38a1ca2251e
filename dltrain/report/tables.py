"""What a person reads at the end of a command: tables of results, runs and differences."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table


def metrics_table(title: str, test: dict[str, float]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("test metric")
    table.add_column("value", justify="right")
    for key, value in test.items():
        table.add_row(key, f"{value:.4f}")
    return table


def report_table(report: dict[str, Any]) -> Table:
    """Per-class precision, recall, F1 and support, with the overall figures as a caption."""
    table = Table(title="Per class (test split)", title_justify="left")
    for column in ("class", "precision", "recall", "F1", "support"):
        table.add_column(column, justify="left" if column == "class" else "right")
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


def print_scores(console: Console, title: str, result: dict[str, Any]) -> None:
    console.print(metrics_table(title, result["test"]))
    if "report" in result:
        console.print(report_table(result["report"]))


def print_fit(console: Console, run_dir: Path, metrics: dict[str, Any]) -> None:
    print_scores(console, "Test results", metrics)
    summary = Table(show_header=False, box=None)
    summary.add_row("epochs run", str(metrics["epochs_run"]))
    summary.add_row("best epoch", str(metrics["best_epoch"]))
    summary.add_row("samples (train/val/test)", f"{metrics['train_samples']}/"
                    f"{metrics['validation_samples']}/{metrics['test_samples']}")
    summary.add_row("training time", f"{metrics['train_seconds']:.1f} s")
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


RUN_COLUMNS = [("name", "name"), ("date", "date"), ("dataset", "dataset"), ("state", "state"),
               ("epochs", "epochs"), ("test acc", "accuracy"), ("test loss", "loss"),
               ("time s", "seconds"), ("samples/s", "samples_per_second")]


def runs_table(rows: list[dict[str, Any]], folder: Path) -> Table:
    table = Table(title=f"Runs in {folder}", title_justify="left")
    for header, key in RUN_COLUMNS:
        numeric = key in ("epochs", "accuracy", "loss", "seconds", "samples_per_second")
        table.add_column(header, justify="right" if numeric else "left",
                         no_wrap=key in ("state", "date"), overflow="fold")
    colours = {"completed": "green", "interrupted": "yellow", "failed": "red"}
    for row in rows:
        cells = [_cell(row.get(key)) for _, key in RUN_COLUMNS]
        state = row.get("state") or "?"
        cells[3] = f"[{colours.get(state, 'white')}]{escape(state)}[/]"
        table.add_row(*cells)
    return table


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
    metrics = Table(title="Test metrics", title_justify="left")
    for column in ("metric", comparison["a"], comparison["b"], "b - a"):
        metrics.add_column(escape(column), justify="left" if column == "metric" else "right")
    for change in comparison["metrics"]:
        metrics.add_row(change["metric"], _cell(change["a"]), _cell(change["b"]),
                        "-" if change["delta"] is None else f"{change['delta']:+.4f}")
    return [config, metrics]
