"""What a person reads at the end of a command: tables of results, runs and differences."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderableType, RenderResult
from rich.markup import escape
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

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

    Names are never wrapped or cut (a run's name is its folder's name, to be copied) and no
    number is split: the least needed columns go first at narrow widths, and where even a name
    and its score do not fit side by side, each run is a name on a line of its own with its
    state, kind and score below it.
    """

    def __init__(self, rows: list[dict[str, Any]], folder: Path) -> None:
        self.rows, self.folder = rows, folder

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        unbounded = options.update(max_width=10_000)  # the width it wants, not the one it gets
        for table in self.tables():
            if Measurement.get(console, unbounded, table).maximum <= options.max_width:
                yield table
                return
        yield from self.stacked()

    def tables(self) -> Iterator[Table]:
        """The table with fewer columns each time; a date to the second first, then to the
        minute, before the date goes."""
        keys = [key for _, key, _ in RUN_COLUMNS]
        for key in [*RUN_OPTIONAL, None]:
            yield self.table(keys)
            if "date" in keys:
                yield self.table(keys, seconds=False)
            if key is not None:
                keys.remove(key)

    def title(self) -> str:
        return f"Runs in {escape(str(self.folder))}"

    def table(self, keys: list[str], seconds: bool = True) -> Table:
        table = Table(title=self.title(), title_justify="left",
                      box=box.SIMPLE_HEAD, padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
        for header, key, right in RUN_COLUMNS:
            if key in keys:
                table.add_column(header, justify="right" if right else "left", no_wrap=True)
        for row in self.rows:
            table.add_row(*[row_cell(row, key, seconds) for key in keys])
        return table

    def stacked(self) -> RenderResult:
        """One run per two lines: its whole name (folded only where the terminal is narrower
        than the name itself), then its state, kind and score, indented."""
        yield Text.from_markup(self.title())
        for row in self.rows:
            yield Text(row["name"], overflow="fold")
            score = row_cell(row, "accuracy")
            score = score if score.startswith("R²") else f"acc {score}"
            yield Text.from_markup(f"  {row_cell(row, 'state')}  {row_cell(row, 'kind')}  "
                                   f"{score}")


def runs_table(rows: list[dict[str, Any]], folder: Path) -> RunsTable:
    return RunsTable(rows, folder)


def row_cell(row: dict[str, Any], key: str, seconds: bool = True) -> str:
    """A cell of the row; a cross-validation's accuracy with its std over the folds, a
    regression's R² in the accuracy column, marked as such; the date to the minute where
    `seconds` is false."""
    if key == "date" and not seconds and row.get("date") is not None:
        return run_cell(key, row["date"])[:-3]
    if key == "accuracy" and row.get("accuracy") is None and row.get("r2") is not None:
        return f"R² {float(row['r2']):.3f}"
    std = row.get(f"{key}_std") if key == "accuracy" else None
    cell = run_cell(key, row.get(key))
    return cell if std is None or row.get(key) is None else f"{cell}±{std:.4f}"


def run_cell(key: str, value: Any) -> str:
    """One cell of the runs table, short: MM-DD HH:MM:SS (the run's own clock, as in its
    folder's name), 1m05s, whole samples per second."""
    if value is None:
        return "-"
    if key == "state":
        return f"[{STATE_COLOURS.get(value, 'white')}]{escape(str(value))}[/]"
    if key == "kind":
        return f"[{KIND_COLOURS.get(value, 'white')}]{escape(str(value))}[/]"
    if key == "date":
        return escape(f"{str(value)[5:10]} {str(value)[11:19]}")
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


def compare_tables(comparison: dict[str, Any]) -> list[RenderableType]:
    """compare's output: which run is a and which b, whole (folded only where the terminal is
    narrower than the path), the config keys that differ and the test metrics side by side,
    b - a only where the two runs' scores compare (else both values and why not)."""
    names = Table.grid(padding=(0, 1, 0, 0))
    names.add_column(no_wrap=True)
    names.add_column(overflow="fold")
    for side in ("a", "b"):
        names.add_row(f"{side}:", Text(comparison[side]))
    changes = [[change["key"], repr(change["a"]), repr(change["b"])]
               for change in comparison["config"]] or [["(none)", "", ""]]
    config = SideBySide("Config differences (a -> b)", ["key", "a", "b"], changes)
    folds = any(comparison.get("mean_of_folds") or [])
    rows, notes = [], []
    for change in comparison["metrics"]:
        why = change.get("why")
        delta = ("n/a" if why else "-") if change["delta"] is None else f"{change['delta']:+.4f}"
        rows.append([change["metric"], _cell(change["a"]), _cell(change["b"]), delta])
        notes += [f"{change['metric']} not subtracted: {why}."] if why else []
    metrics = SideBySide("Test metrics" + (" (of a cross-validation: the mean over its folds)"
                                           if folds else ""), ["metric", "a", "b", "b - a"],
                         rows, right=True, caption=" ".join(notes) or None)
    return [names, config, metrics]


class SideBySide:
    """Two runs' values side by side, under a first column naming the row (a key path, a
    metric) that is never cut or wrapped. Values wrap between words only, so no number is
    split; where the words do not fit side by side, each row is its name on a line of its
    own with its values below."""

    GAP = 2  # between columns: SIMPLE_HEAD's separator and one of padding

    def __init__(self, title: str, headers: list[str], rows: list[list[str]],
                 right: bool = False, caption: str | None = None) -> None:
        self.title, self.headers, self.rows = title, headers, rows
        self.right, self.caption = right, caption

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        columns = list(zip(self.headers, *self.rows, strict=True))
        first = max(cell_len(cell) for cell in columns[0])
        widths = column_widths([_widest_word(cells) for cells in columns[1:]],
                               [max(cell_len(cell) for cell in cells) for cells in columns[1:]],
                               options.max_width - first - self.GAP * len(columns[1:]))
        if widths is None:
            yield from self.stacked()
            return
        table = Table(title=escape(self.title), title_justify="left", box=box.SIMPLE_HEAD,
                      padding=(0, 1, 0, 0), pad_edge=False, show_edge=False)
        table.add_column(escape(self.headers[0]), no_wrap=True, min_width=first)
        for header, width in zip(self.headers[1:], widths, strict=True):
            table.add_column(escape(header), width=width, overflow="fold",
                             justify="right" if self.right else "left")
        for row in self.rows:
            table.add_row(*[Text(cell) for cell in row])
        yield table
        if self.caption:  # free text, as wide as the terminal, not the table
            yield Text(self.caption)

    def stacked(self) -> RenderResult:
        yield Text(self.title)
        for row in self.rows:
            yield Text(row[0], overflow="fold")
            values = Table.grid(padding=(0, 1, 0, 0))
            values.add_column(no_wrap=True)
            values.add_column(overflow="fold")
            for header, cell in zip(self.headers[1:], row[1:], strict=True):
                values.add_row(Text(f"{header}:"), Text(cell))
            yield Padding(values, (0, 0, 0, 2))
        if self.caption:
            yield Text(self.caption)


def column_widths(least: list[int], most: list[int], room: int) -> list[int] | None:
    """Column widths within `room`: each at least its `least` (its widest word), and what is
    left shared out towards each one's `most`; None when the least do not fit."""
    widths = list(least)
    if sum(widths) > room:
        return None
    while sum(widths) < room and any(w < m for w, m in zip(widths, most, strict=True)):
        for index, limit in enumerate(most):
            if widths[index] < limit and sum(widths) < room:
                widths[index] += 1
    return widths


def _widest_word(cells: tuple[str, ...]) -> int:
    return max((cell_len(word) for cell in cells for word in cell.split()), default=1)


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
    mixed = entry.get("mixed_precision")
    if mixed:
        agree = (f", same class {mixed['predictions_agree']:.1%}" if "predictions_agree" in mixed
                 else "")
        table.add_row("computes in", f"float32; trained in {mixed['trained']}, which answers "
                      f"within {mixed['max_abs_diff']:.3g} of it{agree}")
    given = entry["input"]
    table.add_row("input", f"{given['dtype']} {given['shape']}, {escape(given['values'])}, "
                  f"range {given['value_range']}; includes {', '.join(given['included_steps'])}")
    table.add_row("checked with", escape(entry["runtime"]))
    seconds = entry["seconds"]
    table.add_row("time", f"export {seconds['export']:.2f} s, check {seconds['check']:.2f} s")
    return fitted(table)
