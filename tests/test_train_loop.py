"""What a diverged run's final message says, against the history.csv it leaves (issue 27)."""

from __future__ import annotations

import math
from pathlib import Path

from dltrain.train.loop import kept_after_divergence


def test_a_nan_in_the_first_epoch_names_the_row_history_csv_keeps(tmp_path: Path) -> None:
    rows = [{"epoch": 1, "loss": math.nan, "accuracy": 0.1, "seconds": 0.4}]
    message = kept_after_divergence(tmp_path, 0, rows)
    assert message.startswith("Epoch 1 stopped at the non-finite loss; history.csv's row 1 "
                              "holds its figures up to then. No epoch completed, so no "
                              "checkpoint was kept;")


def test_a_nan_heard_before_its_epoch_ended_names_the_epoch_without_a_row(
        tmp_path: Path) -> None:
    # JAX and torch raise at the batch: the stopped epoch writes no row.
    rows = [{"epoch": 1, "loss": 0.5, "seconds": 0.4}, {"epoch": 2, "loss": 0.4, "seconds": 0.3}]
    (tmp_path / "last.keras").write_bytes(b"")
    message = kept_after_divergence(tmp_path, 2, rows)
    assert message == (f"Epoch 3 stopped at the non-finite loss; history.csv has no row for it. "
                       f"The last good epoch (2) is kept in {tmp_path / 'last.keras'}.")


def test_curves_of_standardised_targets_say_so_and_others_do_not() -> None:
    import numpy as np

    from dltrain.data.prepare import Preparation
    from dltrain.train.loop import curve_units

    class Split:
        preparation = Preparation(rescale=1.0)

    assert curve_units(Split()) is None  # type: ignore[arg-type]
    Split.preparation.scale_targets(np.array([[1.0], [3.0]]), ["y"], True)
    assert curve_units(Split()) == "on standardised targets"  # type: ignore[arg-type]
