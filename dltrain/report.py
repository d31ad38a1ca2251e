"""What a person reads at the end of a command: summary tables of a fit or an evaluation."""

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


def print_fit(console: Console, run_dir: Path, metrics: dict[str, Any]) -> None:
    console.print(metrics_table("Test results", metrics["test"]))
    summary = Table(show_header=False, box=None)
    summary.add_row("epochs run", str(metrics["epochs_run"]))
    summary.add_row("best epoch", str(metrics["best_epoch"]))
    summary.add_row("samples (train/val/test)", f"{metrics['train_samples']}/"
                    f"{metrics['validation_samples']}/{metrics['test_samples']}")
    summary.add_row("training time", f"{metrics['train_seconds']:.1f} s")
    summary.add_row("throughput", f"{metrics['samples_per_second']:.0f} samples/s")
    console.print(summary)
    console.print(f"run directory: {run_dir}", highlight=False, soft_wrap=True)


def print_eval(console: Console, result: dict[str, Any]) -> None:
    console.print(metrics_table("Evaluation", result["test"]))
    console.print(f"model: {result['model']}", highlight=False, soft_wrap=True)
    console.print(f"test samples: {result['test_samples']}", highlight=False)


def print_notes(console: Console, notes: list[str]) -> None:
    for note in notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
