"""A classifier trained on logits (a loss with from_logits: true): what it scores, predicts and
exports are probabilities, and its accuracy cuts at logit 0, as its loss reads the outputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIGS, ROOT, run_cli
from dltrain.cli import main

pytestmark = pytest.mark.slow  # each test here trains or reads a trained model

PIMA = ROOT / "dltrain" / "data" / "shipped" / "pima_diabetes.csv"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tabular_binary with a linear last unit and from_logits: true, 8 epochs."""
    folder = tmp_path_factory.mktemp("logits")
    text = (CONFIGS / "tabular_binary.yaml").read_text()
    for old, new in (("units: 1, activation: sigmoid", "units: 1"),
                     ("loss: binary_crossentropy",
                      "loss: {name: binary_crossentropy, from_logits: true}"),
                     ("../dltrain/data/shipped/pima_diabetes.csv", str(PIMA))):
        assert old in text
        text = text.replace(old, new)
    (folder / "logits.yaml").write_text(text)
    run = folder / "run"
    assert main(["fit", str(folder / "logits.yaml"), "--run-dir", str(run), "--epochs", "8"]) == 0
    return run


def logits_and_labels(run: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The model's own outputs, by Keras, on a split prepared as the run prepared it."""
    import keras

    from dltrain.config.load import load_config
    from dltrain.data.prepare import load_splits
    from dltrain.report.predict import read_preparation

    config = load_config(run / "config.yaml").config
    model = keras.saving.load_model(run / "model.keras")
    if split == "csv":
        table = np.genfromtxt(PIMA, delimiter=",", skip_header=1, dtype=np.float32)
        _, preparation = read_preparation(run / "preprocessing.json")
        x, y = preparation.apply(table[:, :8]), table[:, 8]
    else:
        splits = load_splits(config.dataset, config.seed, config.loss_kind)
        x, y = splits.x_test, splits.y_test
    return model.predict(x, verbose=0).reshape(-1), y.reshape(-1)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-logits.astype(np.float64)))


def test_predict_shows_the_probability_the_logit_stands_for(
        run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # It showed the logits themselves as "probability": 4.22 and -3.22 for one row.
    code, out, err = run_cli(capsys, "predict", run, PIMA, "--json")
    assert code == 0, err
    results = json.loads(out)
    logits, _ = logits_and_labels(run, "csv")
    shown = np.array([next(top["probability"] for top in result["top"] if top["class"] == "1")
                      for result in results])
    np.testing.assert_allclose(shown, sigmoid(logits), atol=1e-5)
    assert all(sum(top["probability"] for top in result["top"]) == pytest.approx(1)
               for result in results)


def test_accuracy_cuts_at_logit_zero_in_keras_and_in_the_report(
        run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "eval", run, "--json")
    assert code == 0, err
    result = json.loads(out)
    logits, labels = logits_and_labels(run, "test")
    expected = float(np.mean((logits >= 0) == labels))
    assert result["report"]["accuracy"] == pytest.approx(expected)
    assert result["test"]["accuracy"] == pytest.approx(expected, abs=1e-6)
    assert result["report"]["threshold"] == 0.5  # of the probability: logit 0


def test_the_export_answers_in_probabilities(run: Path) -> None:
    from dltrain.report import export

    entry = export.export_run(run, "saved_model")
    assert entry["status"] == "passed", entry
    table = np.genfromtxt(PIMA, delimiter=",", skip_header=1, dtype=np.float32)
    got = export.RUNTIMES["saved_model"](Path(entry["path"]), table[:, :8])
    logits, _ = logits_and_labels(run, "csv")
    np.testing.assert_allclose(np.asarray(got).reshape(-1), sigmoid(logits),
                               atol=export.TOLERANCE["saved_model"])
