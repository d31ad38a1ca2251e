"""Pictures of a run: learning curves, the confusion matrix or a regression's predictions
against the truth and its residuals, as PNG files; and lr-find's loss against the rate."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from dltrain.runs.files import save_figure


def _figure(rows: int, columns: int, size: tuple[float, float]) -> tuple[Any, Any]:
    """A figure and its grid of axes (always 2-D), made without pyplot: pyplot's import and
    its interactive-mode check after every call cost about a second a fit (a profile of
    quickstart's: 0.99 s importing it, 0.44 s in 1,372 checks) and draw nothing different,
    since these pictures only ever go to files."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=size)
    return figure, figure.subplots(rows, columns, squeeze=False)


SHORT_RUN = 10  # epochs up to which each one gets its tick


def learning_curves(history: list[dict[str, float]], best_epoch: int | None, monitor: str,
                    title: str, path: Path, units: str | None = None) -> None:
    """Loss and each metric per epoch, train against validation, the best epoch marked.

    `units` says what the figures are measured on where it is not the data as given (a
    regression trained on standardised targets: "on standardised targets"); each axis says so.
    """
    names = [key for key in history[0] if key not in ("epoch", "seconds", "learning_rate")
             and not key.startswith("val_")]
    figure, axes = _figure(1, len(names), (5 * len(names), 3.8))
    epochs = [row["epoch"] for row in history]
    for axis, name in zip(axes[0], names, strict=True):
        axis.plot(epochs, [row[name] for row in history], marker="o", label="train")
        if f"val_{name}" in history[0]:
            axis.plot(epochs, [row[f"val_{name}"] for row in history], marker="o",
                      label="validation")
        if best_epoch is not None:
            axis.axvline(best_epoch, color="grey", linestyle="--",
                         label=f"best epoch ({best_epoch}, by {monitor})")
        axis.set_title(name.replace("_", " "))
        axis.set_xlabel("epoch")
        _whole_epochs(axis, epochs)
        axis.set_ylabel(name if units is None else f"{name} ({units})")
        axis.grid(alpha=0.3)
        axis.legend(fontsize="small")
    figure.suptitle(title)
    save_figure(figure, path)


def lr_find_curve(rates: list[float], losses: list[float], smoothed: list[float],
                  suggested: float | None, rule: str, title: str, path: Path) -> None:
    """Each step's loss (faint) and the smoothed loss against the rate on a log axis, the
    suggested rate marked (None: the curve had none to give); the height stops a little above
    the first loss, where the divergence would otherwise flatten the rest."""
    figure, axes = _figure(1, 1, (7, 4.2))
    axis = axes[0, 0]
    axis.plot(rates, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="loss per step")
    axis.plot(rates, smoothed, color="tab:blue", label="smoothed loss")
    if suggested is not None:
        axis.axvline(suggested, color="tab:red", linestyle="--", label=f"suggested: {suggested:g}")
    axis.set_xscale("log")
    finite = [value for value in smoothed if np.isfinite(value)]
    if finite:
        low, first = min(finite), finite[0]
        axis.set_ylim(low - 0.1 * (first - low) - 1e-12, first + 0.5 * (first - low) + 1e-12)
    axis.set_xlabel("learning rate (log scale)")
    axis.set_ylabel("training loss")
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
    axis.set_title(f"{title}\n" + (f"suggested: the {rule}" if suggested is not None
                                    else "no rate to suggest: the loss did not fall"),
                   fontsize="medium")
    save_figure(figure, path)


def _whole_epochs(axis: Any, epochs: list[float]) -> None:
    """Ticks on whole epochs only: matplotlib's integer locator falls back to fractions when
    fewer than two whole numbers are in view (a one-epoch run showed 0.96 ... 1.04)."""
    if len(epochs) <= SHORT_RUN:
        axis.set_xticks([int(epoch) for epoch in epochs])
    else:
        axis.xaxis.get_major_locator().set_params(integer=True)


def confusion_matrix(matrix: list[list[int]], class_names: list[str], title: str,
                     path: Path) -> None:
    """Rows normalised to 1 (recall per class), counts in each cell, classes on both axes."""
    counts = np.asarray(matrix, dtype=float)
    rates = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    size = max(4.5, 0.6 * len(class_names) + 2)
    figure, axes = _figure(1, 1, (size + 1, size))
    axis = axes[0, 0]
    image = axis.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    figure.colorbar(image, ax=axis, fraction=0.046, label="fraction of the true class")
    ticks = range(len(class_names))
    axis.set_xticks(ticks, class_names, rotation=45, ha="right")
    axis.set_yticks(ticks, class_names)
    axis.set_xlabel("predicted class")
    axis.set_ylabel("true class")
    for row in ticks:
        for column in ticks:
            axis.text(column, row, f"{rates[row, column]:.2f}", ha="center", va="center",
                      fontsize=7, color="white" if rates[row, column] > 0.5 else "black")
    axis.set_title(title)
    save_figure(figure, path)


def predicted_vs_actual(y_true: np.ndarray, y_pred: np.ndarray, names: list[str], title: str,
                        path: Path) -> None:
    """Each target's predictions against the truth, on the diagonal when perfect."""
    figure, axes = _target_axes(len(names))
    for axis, index in zip(axes, range(len(names)), strict=True):
        actual, predicted = y_true[:, index], y_pred[:, index]
        axis.scatter(actual, predicted, s=12, alpha=0.6)
        low, high = min(actual.min(), predicted.min()), max(actual.max(), predicted.max())
        axis.plot([low, high], [low, high], color="grey", linestyle="--", label="perfect")
        _label(axis, names[index], f"actual {names[index]}", f"predicted {names[index]}")
    figure.suptitle(title)
    save_figure(figure, path)


def residuals(y_true: np.ndarray, y_pred: np.ndarray, names: list[str], title: str,
              path: Path) -> None:
    """Each target's error (predicted - actual) against the prediction: a pattern means bias."""
    figure, axes = _target_axes(len(names))
    for axis, index in zip(axes, range(len(names)), strict=True):
        predicted = y_pred[:, index]
        axis.scatter(predicted, predicted - y_true[:, index], s=12, alpha=0.6)
        axis.axhline(0, color="grey", linestyle="--", label="no error")
        _label(axis, names[index], f"predicted {names[index]}", "residual (predicted - actual)")
    figure.suptitle(title)
    save_figure(figure, path)


def _target_axes(count: int) -> tuple[Any, list[Any]]:
    columns = min(count, 3)
    rows = -(-count // columns)
    figure, axes = _figure(rows, columns, (4.5 * columns, 4.2 * rows))
    flat = list(axes.reshape(-1))
    for spare in flat[count:]:
        spare.set_visible(False)
    return figure, flat[:count]


def _label(axis: Any, title: str, x: str, y: str) -> None:
    axis.set_title(title)
    axis.set_xlabel(x)
    axis.set_ylabel(y)
    axis.grid(alpha=0.3)
    axis.legend(fontsize="small")
