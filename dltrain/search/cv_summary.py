"""A cross-validation's figures: each fold's validation and test metrics, their mean and std.

The std is the sample standard deviation over the folds (ddof=1: the K folds are a sample of
the ways the data could be split); scikit-learn's cv_results_ report the population one.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.config.schema import Config
from dltrain.data.pipeline import pipeline
from dltrain.data.prepare import Splits
from dltrain.report.evaluate import load_model
from dltrain.runs import layout as runs
from dltrain.tasks.regression_report import regression_report

# A regression's figures in its targets' own units, named as `compare` names them: a fold's
# validation and test columns are these (Keras's loss and metrics are in standardised units with
# dataset.standardize_target; they are kept under the entry's `keras`).
REGRESSION_FIGURES = {"mae": "MAE", "rmse": "RMSE", "r2": "R²"}


def fold_entry(index: int, child: Path, splits: Splits, config: Config, metrics: dict[str, Any],
               counts: dict[str, int] | None) -> dict[str, Any]:
    """cv.json's record of one finished fold.

    Its validation metrics are those of the fold's model.keras on its held-out fold: the model
    whose test metrics are reported (with early stopping's restore_best_weights, the last
    epoch's val_* in history.csv belong to another one).
    """
    validation, figures = validation_metrics(child / runs.MODEL_FILE, splits,
                                             config.training.batch_size)
    entry = {
        "fold": index,
        "run_dir": child.name,
        "train_samples": metrics["train_samples"],
        "validation_samples": metrics["validation_samples"],
        "validation_class_counts": counts,
        "epochs_run": metrics["epochs_run"],
        "best_epoch": metrics["best_epoch"],
        "train_seconds": metrics["train_seconds"],
        "validation": validation,
        "test": metrics["test"],
    }
    if figures is not None:  # a regression: its targets' own units, Keras's figures kept aside
        units = ("standardised targets" if splits.preparation.target_mean is not None
                 else "the targets' own units")
        entry.update(validation=figures, test=regression_figures(metrics.get("regression")),
                     keras={"units": units, "validation": validation, "test": metrics["test"]})
    return entry


def validation_metrics(model_path: Path, splits: Splits,
                       batch_size: int) -> tuple[dict[str, float], dict[str, float] | None]:
    """Keras's metrics of the model on the held-out fold; for a regression also MAE, RMSE and
    R² in the targets' own units (else None)."""
    model = load_model(model_path)
    data = pipeline(splits.x_val, splits.y_val, batch_size)
    results = model.evaluate(data, verbose=0, return_dict=True)
    scores = {key: float(value) for key, value in results.items()}
    preparation = splits.preparation
    if preparation.target_names is None:
        return scores, None
    actual = preparation.undo_target(splits.y_val)  # type: ignore[arg-type]
    predicted = preparation.undo_target(model.predict(data, verbose=0).reshape(actual.shape))
    return scores, regression_figures(regression_report(actual, predicted,
                                                        preparation.target_names))


def regression_figures(report: dict[str, Any] | None) -> dict[str, float]:
    return {shown: report[key] for key, shown in REGRESSION_FIGURES.items()} if report else {}


def summarise(entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and sample std of every validation and test metric the folds share; the std is
    None while fewer than two folds are done."""
    summary: dict[str, Any] = {}
    for section in ("validation", "test"):
        names = [name for name in entries[0][section]
                 if all(name in entry[section] for entry in entries)] if entries else []
        summary[section] = {name: mean_std([entry[section][name] for entry in entries])
                            for name in names}
    return summary


def mean_std(values: list[float]) -> dict[str, float | None]:
    array = np.asarray(values, dtype=np.float64)
    std = float(array.std(ddof=1)) if len(array) > 1 else None
    mean = float(array.mean())
    return {"mean": mean if math.isfinite(mean) else None,
            "std": std if std is None or math.isfinite(std) else None}
