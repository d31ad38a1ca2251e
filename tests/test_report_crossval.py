"""The cross-validation table at the widths CI logs get, with long metric names."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from dltrain.report.crossval import print_cv

METRICS = ["sparse_top_k_categorical_accuracy", "loss", "precision_of_class_one"]


def fold(number: int) -> dict:
    scores = {name: 0.123456 + number / 10 + index / 100 for index, name in enumerate(METRICS)}
    return {"fold": number, "train_samples": 12345, "validation_samples": 1234, "epochs_run": 12,
            "validation": scores, "test": scores}


@pytest.mark.parametrize("width", [80, 60])
def test_the_folds_table_keeps_every_number_and_fold_whole(width: int) -> None:
    record = {"folds": 3, "per_fold": [fold(0), fold(1), fold(2)], "std": "ddof=1",
              "validation": {name: {"mean": 0.5, "std": 0.25} for name in METRICS},
              "test": {name: {"mean": 0.5, "std": 0.25} for name in METRICS},
              "refit_result": {"run_dir": "refit", "train_samples": 12,
                               "test": {METRICS[0]: 0.75, "loss": 0.6}}}
    console = Console(file=io.StringIO(), width=width, record=True)
    print_cv(console, record, "runs/cv")
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines()) and "…" not in text, text
    words = set(re.split(r"[\s│┃]+", text))
    assert {"12345/1234", "0.1235", "0.2235", "0.3235", "0.1335", "0.1435", "0.5000",
            "0.2500", "0.7500", METRICS[0]} <= words, text
