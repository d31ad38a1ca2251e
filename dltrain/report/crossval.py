"""A cross-validation's results as a person reads them: a table of folds, mean and std (at
any width: folds and numbers are never cut)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dltrain.report.tables import metrics_table
from dltrain.report.widths import Fitted, fitted


def folds_table(record: dict[str, Any]) -> Fitted:
    """One row per finished fold, then the mean and the std of each column's metric."""
    entries = record["per_fold"]
    columns = [(section, name) for section in ("validation", "test")
               for name in (entries[0][section] if entries else {})]
    table = Table(title=f"Cross-validation: {len(entries)} of {record['folds']} folds",
                  title_justify="left")
    for header in ("fold", "train/val", "epochs"):
        table.add_column(header, justify="right", no_wrap=True)
    for section, name in columns:
        table.add_column(f"{'val' if section == 'validation' else 'test'}\n{escape(name)}",
                         justify="right", no_wrap=True)
    for entry in entries:
        table.add_row(str(entry["fold"]),
                      f"{entry['train_samples']}/{entry['validation_samples']}",
                      str(entry["epochs_run"]),
                      *[number(entry[section].get(name)) for section, name in columns])
    table.add_section()
    for statistic in ("mean", "std"):
        table.add_row(statistic, "", "", *[
            number((record.get(section) or {}).get(name, {}).get(statistic))
            for section, name in columns])
    table.caption = f"std: {record['std']}"
    return fitted(table)


def number(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


def headline(record: dict[str, Any]) -> list[str]:
    """The estimate: each validation metric's mean ± std over the folds, one a line."""
    return [f"cross-validation over {len(record['per_fold'])} folds (mean ± std):"] + [
        f"  val {name} {number(stats['mean'])} ± {number(stats['std'])}"
        for name, stats in (record.get("validation") or {}).items()]


def print_cv(console: Console, record: dict[str, Any], parent: str) -> None:
    console.print(folds_table(record))
    for line in headline(record):
        console.print(escape(line), highlight=False, soft_wrap=True)
    refit = record.get("refit_result")
    if refit is not None:
        console.print(fitted(metrics_table("Refit: test split", refit["test"])))
        console.print(f"refit on all {refit['train_samples']} training samples: "
                      f"{escape(refit['run_dir'])}/", highlight=False)
    console.print(f"cross-validation directory: {parent}", highlight=False, soft_wrap=True)
