"""Classify image files or CSV rows with a trained run, prepared exactly like its training data;
a regression's run gives values in its targets' own units."""

from __future__ import annotations

import io
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dltrain.backend import decode_image, use_backend
from dltrain.data.image_size import check_pixels
from dltrain.data.images import SIGNATURES
from dltrain.data.raw import refuse_special
from dltrain.data.tabular import csv_header, csv_records
from dltrain.errors import DataError, RunError
from dltrain.report.evaluate import check_single_run, completed_model, load_model, run_config
from dltrain.runs import layout as runs
from dltrain.runs.preparation import check_outputs, read_preparation

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}
STDIN_NAMES = ("-", "/dev/stdin")
STDIN_LIMIT = 1 << 30  # an image or a CSV of rows; more is a file's work


def predict_files(run_dir: Path, files: list[Path], top_k: int, backend: str | None = None,
                  model_path: Path | None = None) -> list[dict[str, Any]]:
    """The top-k classes with probabilities for every image file and every CSV row, or for a
    regression the predicted value of each target (`values`, standardisation undone), by the
    run's model.keras (a completed run's) or by `model_path` (a checkpoint)."""
    check_single_run(run_dir, "predict")
    model_path = model_path or completed_model(run_dir, "Predict with")
    config = run_config(run_dir / runs.CONFIG_FILE)
    use_backend(backend or config.backend)
    if not (run_dir / runs.PREPARATION_FILE).is_file():
        raise RunError(f"{run_dir}: no {runs.PREPARATION_FILE}; predict needs a run made by "
                       "this version of dltrain fit.")
    saved, preparation = read_preparation(run_dir / runs.PREPARATION_FILE,
                                          config.model.input_shape)
    # A flat model input may take images, flattened by preparation.apply.
    shape = preparation.flatten_from or config.model.input_shape
    check_stdin_once(files)
    entries = [entry for path in files
               for entry in read_inputs(path, shape, config.dataset, preparation.feature_names)]
    if not entries:
        raise DataError("predict: no inputs given.")
    # Seconds: after the inputs, so a bad one is named at once.
    model = load_model(model_path, config.training.jit_compile)
    check_outputs(run_dir / runs.PREPARATION_FILE, saved, model.output_shape[-1])
    names = [entry.name for entry in entries]
    x = preparation.apply(np.stack([entry.values for entry in entries]))
    outputs = model.predict(x, verbose=0)
    task = config.task_spec
    results = task.predictions(names, outputs, saved, preparation, config.from_logits, top_k)
    for result, entry in zip(results, entries, strict=True):
        if entry.actual is not None:
            result["actual"] = task.actual(entry.actual, saved, config.dataset.label_map)
    return results


class Entry(NamedTuple):
    """One input to predict: its name, its values as read, and its own labels where the input
    holds them (a CSV row with the training data's label columns)."""

    name: str
    values: np.ndarray
    actual: dict[str, str] | None = None


def read_inputs(path: Path, input_shape: list[int], dataset: Any,
                feature_names: list[str] | None = None) -> list[Entry]:
    """The entries of one argument: an image, a CSV's rows, a folder's images and CSVs, or
    standard input ('-' or /dev/stdin) holding an image or CSV rows."""
    if str(path) in STDIN_NAMES:
        return read_data(Path("stdin"), read_stdin(), input_shape, dataset, feature_names)
    if path.is_dir():
        return [entry for file in folder_inputs(path)
                for entry in read_inputs(file, input_shape, dataset, feature_names)]
    refuse_special(path, "predict reads image and CSV files, folders of them, or standard "
                   "input given as '-'.")
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [Entry(str(path), read_image(path, input_shape))]
    if path.suffix.lower() == ".csv":
        return read_rows(path, dataset, input_shape, feature_names)
    raise DataError(f"{path}: predict reads images ({', '.join(sorted(IMAGE_SUFFIXES))}) or .csv "
                    "files.")


def check_stdin_once(files: list[Path]) -> None:
    given = [str(path) for path in files if str(path) in STDIN_NAMES]
    if len(given) > 1:
        raise DataError(f"predict: standard input is given twice ({' and '.join(given[:2])}); "
                        "it can be read once.")


def folder_inputs(folder: Path) -> list[Path]:
    """The images and CSV files directly inside a folder, sorted by name."""
    files = sorted(path for path in folder.iterdir() if path.is_file()
                   and path.suffix.lower() in {*IMAGE_SUFFIXES, ".csv"})
    if files:
        return files
    message = (f"{folder}: is a folder without images ({', '.join(sorted(IMAGE_SUFFIXES))}) or "
               ".csv files.")
    inner = sorted(path.name for path in folder.iterdir() if path.is_dir())
    if inner:
        message += (f" predict reads the files directly inside a folder, not its sub-folders "
                    f"({', '.join(inner[:5])}{', ...' if len(inner) > 5 else ''}); name them: "
                    f"dltrain predict RUN {folder / inner[0]}")
    raise DataError(message)


def read_stdin() -> bytes:
    """Standard input's bytes, refused when it is a terminal (nothing was piped: reading would
    wait for typing), empty, or larger than predict takes."""
    hint = "pipe an image or CSV rows into it, e.g. dltrain predict RUN - < rows.csv."
    if sys.stdin is None:
        raise DataError(f"predict -: standard input is closed; {hint}")
    if sys.stdin.isatty():
        raise DataError(f"predict -: standard input is a terminal; {hint}")
    data = sys.stdin.buffer.read(STDIN_LIMIT + 1)
    if not data:
        raise DataError(f"predict -: standard input is empty; {hint}")
    if len(data) > STDIN_LIMIT:
        raise DataError(f"predict -: standard input holds more than {STDIN_LIMIT:,} bytes; save "
                        "it as a file and predict on the file.")
    return data


def read_data(name: Path, data: bytes, input_shape: list[int], dataset: Any,
              feature_names: list[str] | None) -> list[Entry]:
    """Bytes that are an image (by its first bytes) or else CSV text, named `name`."""
    if data.startswith(SIGNATURES):
        return [Entry(str(name), read_image(name, input_shape, data))]
    return read_rows(name, dataset, input_shape, feature_names, data)


def read_image(path: Path, input_shape: list[int], data: bytes | None = None) -> np.ndarray:
    """Decode, convert to the model's channels, resize to its height and width (bilinear)."""
    if len(input_shape) != 3:
        raise DataError(f"{path}: the model takes inputs of shape {input_shape}, not images.")
    height, width, channels = input_shape
    data = path.read_bytes() if data is None else data
    check_pixels(io.BytesIO(data), str(path))
    try:
        array = decode_image(data, channels, (height, width))
    except ValueError as exc:  # ImageDecodeError; Pillow's past its MAX_TEXT_CHUNK
        raise DataError(f"{path}: not a readable image ({exc}).") from None
    return array[..., 0] if channels == 1 else array


def read_rows(path: Path, dataset: Any, input_shape: list[int] | None = None,
              feature_names: list[str] | None = None, data: bytes | None = None) -> list[Entry]:
    """Each row's features as floats, named path:line: the columns the model trained on, by
    name (`feature_names`, from preprocessing.json; a run made before it was recorded: the
    dataset's feature columns, else every column but its labels), in the training order
    whatever the file's. Where the file has all the label columns, each row's labels come
    with it."""
    records = ((number, row) for number, row in csv_records(path, data) if row)
    header = csv_header(path, next(records, (1, []))[1])  # as training reads it
    features = feature_names or dataset.feature_columns or [
        c for c in header if c not in dataset.label_columns]
    missing = [column for column in features if column not in header]
    if missing:
        raise DataError(f"{path}: missing feature column(s) {', '.join(missing)}; the model "
                        f"takes {', '.join(features)} (in any order).")
    width = None if input_shape is None else int(np.prod(input_shape))
    if width is not None and len(features) != width:
        shown = ", ".join(features[:8]) + (", ..." if len(features) > 8 else "")
        raise DataError(f"{path}: {len(features)} feature values per row ({shown}), "
                        f"but the model takes {width} (input shape {list(input_shape or [])}).")
    labelled = bool(dataset.label_columns) and all(c in header for c in dataset.label_columns)
    out = []
    for number, values in records:
        row = dict(zip(header, values, strict=False))  # a short row's missing values: not numbers
        try:
            array = np.array([float(row.get(column, "")) for column in features], dtype=np.float32)
        except (TypeError, ValueError):
            raise DataError(f"{path}, line {number}: a feature value is not a number.") from None
        if not np.isfinite(array).all():  # refused in training data, so no answer here either
            raise DataError(f"{path}, line {number}: a feature value is not a finite number "
                            "(NaN or infinite).")
        actual = {column: row.get(column, "") for column in dataset.label_columns} \
            if labelled else None
        out.append(Entry(f"{path}:{number}", array, actual))
    return out
