"""A regression's report: MAE, RMSE and R² against the targets' scale, in the targets' units."""

from __future__ import annotations

from typing import Any

import numpy as np

from dltrain.tasks import scores as score


def regression_report(y_true: np.ndarray, y_pred: np.ndarray,
                      names: list[str]) -> dict[str, Any]:
    """Overall and per-target errors; R² as scikit-learn's r2_score gives it (averaged over
    targets).

    `target_std` is the spread of the true test targets: an RMSE is read against it (an RMSE
    equal to it is no better than always predicting the mean).
    """
    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    per_target = [{"target": name, **_scores(y_true[:, i], y_pred[:, i])}
                  for i, name in enumerate(names)]
    return {
        "mae": score.mean_absolute_error(y_true, y_pred),
        "rmse": float(np.sqrt(score.mean_squared_error(y_true, y_pred))),
        "r2": _r2(y_true, y_pred),
        "target_std": float(y_true.std(axis=0).mean()),
        "per_target": per_target,
    }


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    return {"mae": score.mean_absolute_error(y_true, y_pred),
            "rmse": float(np.sqrt(score.mean_squared_error(y_true, y_pred))),
            "r2": _r2(y_true, y_pred), "target_std": float(y_true.std())}


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    if len(y_true) < 2:  # undefined for one sample; scikit-learn warns and returns NaN
        return float("nan")
    return score.r2(y_true, y_pred)
