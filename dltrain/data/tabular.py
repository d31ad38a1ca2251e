"""The csv source: a table with a header row, numeric features and label or target columns."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.raw import Raw, checked, refuse_special, split_off
from dltrain.errors import DataError


def read_csv(cfg: DatasetConfig) -> Raw:
    """A CSV with a header; numeric features; labels as integers or class names, or numeric
    targets (one column or several: a regression's)."""
    header, rows = _csv_rows(cfg.path)  # type: ignore[arg-type]
    if cfg.test_path is not None:
        test_header, test_rows = _csv_rows(cfg.test_path)
        if test_header != header:
            raise DataError(f"{cfg.test_path}: its columns differ from {cfg.path}.")
    else:
        train, test = split_off(len(rows), cfg.test_split, cfg.test_split_seed)
        rows, test_rows = [rows[i] for i in train], [rows[i] for i in test]
    targets = cfg.label_columns
    features = cfg.feature_columns or [c for c in header if c not in targets]
    for column in [*targets, *features]:
        if column not in header:
            raise DataError(f"{cfg.path}: no column '{column}'. Columns: {', '.join(header)}."
                            f"{_headless(header)}{_not_commas(header)}")
    labels = sorted({row[header.index(column)] for row in rows + test_rows for column in targets})
    # Whole numbers are class ids, other numbers a regression's targets, the rest class names.
    class_names = None if all(_is_float(label) for label in labels) else labels
    if class_names is not None and len(targets) > 1:
        raise DataError(f"{cfg.path}: target columns {', '.join(targets)} must hold numbers; "
                        f"found {', '.join(v for v in labels if not _is_float(v))[:60]}.")
    x_train, y_train = _csv_arrays(rows, header, features, cfg, class_names)
    x_test, y_test = _csv_arrays(test_rows, header, features, cfg, class_names)
    return checked(Raw(x_train, y_train, x_test, y_test, class_names,
                       targets if class_names is None else None, features), str(cfg.path))


def _headless(header: list[str]) -> str:
    """The classic pima-indians-diabetes.csv has no header row: its first row of numbers is
    read as the column names."""
    if not all(_is_float(name) for name in header):
        return ""
    return (" Those are numbers: the file seems to have no header row. Add one as its first line, "
            "a name for each column (e.g. a,b,c,label), and name the label column by it.")


def _not_commas(header: list[str]) -> str:
    """A spreadsheet's regional CSV separates values with semicolons, a TSV with tabs: to the
    csv module, either is a file of one column."""
    if len(header) != 1:
        return ""
    for separator, name in ((";", "semicolons"), ("\t", "tabs")):
        if separator in header[0]:
            return (f" The header row is one column holding {name}: the file seems to separate "
                    f"its values with {name}, and dltrain reads commas. Save it as "
                    "comma-separated CSV.")
    return ""


def _csv_rows(path: Path) -> tuple[list[str], list[list[str]]]:
    refuse_special(path)
    if not path.is_file():
        raise DataError(f"{path}: no such CSV file.")
    table = [(number, row) for number, row in csv_records(path) if row]
    if len(table) < 2:
        raise DataError(f"{path}: a CSV dataset needs a header row and at least one data row.")
    header = csv_header(path, table[0][1])
    for number, row in table[1:]:
        if len(row) != len(header):
            raise DataError(f"{path}, line {number}: {len(row)} values for {len(header)} columns.")
    return header, [row for _, row in table[1:]]


def csv_header(path: Path, row: list[str]) -> list[str]:
    """The column names of a header row, stripped as they are matched; a name given twice is
    refused: a row's values were matched to the first or the last of them, silently."""
    header = [name.strip() for name in row]
    for index, name in enumerate(header):
        if name in header[:index]:
            raise DataError(f"{path}: column '{name}' appears twice in the header (columns "
                            f"{header.index(name) + 1} and {index + 1}); every column needs its "
                            "own name. Rename or remove one.")
    return header


def csv_records(path: Path, data: bytes | None = None) -> Iterator[tuple[int, list[str]]]:
    """Each record of a CSV file with the line it ends on. UTF-8, with or without the byte
    order mark a spreadsheet's 'CSV UTF-8' writes; text that is not, or a record the csv module
    refuses, is a DataError naming its line. `data`: the file's bytes, where already read."""
    data = path.read_bytes() if data is None else data
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataError(f"{path}, line {line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); "
                        "save the file as UTF-8 (a spreadsheet's 'CSV UTF-8').") from None
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        for record in reader:
            yield reader.line_num, record
    except csv.Error as exc:
        raise DataError(f"{path}, line {reader.line_num}: not a readable CSV ({exc}).") from None


def _is_int(text: str) -> bool:
    return text.strip().lstrip("-").isdigit()


def _csv_arrays(rows: list[list[str]], header: list[str], features: list[str],
                cfg: DatasetConfig, class_names: list[str] | None) -> tuple[np.ndarray, ...]:
    columns = [header.index(name) for name in features]
    label_at = [header.index(name) for name in cfg.label_columns]
    x = np.empty((len(rows), len(columns)), dtype=np.float32)
    for i, row in enumerate(rows):
        try:
            x[i] = [float(row[c]) for c in columns]
        except ValueError:
            bad = next(features[j] for j, c in enumerate(columns) if not _is_float(row[c]))
            raise DataError(f"{cfg.path}: column '{bad}' has a non-numeric value "
                            f"{row[header.index(bad)]!r}.") from None
    if not np.isfinite(x).all():
        bad = features[int(np.argwhere(~np.isfinite(x))[0][1])]
        raise DataError(f"{cfg.path}: column '{bad}' has a value that is not a finite number.")
    if class_names:
        return x, np.asarray([class_names.index(row[label_at[0]]) for row in rows], dtype=np.int64)
    y = np.asarray([[float(row[at]) for at in label_at] for row in rows], dtype=np.float64)
    # Whole numbers past 2**53 stay floats: cast to int64 they would wrap (to negative ids).
    whole = all(_is_int(row[at]) for row in rows for at in label_at) and bool(
        (np.abs(y) < 2**53).all())
    return x, y.astype(np.int64) if whole else y


def _is_float(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
