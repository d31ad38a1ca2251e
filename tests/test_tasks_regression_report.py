"""A regression's reports: MAE, RMSE, R² and the target's scale, its plots, predict, runs, compare."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from conftest import run_cli
from dltrain.report.tables import print_scores, runs_table
from dltrain.runs import records
from dltrain.runs.listing import compare, summarise
from dltrain.runs.records import Metrics, RunState
from dltrain.tasks.regression_report import regression_report

REGRESSION = """\
name: tiny_regression
seed: 1
dataset:
  name: csv
  path: {path}
  label_column: {label}
  feature_columns: [a, b, c]
  validation_split: 0.2
  standardize: true
  standardize_target: true
model:
  input_shape: [3]
  layers:
    - Dense: {{units: 16, activation: relu}}
    - Dense: {{units: {units}}}
optimizer: {{name: adam, learning_rate: 0.02}}
loss: mse
training: {{epochs: 12, batch_size: 16, tensorboard: false}}
"""


def write_table(path: Path, rows: int = 160, seed: int = 0) -> Path:
    """y = 30 a - 10 b + 500 (far from 0 and wide: standardisation matters); z = 5 c - 2."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 3))
    lines = ["a,b,c,y,z"] + [f"{a:.5f},{b:.5f},{c:.5f},{30 * a - 10 * b + 500:.4f},"
                             f"{5 * c - 2:.4f}" for a, b, c in x]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_regression_report_matches_scikit_learn() -> None:
    from sklearn import metrics

    rng = np.random.default_rng(0)
    y_true = rng.normal(size=(50, 2)) * [10, 1] + [100, 0]
    y_pred = y_true + rng.normal(size=(50, 2))
    report = regression_report(y_true, y_pred, ["y", "z"])
    assert report["r2"] == pytest.approx(metrics.r2_score(y_true, y_pred))
    assert report["mae"] == pytest.approx(metrics.mean_absolute_error(y_true, y_pred))
    assert report["rmse"] == pytest.approx(np.sqrt(metrics.mean_squared_error(y_true, y_pred)))
    assert [row["target"] for row in report["per_target"]] == ["y", "z"]
    z = report["per_target"][1]
    assert z["r2"] == pytest.approx(metrics.r2_score(y_true[:, 1], y_pred[:, 1]))
    assert z["target_std"] == pytest.approx(np.std(y_true[:, 1]))
    assert report["target_std"] == pytest.approx(np.std(y_true, axis=0).mean())


def test_scores_show_mae_rmse_r2_and_the_scale_per_target() -> None:
    report = regression_report(np.array([[1.0], [2.0], [3.0], [4.0]]),
                               np.array([[1.5], [2.0], [2.5], [4.0]]), ["mpg"])
    buffer = io.StringIO()
    print_scores(Console(file=buffer, width=100), "Test results",
                 {"test": {"loss": 0.1}, "regression": report})
    text = buffer.getvalue()
    assert "Regression (test split)" in text
    header = next(line for line in text.splitlines() if "RMSE" in line)
    assert [cell.strip() for cell in header.split("┃")[1:6]] == ["target", "MAE", "RMSE", "R²",
                                                                 "std"]
    row = next(line for line in text.splitlines() if "mpg" in line)
    assert [cell.strip() for cell in row.split("│")[1:6]] == ["mpg", "0.2500", "0.3536",
                                                              "0.9000", "1.1180"]


REGRESSION_METRICS = Metrics(test={"loss": 0.25, "mae": 0.4}, epochs_run=5, train_seconds=2.0,
                             samples_per_second=100.0,
                             regression={"mae": 2.1, "rmse": 2.9, "r2": 0.8512, "target_std": 7.8,
                                         "per_target": []})


def test_runs_shows_r2_where_a_classifier_shows_accuracy(tmp_path: Path) -> None:
    run = tmp_path / "auto_mpg-20261126-031500"
    run.mkdir()
    records.write(run, RunState(state="completed"))
    records.write(run, REGRESSION_METRICS)
    row = summarise(run)
    assert row["accuracy"] is None and row["r2"] == 0.8512 and row["rmse"] == 2.9
    buffer = io.StringIO()
    Console(file=buffer, width=80, highlight=False).print(runs_table([row], tmp_path))
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    line = next(line for line in lines if run.name in line)
    assert "R² 0.851" in line


def test_compare_shows_the_regression_metrics(tmp_path: Path) -> None:
    runs = []
    for name, r2 in (("a", 0.8), ("b", 0.9)):
        run = tmp_path / name
        run.mkdir()
        (run / "config.yaml").write_text(f"name: {name}\n")
        metrics = REGRESSION_METRICS.model_copy(deep=True)
        assert metrics.regression is not None
        metrics.regression["r2"] = r2
        records.write(run, metrics)
        runs.append(run)
    rows = {row["metric"]: row for row in compare(*runs)["metrics"]}
    assert rows["R²"]["delta"] == pytest.approx(0.1)
    assert rows["MAE"]["a"] == 2.1 and rows["RMSE"]["b"] == 2.9 and "target std" in rows
    assert rows["mae"]["a"] == 0.4  # Keras's own metric, in the units it trained on


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny regression fit with standardised targets, shared by the tests below."""
    folder = tmp_path_factory.mktemp("regression")
    table = write_table(folder / "table.csv")
    config = folder / "regression.yaml"
    config.write_text(REGRESSION.format(path=table, label="y", units=1))
    from dltrain.cli import main

    assert main(["fit", str(config), "--run-dir", str(folder / "run")]) == 0
    return folder / "run"


@pytest.mark.slow
def test_fit_reports_r2_that_scikit_learn_agrees_with(regression_run: Path) -> None:
    from sklearn import metrics as sk

    from dltrain.config.load import load_config
    from dltrain.data.prepare import load_splits
    from dltrain.report.evaluate import load_model

    metrics = json.loads((regression_run / "metrics.json").read_text())
    report = metrics["regression"]
    assert "report" not in metrics and "accuracy" not in metrics["test"]
    config = load_config(regression_run / "config.yaml").config
    assert config.metrics == ["mae"]
    splits = load_splits(config.dataset, config.seed, config.loss_kind)
    preparation = splits.preparation
    predicted = preparation.undo_target(load_model(regression_run / "model.keras").predict(
        splits.x_test, verbose=0))
    actual = preparation.undo_target(splits.y_test)
    assert report["r2"] == pytest.approx(sk.r2_score(actual, predicted), abs=1e-5)
    assert report["mae"] == pytest.approx(sk.mean_absolute_error(actual, predicted), rel=1e-4)
    assert report["target_std"] == pytest.approx(float(np.std(actual)), rel=1e-4)
    assert 400 < float(actual.mean()) < 600  # in the target's own units, not standardised
    assert report["r2"] > 0.8, report
    saved = json.loads((regression_run / "preprocessing.json").read_text())
    assert saved["target_names"] == ["y"] and len(saved["target_mean"]) == 1
    for name in ("predicted_vs_actual.png", "residuals.png"):
        assert (regression_run / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert not (regression_run / "confusion_matrix.png").exists()


@pytest.mark.slow
def test_eval_writes_the_regression_report_and_plots(regression_run: Path, tmp_path: Path,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    for name in ("predicted_vs_actual.png", "residuals.png"):
        (run / name).unlink()
    code, out, err = run_cli(capsys, "eval", run)
    assert code == 0, err
    assert "Regression (test split)" in out and "R²" in out
    assert "on standardised targets" in " ".join(out.split())
    evaluation = json.loads((run / "eval.json").read_text())
    fitted = json.loads((run / "metrics.json").read_text())["regression"]
    assert evaluation["regression"]["r2"] == pytest.approx(fitted["r2"], abs=1e-5)
    assert (run / "predicted_vs_actual.png").is_file() and (run / "residuals.png").is_file()


@pytest.mark.slow
def test_predict_prints_values_in_the_targets_units(regression_run: Path, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,c\n0,0,0\n1,0,0\n0,1,0\n")
    code, out, err = run_cli(capsys, "predict", run_dir := regression_run, rows, "--json")
    assert code == 0, err
    results = json.loads(out[out.index("["):])
    values = [result["values"]["y"] for result in results]
    # y = 30 a - 10 b + 500: a small net gets near it, in the target's own units.
    assert values[0] == pytest.approx(500, abs=25)
    assert values[1] - values[0] == pytest.approx(30, abs=12)
    assert values[2] - values[0] == pytest.approx(-10, abs=8)
    code, out, _ = run_cli(capsys, "predict", run_dir, rows)
    assert "probability" not in out and "y" in out and f"{values[0]:.2f}" in out
    assert "actual" not in out  # the rows hold no y
    rows.write_text("a,b,c,y\n1,0,0,530\n0,1,0,n/a\n")
    code, out, err = run_cli(capsys, "predict", run_dir, rows, "--json")
    assert code == 0, err
    assert [result["actual"] for result in json.loads(out[out.index("["):])] == [
        {"y": 530.0}, {"y": None}]
    code, out, _ = run_cli(capsys, "predict", run_dir, rows)
    assert "actual y" in out and "530.00" in out


@pytest.mark.slow
def test_several_targets_fit_and_predict(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    table = write_table(tmp_path / "table.csv", rows=120)
    config = tmp_path / "two.yaml"
    config.write_text(REGRESSION.format(path=table, label="[y, z]", units=2)
                      .replace("epochs: 12", "epochs: 2"))
    code, out, err = run_cli(capsys, "fit", config, "--run-dir", tmp_path / "run")
    assert code == 0, err
    report = json.loads((tmp_path / "run" / "metrics.json").read_text())["regression"]
    assert [row["target"] for row in report["per_target"]] == ["y", "z"]
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,c\n0,0,0\n")
    code, out, err = run_cli(capsys, "predict", tmp_path / "run", rows, "--json")
    assert code == 0, err
    assert set(json.loads(out[out.index("["):])[0]["values"]) == {"y", "z"}


def test_runs_sort_by_r2_puts_the_best_regression_first(tmp_path: Path) -> None:
    from dltrain.runs.listing import list_runs

    for name, r2 in (("low", 0.2), ("high", 0.9), ("classifier", None)):
        run = tmp_path / name
        run.mkdir()
        records.write(run, RunState(state="completed"))
        metrics = REGRESSION_METRICS.model_copy(deep=True)
        if r2 is None:
            metrics = Metrics.of({k: v for k, v in metrics.as_json().items() if k != "regression"})
        else:
            assert metrics.regression is not None
            metrics.regression["r2"] = r2
        records.write(run, metrics)
    assert [row["name"] for row in list_runs(tmp_path, "r2")] == ["high", "low", "classifier"]


@pytest.mark.slow
def test_cross_validation_of_a_regression_reports_r2_and_rmse_per_fold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from sklearn import metrics as sk

    from dltrain.data.folds import make_folds
    from dltrain.report.evaluate import load_model

    table = write_table(tmp_path / "table.csv", rows=90)
    config = tmp_path / "regression.yaml"
    config.write_text(REGRESSION.format(path=table, label="y", units=1)
                      .replace("epochs: 12", "epochs: 3"))
    code, out, err = run_cli(capsys, "cv", config, "--folds", "2", "--run-dir", tmp_path / "cv")
    assert code == 0, err
    assert "val R²" in out and "val RMSE" in out
    record = json.loads((tmp_path / "cv" / "cv.json").read_text())
    assert set(record["validation"]) == {"MAE", "RMSE", "R²"}  # in the target's own units
    assert "loss" in record["per_fold"][0]["keras"]["validation"]
    # Fold 0's validation R², recomputed in the target's own units, the fold standardised by
    # the rows it trained on.
    from dltrain.config.load import load_config
    from dltrain.data.folds import fold_splits
    from dltrain.data.prepare import load_splits, standardized

    loaded = load_config(tmp_path / "cv" / "config.yaml").config
    dataset = loaded.dataset.model_copy(update={  # as cv reads it
        "validation_split": 0.0, "standardize": False, "standardize_target": False})
    raw = load_splits(dataset, loaded.seed, loaded.loss_kind)
    fold = make_folds(raw.y_train, 2, loaded.seed, stratified=False)[0]
    splits = standardized(fold_splits(raw, fold), loaded.dataset)
    model = load_model(tmp_path / "cv" / "fold-0" / "model.keras")
    predicted = splits.preparation.undo_target(model.predict(splits.x_val, verbose=0))
    actual = raw.y_train[fold.validation]
    assert record["per_fold"][0]["validation"]["R²"] == pytest.approx(
        sk.r2_score(actual, predicted), abs=1e-4)


@pytest.mark.slow
def test_export_builds_the_target_scaling_in(regression_run: Path, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """The exported model answers in the target's units, as predict does, and passes parity."""
    from dltrain.report.export_runtimes import run_saved_model

    run = tmp_path / "run"
    shutil.copytree(regression_run, run)
    code, out, err = run_cli(capsys, "export", run, "--format", "saved_model")
    assert code == 0, out + err
    entry = json.loads((run / "export.json").read_text())["saved_model"]
    assert entry["status"] == "passed", entry
    rows = tmp_path / "rows.csv"
    rows.write_text("a,b,c\n0,0,0\n1,0,0\n")
    code, out, err = run_cli(capsys, "predict", run, rows, "--json")
    assert code == 0, err
    predicted = [result["values"]["y"] for result in json.loads(out[out.index("["):])]
    exported = run_saved_model(Path(entry["path"]), np.array([[0, 0, 0], [1, 0, 0]], np.float32))
    np.testing.assert_allclose(exported.reshape(-1), predicted, rtol=1e-4)
