"""The search's table of trials at the widths CI logs get."""

from __future__ import annotations

import io
import re

import pytest
from rich.console import Console

from dltrain.search.results import print_trials

KEYS = ["optimizer.learning_rate", "model.layers.1.Dense.units", "model.layers.3.Dense.units",
        "training.batch_size", "model.layers.2.Dropout.rate"]
ERROR = ("model.layers.1.Dense.units: the model does not fit in memory: 1,234,567,890 "
         "parameters need 4.6 GiB; try fewer units.")


def rows() -> list[dict]:
    made = []
    for number in range(4):
        made.append({"number": number + 10, "state": "complete",
                     "params": {KEYS[0]: 0.000123456 * (number + 1), KEYS[1]: 1024 * (number + 1),
                                KEYS[2]: 64, KEYS[3]: 512, KEYS[4]: 0.123456},
                     "objective": 0.876543 - number / 100, "epochs": 12, "seconds": 1234.5,
                     "error": None})
    made.append({"number": 14, "state": "failed", "params": {KEYS[0]: 0.5, KEYS[1]: 99999},
                 "objective": None, "epochs": None, "seconds": 0.4, "error": ERROR})
    return made


@pytest.mark.parametrize("width", [80, 60])
def test_the_trials_table_never_splits_a_number(width: int) -> None:
    """At 80 columns `tune` wrapped its numbers mid-digit (overflow=fold on every column)."""
    console = Console(file=io.StringIO(), width=width, record=True)
    print_trials(console, rows(), KEYS, "val_accuracy_of_the_model")
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines())
    assert "…" not in text
    words = set(text.split())
    for number in ("0.0001235", "0.0002469", "1024", "4096", "99999", "0.1235", "0.8765",
                   "0.8465", "1234.5s", "10", "11", "12", "13", "14"):
        assert number in words, (number, text)
    assert "see [1]" in text
    assert " ".join(text.split("[1] ", 1)[1].split()) == ERROR
    # Each column named by its key's shortest unique form.
    for name in ("learning_rate", "1.Dense.units", "3.Dense.units", "batch_size", "rate"):
        assert re.search(rf"(^|\s){re.escape(name)}(\s|$)", text), name
