"""Classify image files or CSV rows with a trained run, prepared exactly like its training data;
a regression's run gives values in its targets' own units."""

from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dltrain.backend import ImageDecodeError, decode_image, use_backend
from dltrain.data.prepare import Preparation
from dltrain.data.tabular import csv_records
from dltrain.errors import DataError, RunError
from dltrain.report.evaluate import check_single_run, completed_model, load_model, run_config
from dltrain.report.metrics import probabilities
from dltrain.runs import layout as runs
from dltrain.runs.preparation import check_outputs, read_preparation

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif"}


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
    model = load_model(model_path)
    check_outputs(run_dir / runs.PREPARATION_FILE, saved, model.output_shape[-1])
    # A flat model input may take images, flattened by preparation.apply.
    shape = preparation.flatten_from or config.model.input_shape
    entries = [entry for path in files
               for entry in read_inputs(path, shape, config.dataset, preparation.feature_names)]
    if not entries:
        raise DataError("predict: no inputs given.")
    names = [entry.name for entry in entries]
    x = preparation.apply(np.stack([entry.values for entry in entries]))
    outputs = model.predict(x, verbose=0)
    classes: list[str] = []
    if config.is_regression:
        results = predicted_values(names, outputs, preparation)
    else:
        classes = saved.get("class_names") or [str(i) for i in range(saved.get("num_classes", 0))]
        results = [{"input": name, "top": top_classes(row, classes, top_k)} for name, row
                   in zip(names, probabilities(outputs, config.from_logits), strict=True)]
    for result, entry in zip(results, entries, strict=True):
        if entry.actual is not None:
            result["actual"] = (actual_values(entry.actual) if config.is_regression else
                                actual_class(entry.actual, classes, config.dataset.label_map))
    return results


def predicted_values(names: list[str], outputs: np.ndarray,
                     preparation: Preparation) -> list[dict[str, Any]]:
    values = preparation.undo_target(np.asarray(outputs).reshape(len(names), -1))
    targets = preparation.target_names or [f"y{i}" for i in range(values.shape[1])]
    return [{"input": name, "values": dict(zip(targets, map(float, row), strict=True))}
            for name, row in zip(names, values, strict=True)]


def actual_values(labels: dict[str, str]) -> dict[str, float | None]:
    """A regression row's own targets, where the CSV holds them (None where not a number)."""
    def number(text: str) -> float | None:
        try:
            return float(text)
        except ValueError:
            return None

    return {column: number(text) for column, text in labels.items()}


def actual_class(labels: dict[str, str], classes: list[str],
                 label_map: dict[int, int] | None) -> str:
    """A classified row's own label, named as the run names its classes: a class name as it is,
    a class id (through dataset.label_map, as training read it) by its class's name."""
    text = next(iter(labels.values())).strip()
    if text in classes and label_map is None:
        return text
    try:
        number = float(text)
    except ValueError:
        return text
    if not number.is_integer():  # 1.5, inf, nan: no class id
        return text
    index = int(number)
    if label_map is not None:
        index = label_map.get(index, -1)
    return classes[index] if 0 <= index < len(classes) else text


def top_classes(scores: np.ndarray, classes: list[str], k: int) -> list[dict[str, Any]]:
    scores = np.asarray(scores, dtype=float).reshape(-1)
    if scores.size == 1:  # a sigmoid unit: the probability of class 1
        scores = np.array([1 - scores[0], scores[0]])
    names = classes if len(classes) == scores.size else [str(i) for i in range(scores.size)]
    order = np.argsort(-scores, kind="stable")[:k]
    return [{"class": names[i], "index": int(i), "probability": float(scores[i])} for i in order]


class Entry(NamedTuple):
    """One input to predict: its name, its values as read, and its own labels where the input
    holds them (a CSV row with the training data's label columns)."""

    name: str
    values: np.ndarray
    actual: dict[str, str] | None = None


def read_inputs(path: Path, input_shape: list[int], dataset: Any,
                feature_names: list[str] | None = None) -> list[Entry]:
    if not path.is_file():
        raise DataError(f"{path}: no such file.")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return [Entry(str(path), read_image(path, input_shape))]
    if path.suffix.lower() == ".csv":
        return read_rows(path, dataset, input_shape, feature_names)
    raise DataError(f"{path}: predict reads images ({', '.join(sorted(IMAGE_SUFFIXES))}) or .csv "
                    "files.")


def read_image(path: Path, input_shape: list[int]) -> np.ndarray:
    """Decode, convert to the model's channels, resize to its height and width (bilinear)."""
    if len(input_shape) != 3:
        raise DataError(f"{path}: the model takes inputs of shape {input_shape}, not images.")
    height, width, channels = input_shape
    try:
        array = decode_image(path.read_bytes(), channels, (height, width))
    except ImageDecodeError as exc:
        raise DataError(f"{path}: not a readable image ({exc}).") from None
    return array[..., 0] if channels == 1 else array


def read_rows(path: Path, dataset: Any, input_shape: list[int] | None = None,
              feature_names: list[str] | None = None) -> list[Entry]:
    """Each row's features as floats, named path:line: the columns the model trained on, by
    name (`feature_names`, from preprocessing.json; a run made before it was recorded: the
    dataset's feature columns, else every column but its labels), in the training order
    whatever the file's. Where the file has all the label columns, each row's labels come
    with it."""
    records = ((number, row) for number, row in csv_records(path) if row)
    header = [name.strip() for name in next(records, (1, []))[1]]  # as training reads it
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
