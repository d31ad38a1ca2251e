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


def test_best_yaml_of_a_smoke_search_keeps_the_config_as_written(tmp_path) -> None:
    """`tune --smoke` wrote a best.yaml of 1 epoch on 256 samples, and its hint did not say."""
    import yaml

    from conftest import CONFIGS
    from dltrain.config.load import load_config
    from dltrain.search.results import best_config
    from dltrain.search.tune import smoke_settings

    raw = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    raw["search"] = {"method": "grid", "objective": "val_accuracy", "parameters": {
        "optimizer.learning_rate": {"choice": [0.001, 0.003]}}}
    path = tmp_path / "grid.yaml"
    path.write_text(yaml.safe_dump(raw))
    written = load_config(path, ["training.batch_size=32"]).config
    smoked = load_config(path, ["training.batch_size=32"], smoke=True).config
    settings = smoke_settings(written, smoked)
    assert {".".join(map(str, s["key"])): (s["written"], s["smoke"]) for s in settings} == {
        "training.epochs": (4, 1), "dataset.train_limit": (None, 256),
        "dataset.test_limit": (None, 128), "training.steps_per_execution": ("auto", 1)}
    best = yaml.safe_load(best_config(smoked.model_dump(mode="json"), str(path),
                                      {"optimizer.learning_rate": 0.003}, settings))
    assert best["training"]["epochs"] == 4 and best["training"]["batch_size"] == 32
    assert best["training"]["steps_per_execution"] == "auto"
    assert best["dataset"].get("train_limit") is None and best["dataset"].get("test_limit") is None
    assert best["optimizer"]["learning_rate"] == 0.003 and "search" not in best


def test_the_train_it_hint_says_what_best_yaml_holds(tmp_path) -> None:
    from dltrain.search.results import print_summary

    trial = {"number": 3, "state": "complete", "params": {"optimizer.learning_rate": 0.003},
             "objective": 0.85, "epochs": 1, "seconds": 2.0, "error": None}
    document = {"trials": [trial], "parameters": ["optimizer.learning_rate"],
                "objective": "val_accuracy", "best": trial, "notes": [], "smoke": [
                    {"key": ["training", "epochs"], "written": 4, "smoke": 1},
                    {"key": ["dataset", "train_limit"], "written": None, "smoke": 256}]}
    console = Console(file=io.StringIO(), width=80, record=True)
    print_summary(console, document, tmp_path / "search")
    text = " ".join(console.export_text().split())
    assert ("best.yaml: the config as written with trial 3's values "
            "(optimizer.learning_rate=0.003); without --smoke's settings, which the trials ran "
            "with: training.epochs 4 (trials: 1), dataset.train_limit unset (trials: 256). "
            f"train it: dltrain fit {tmp_path / 'search' / 'best.yaml'}") in text
    del document["smoke"]
    console = Console(file=io.StringIO(), width=80, record=True)
    print_summary(console, document, tmp_path / "search")
    assert ("best.yaml: the config as written with trial 3's values "
            f"(optimizer.learning_rate=0.003). train it: dltrain fit "
            f"{tmp_path / 'search' / 'best.yaml'}") in " ".join(console.export_text().split())
