"""The learning curves' axes: whole epochs, and the units the figures are in (issue 27); each
picture saved as savefig's tight crop would save it, drawn once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dltrain.report import plots
from dltrain.runs import files


@pytest.fixture
def drawn(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The figures the plots would save, kept open to read their axes."""
    figures: list[Any] = []
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: figures.append(figure))
    yield figures
    import matplotlib.pyplot as plt

    for figure in figures:
        plt.close(figure)


def ticks(axis: Any) -> list[float]:
    low, high = axis.get_xlim()
    return [tick for tick in axis.get_xticks() if low <= tick <= high]


@pytest.mark.parametrize("epochs", [1, 2, 3, 40])
def test_epoch_ticks_are_whole_epochs(drawn: list[Any], tmp_path: Path, epochs: int) -> None:
    rows = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "accuracy": 0.5, "seconds": 1.0}
            for e in range(1, epochs + 1)]
    plots.learning_curves(rows, 1, "val_loss", "title", tmp_path / "curves.png")
    for axis in drawn[0].axes:
        shown = ticks(axis)
        assert shown and all(float(tick).is_integer() for tick in shown), shown
        assert 1 in shown or epochs > 10


def test_standardised_regression_curves_say_their_units(drawn: list[Any], tmp_path: Path) -> None:
    rows = [{"epoch": 1, "loss": 0.4, "mae": 0.5, "seconds": 1.0}]
    plots.learning_curves(rows, 1, "loss", "title", tmp_path / "curves.png",
                          units="on standardised targets")
    labels = [axis.get_ylabel() for axis in drawn[0].axes]
    assert labels == ["loss (on standardised targets)", "mae (on standardised targets)"]


def test_curves_in_the_data_own_units_carry_no_unit_note(drawn: list[Any],
                                                         tmp_path: Path) -> None:
    rows = [{"epoch": 1, "loss": 0.4, "accuracy": 0.5, "seconds": 1.0}]
    plots.learning_curves(rows, 1, "loss", "title", tmp_path / "curves.png")
    assert [axis.get_ylabel() for axis in drawn[0].axes] == ["loss", "accuracy"]


ROWS = [{"epoch": e, "loss": 1.0 / e, "val_loss": 1.2 / e, "accuracy": 1 - 0.5 / e,
         "val_accuracy": 1 - 0.6 / e, "seconds": 1.0} for e in range(1, 5)]
TRUE, PREDICTED = np.random.default_rng(0).normal(size=(2, 40, 2))
# Each of report.plots' pictures, on data of the shapes a run gives it (a class name long enough
# to stand past the figure's left edge: the crop takes it in).
PICTURES: dict[str, Any] = {
    "curves": lambda path: plots.learning_curves(ROWS, 3, "val_loss", "a run", path),
    "confusion_matrix": lambda path: plots.confusion_matrix(
        [[5, 1, 0], [2, 7, 1], [0, 3, 9]], ["cat", "dog", "a bird of a very long name"],
        "a run: test", path),
    "predicted_vs_actual": lambda path: plots.predicted_vs_actual(TRUE, PREDICTED, ["x", "y"],
                                                                  "a run", path),
    "residuals": lambda path: plots.residuals(TRUE, PREDICTED, ["x", "y"], "a run", path),
    "lr_find": lambda path: plots.lr_find_curve([1e-5, 1e-4, 1e-3, 1e-2], [2.3, 2.1, 1.5, 9.0],
                                                [2.3, 2.2, 1.9, 4.0], 1e-3, "steepest fall",
                                                "a run", path)}


@pytest.mark.parametrize("name", PICTURES)
def test_each_picture_is_the_png_a_tight_savefig_writes_drawn_once(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """savefig's bbox_inches="tight" draws a figure twice (once to measure it); save_figure
    measures it without that draw and saves the same bytes."""
    from matplotlib.figure import Figure

    figures: list[Any] = []
    draws: list[Any] = []
    draw = Figure.draw

    def counted(figure: Any, renderer: Any) -> None:
        draws.append(renderer)
        draw(figure, renderer)

    monkeypatch.setattr(Figure, "draw", counted)
    monkeypatch.setattr(plots, "save_figure", lambda figure, path: (
        figures.append(figure), files.save_figure(figure, path)))
    PICTURES[name](tmp_path / "saved.png")
    assert len(draws) == 1
    [figure] = figures
    figure.savefig(tmp_path / "tight.png", dpi=files.FIGURE_DPI, bbox_inches="tight")
    assert len(draws) == 3  # savefig's own: measured, then drawn
    assert (tmp_path / "saved.png").read_bytes() == (tmp_path / "tight.png").read_bytes()
