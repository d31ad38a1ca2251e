"""A regression's report: MAE, RMSE and R² against the targets' scale, in the targets' units."""

from __future__ import annotations

from typing import Any

import numpy as np


def regression_report(y_true: np.ndarray, y_pred: np.ndarray,
                      names: list[str]) -> dict[str, Any]:
    """Overall and per-target errors; R² as scikit-learn's r2_score (averaged over targets).

    `target_std` is the spread of the true test targets: an RMSE is read against it (an RMSE
    equal to it is no better than always predicting the mean).
    """
    from sklearn import metrics

    y_true = np.asarray(y_true, dtype=np.float64).reshape(len(y_true), -1)
    y_pred = np.asarray(y_pred, dtype=np.float64).reshape(y_true.shape)
    per_target = [{"target": name, **_scores(y_true[:, i], y_pred[:, i])}
                  for i, name in enumerate(names)]
    return {
        "mae": float(metrics.mean_absolute_error(y_true, y_pred)),
        "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
        "r2": _r2(y_true, y_pred),
        "target_std": float(y_true.std(axis=0).mean()),
        "per_target": per_target,
    }


def _scores(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    from sklearn import metrics

    return {"mae": float(metrics.mean_absolute_error(y_true, y_pred)),
            "rmse": float(np.sqrt(metrics.mean_squared_error(y_true, y_pred))),
            "r2": _r2(y_true, y_pred), "target_std": float(y_true.std())}


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    from sklearn import metrics

    if len(y_true) < 2:  # undefined for one sample; scikit-learn warns and returns NaN
        return float("nan")
    return float(metrics.r2_score(y_true, y_pred))
