"""The learning curves' axes: whole epochs, and the units the figures are in (issue 27)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dltrain.report import plots


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
