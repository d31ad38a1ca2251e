"""`dltrain cv`: K child runs in one parent, their folds, mean ± std, interrupt and resume."""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import CONFIGS, run_cli
from dltrain.config.load import load_config
from dltrain.data.folds import make_folds
from dltrain.data.prepare import load_splits
from dltrain.runs import records
from dltrain.runs.layout import fingerprint, read_history

QUICKSTART = CONFIGS / "quickstart.yaml"


def read(path: Path) -> Any:
    return json.loads(path.read_text())


def training_data(parent: Path) -> tuple[np.ndarray, np.ndarray]:
    """All the training data of the parent's config, as the cross-validation divides it."""
    config = load_config(parent / "config.yaml").config
    dataset = config.dataset.model_copy(update={"validation_split": 0.0})
    splits = load_splits(dataset, config.seed, config.loss_kind)
    return splits.x_train, splits.y_train


def shipped_csv_config(folder: Path, name: str) -> Path:
    """A shipped CSV config copied into `folder`, its data path made absolute."""
    path = folder / f"{name}.yaml"
    path.write_text((CONFIGS / f"{name}.yaml").read_text().replace(
        "../dltrain", str(CONFIGS.parent / "dltrain")))
    return path


def by_hand(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1), written out."""
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


@pytest.mark.slow
def test_cv_three_folds_smoke(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "runs" / "cv"
    code, out, err = run_cli(capsys, "cv", QUICKSTART, "--folds", "3", "--smoke", "--run-dir",
                             parent, "--json")
    assert code == 0, err
    record = read(parent / "cv.json")
    assert next(iter(record)) == "schema_version"  # written through its record, as the parent's
    assert record.pop("schema_version") == read(parent / "environment.json")["schema_version"] \
        == records.SCHEMA_VERSION
    assert json.loads(out) == {"run_dir": str(parent), **record}  # the file's keys, as before
    assert records.read(parent, records.CrossValidation).as_json() == record
    assert read(parent / "run.json")["state"] == "completed"
    assert "epochs: 1" in (parent / "config.yaml").read_text()  # the config as run: --smoke
    children = sorted(path.name for path in parent.iterdir() if path.is_dir())
    assert children == ["fold-0", "fold-1", "fold-2"]

    x, y = training_data(parent)
    assert len(y) == record["samples"] == 256
    folds = make_folds(y, 3, seed=42, stratified=True)
    held = np.concatenate([fold.validation for fold in folds])
    assert sorted(held.tolist()) == list(range(len(y)))  # disjoint, and together all of it
    totals = np.bincount(y, minlength=10)
    for fold, entry in zip(folds, record["per_fold"], strict=True):
        child = parent / f"fold-{fold.index}"
        assert read(child / "run.json")["state"] == "completed"
        data = read(child / "manifest.json")["data"]
        # The child trained on the other folds and validated on its own.
        assert data["x_val"] == fingerprint(x[fold.validation])
        assert data["x_train"] == fingerprint(x[fold.train])
        assert entry["train_samples"] + entry["validation_samples"] == 256
        counts = np.bincount(y[fold.validation], minlength=10)
        assert entry["validation_class_counts"] == {
            str(c): int(n) for c, n in enumerate(counts) if n}
        assert np.abs(counts - totals / 3).max() < 1  # stratified: each class split in thirds
        # No early stopping: model.keras is the last epoch's, whose val_* Keras logged.
        last = read_history(child / "history.csv")[-1]
        assert entry["validation"]["accuracy"] == pytest.approx(last["val_accuracy"], abs=1e-4)
        assert entry["test"] == read(child / "metrics.json")["test"]

    for section in ("validation", "test"):
        for name in ("accuracy", "loss"):
            values = [entry[section][name] for entry in record["per_fold"]]
            mean, std = by_hand(values)
            assert record[section][name]["mean"] == pytest.approx(mean, rel=1e-9)
            assert record[section][name]["std"] == pytest.approx(std, rel=1e-9)

    assert run_cli(capsys, "eval", parent / "fold-1")[0] == 0  # each child is a complete run
    code, out, err = run_cli(capsys, "runs", tmp_path / "runs", "--json")
    assert code == 0, err
    rows = json.loads(out)
    assert [(row["name"], row["kind"]) for row in rows] == [("cv", "cv")]  # folds not listed
    assert rows[0]["accuracy"] == pytest.approx(record["test"]["accuracy"]["mean"])
    assert rows[0]["accuracy_std"] == pytest.approx(record["test"]["accuracy"]["std"])


@pytest.mark.slow
def test_a_regressions_folds_are_standardised_by_their_own_rows_and_scored_in_the_targets_units(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # One cross-validation for both (each fold's fits cost seconds): the standardisation is the
    # same for a classifier's folds (stratified, their split checked by the smoke test above).
    # The table put Keras's standardised MAE beside an RMSE in mpg, and no test figure in mpg.
    parent = tmp_path / "runs" / "cv"
    code, out, err = run_cli(capsys, "cv", shipped_csv_config(tmp_path, "tabular_regression"),
                             "--folds", "2", "--run-dir", parent, "--set", "training.epochs=2")
    assert code == 0, err
    record = read(parent / "cv.json")
    for entry in record["per_fold"]:
        figures = read(parent / entry["run_dir"] / "metrics.json")["regression"]
        assert entry["test"] == {"MAE": figures["mae"], "RMSE": figures["rmse"],
                                 "R²": figures["r2"]}
        assert set(entry["validation"]) == {"MAE", "RMSE", "R²"}
        assert entry["keras"]["units"] == "standardised targets"
        assert entry["keras"]["test"] == read(parent / entry["run_dir"] / "metrics.json")["test"]
    mean, _ = by_hand([entry["test"]["MAE"] for entry in record["per_fold"]])
    assert record["test"]["MAE"]["mean"] == pytest.approx(mean)
    assert "val MAE" in out and "val mae" not in out
    code, out, err = run_cli(capsys, "runs", tmp_path / "runs", "--json")
    assert json.loads(out)[0]["r2"] == pytest.approx(record["test"]["R²"]["mean"])

    # Every fold had the statistics of all the training rows, its held-out ones included.
    config = load_config(parent / "config.yaml").config
    dataset = config.dataset.model_copy(update={
        "validation_split": 0.0, "standardize": False, "standardize_target": False})
    raw = load_splits(dataset, config.seed, config.loss_kind)
    assert record["stratified"] is False  # a regression's folds: not by class
    means = []
    for fold in make_folds(raw.y_train, 2, seed=config.seed, stratified=False):
        saved = read(parent / f"fold-{fold.index}" / "preprocessing.json")
        np.testing.assert_allclose(saved["mean"], raw.x_train[fold.train].mean(axis=0), rtol=1e-5)
        np.testing.assert_allclose(saved["target_mean"], raw.y_train[fold.train].mean(axis=0),
                                   rtol=1e-5)
        means.append(saved["mean"])
    assert not np.allclose(means[0], means[1])


def start_cv(parent: Path, *args: str) -> subprocess.Popen:
    script = Path(sys.executable).with_name("dltrain")
    return subprocess.Popen([str(script), "cv", str(QUICKSTART), "--folds", "3", "--smoke",
                             "--run-dir", str(parent), *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "CI": "1"})


def wait_until(done: Any, process: subprocess.Popen, what: str, limit: float = 180) -> None:
    """Poll `done()` until it holds (bounded by `limit` seconds)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        if done():
            return
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"no {what} within {limit}s: {process.communicate(timeout=30)}")


def folds_recorded(parent: Path) -> int:
    try:
        return len(read(parent / "cv.json")["per_fold"])
    except (OSError, ValueError):
        return 0


@pytest.mark.slow
def test_interrupted_cv_resumes_only_the_missing_folds(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parent = tmp_path / "cv"
    # Many short epochs, so fold 1 is still training when the signal comes.
    process = start_cv(parent, "--refit", "--set", "training.epochs=8")
    wait_until(lambda: folds_recorded(parent) == 1
               and len(read_history(parent / "fold-1" / "history.csv")) >= 1, process,
               "fold 0 completed and fold 1 training")
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, out + err
    assert f"Resume with: dltrain cv --resume {parent}" in out
    assert read(parent / "run.json")["state"] == "interrupted"
    assert read(parent / "fold-1" / "run.json")["state"] == "interrupted"
    partial = read(parent / "cv.json")  # what is done is kept: one fold, no std yet
    assert [entry["fold"] for entry in partial["per_fold"]] == [0]
    assert partial["validation"]["accuracy"] == {
        "mean": partial["per_fold"][0]["validation"]["accuracy"], "std": None}
    first = (parent / "fold-0" / "environment.json").read_text()
    interrupted = (parent / "fold-1" / "environment.json").read_text()

    code, out, err = run_cli(capsys, "cv", "--resume", parent)
    assert code == 0, err
    assert f"resuming cross-validation {parent}: 1 of 3 folds completed" in out
    assert "fold 0: completed earlier, kept" in out
    assert out.count("run directory: ") == 3  # fit ran three times: folds 1 and 2, the refit
    assert (parent / "fold-0" / "environment.json").read_text() == first  # not run again
    assert (parent / "fold-1" / "environment.json").read_text() != interrupted  # run anew
    record = read(parent / "cv.json")
    assert [entry["fold"] for entry in record["per_fold"]] == [0, 1, 2]
    assert all(entry["epochs_run"] == 8 for entry in record["per_fold"])
    assert read(parent / "run.json")["state"] == "completed"
    # --refit, asked at the start, is done by the resume: one fit on all the training data.
    metrics = read(parent / "refit" / "metrics.json")
    assert record["refit_result"]["test"] == metrics["test"]
    assert metrics["train_samples"] == 256 and metrics["validation_samples"] == 0
    assert "Refit: test split" in out and "refit on all 256 training samples: refit/" in out
    code, out, err = run_cli(capsys, "cv", "--resume", parent)  # nothing left: kept as it is
    assert code == 0 and out.count("completed earlier, kept") == 3


def fold_record(index: int, accuracy: float, loss: float) -> dict[str, Any]:
    return {"fold": index, "train_samples": 8, "validation_samples": 4, "epochs_run": 2,
            "validation": {"accuracy": accuracy, "loss": loss},
            "test": {"accuracy": accuracy - 0.1, "loss": loss + 0.1}}


def test_summary_is_the_mean_and_sample_std_of_each_metric() -> None:
    from dltrain.search.cv_summary import summarise

    entries = [fold_record(0, 0.5, 1.0), fold_record(1, 0.7, 0.8), fold_record(2, 0.9, 0.3)]
    summary = summarise(entries)
    assert summary["validation"]["accuracy"]["mean"] == pytest.approx(0.7)
    assert summary["validation"]["accuracy"]["std"] == pytest.approx(0.2)  # ddof=1, not 0.163
    assert summary["test"]["loss"] == pytest.approx(dict(zip(
        ("mean", "std"), by_hand([1.1, 0.9, 0.4]), strict=True)))
    assert summarise(entries[:1])["validation"]["loss"] == {"mean": 1.0, "std": None}


def test_the_folds_table_fits_80_columns_with_mean_and_std() -> None:
    import io

    from rich.console import Console

    from dltrain.report.crossval import print_cv
    from dltrain.search.cv_summary import summarise

    entries = [fold_record(0, 0.5, 1.0), fold_record(1, 0.7, 0.8)]
    record = {"folds": 2, "per_fold": entries, "std": "sample standard deviation (ddof=1)",
              "refit_result": {"run_dir": "refit", "train_samples": 12,
                               "test": {"accuracy": 0.75, "loss": 0.6}}, **summarise(entries)}
    buffer = io.StringIO()
    print_cv(Console(file=buffer, width=80), record, "runs/cv")
    lines = buffer.getvalue().splitlines()
    assert max(len(line) for line in lines) <= 80
    assert [cell.strip() for cell in next(line for line in lines if "mean" in line).split(
        "│")[1:-1]] == ["mean", "", "", "0.6000", "0.9000", "0.5000", "1.0000"]
    assert [cell.strip() for cell in next(line for line in lines if "std" in line
                                          and "│" in line).split("│")[1:-1]] == [
        "std", "", "", "0.1414", "0.1414", "0.1414", "0.1414"]
    assert lines[lines.index("cross-validation over 2 folds (mean ± std):") + 1:][:2] == [
        "  val accuracy 0.6000 ± 0.1414", "  val loss 0.9000 ± 0.1414"]
    assert "refit on all 12 training samples: refit/" in lines


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda path: path.stem)
def test_each_shipped_config_gets_its_folds_validation_and_nothing_else(path: Path) -> None:
    from dltrain.search.cv import variant

    loaded = load_config(path)
    folds = variant(loaded, 1 / 3, "each fold validates on its held-out fold").config
    assert folds.dataset.validation_split == pytest.approx(1 / 3)
    assert folds.model_dump(exclude={"dataset"}) == loaded.config.model_dump(exclude={"dataset"})
    assert folds.dataset.model_dump(exclude={"validation_split"}) == (
        loaded.config.dataset.model_dump(exclude={"validation_split"}))


def test_a_parent_mlflow_refused_is_marked_failed_not_left_running(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from dltrain.config.load import dump
    from dltrain.errors import RunError
    from dltrain.runs import layout
    from dltrain.search import cv
    from dltrain.tracking.run import TrackedRun

    def refuse(*args: Any) -> None:
        raise RunError("MLflow at http://host:5000 refused the run: 403")

    monkeypatch.setattr(TrackedRun, "open", refuse)
    config = load_config(QUICKSTART, ["tracking.mlflow.experiment=exp"]).config
    (tmp_path / "config.yaml").write_text(dump(config))
    layout.set_state(tmp_path, "running", kind="cv")
    with pytest.raises(RunError, match="refused the run"):
        cv.run_folds(tmp_path, {"per_fold": []}, None)  # type: ignore[arg-type]
    state = records.read(tmp_path, records.RunState)
    assert state.state == "failed" and "refused the run" in str(state.error)
