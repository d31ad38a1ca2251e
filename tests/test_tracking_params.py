"""A tracked run's params (the config under --set key paths), tags and result metrics."""

from __future__ import annotations

import json
from pathlib import Path

from conftest import CONFIGS
from dltrain.config.load import load_config
from dltrain.runs import records
from dltrain.tracking.params import (
    config_params,
    flatten,
    kind_of,
    numeric_metrics,
    run_tags,
)


def test_every_leaf_is_a_param_under_the_key_path_set_takes_with_its_yaml_value() -> None:
    data = {"seed": 42, "optimizer": {"name": "adam", "learning_rate": 0.001, "schedule": None},
            "metrics": ["accuracy", {"name": "auc", "curve": "PR"}], "training": {
                "shuffle": True, "callbacks": [], "extra": {}}}
    assert flatten(data) == {
        "seed": "42", "optimizer.name": "adam", "optimizer.learning_rate": "0.001",
        "optimizer.schedule": "null", "metrics.0": "accuracy", "metrics.1.name": "auc",
        "metrics.1.curve": "PR", "training.shuffle": "true", "training.callbacks": "[]",
        "training.extra": "{}"}


def test_a_key_mlflow_refuses_and_a_value_past_its_limit_are_mended() -> None:
    assert flatten({"model": {"layers": [{"Dense(x)": {"units": "u" * 7000}}]}}) == {
        "model.layers.0.Dense_x_.units": "u" * 6000}


def test_the_shipped_quickstart_gives_its_layers_by_index() -> None:
    config = load_config(CONFIGS / "quickstart.yaml").config
    params = config_params(config)
    assert params["name"] == "quickstart"
    assert params["training.epochs"] == str(config.training.epochs)
    assert params["dataset.name"] == "fashion_mnist_mini"
    assert any(key.startswith("model.layers.0.") for key in params)
    assert not any(key.startswith("tracking") for key in params)  # no section, no params


def test_kind_says_smoke_synthetic_or_fit() -> None:
    assert [kind_of(True, True), kind_of(False, True), kind_of(False, False)] == [
        "smoke", "synthetic", "fit"]


def test_results_are_the_test_scores_and_the_top_level_numbers() -> None:
    metrics = {"test": {"accuracy": 0.5, "loss": 1}, "epochs_run": 3, "best_epoch": None,
               "synthetic": True, "final_epoch": {"loss": 2.0}, "train_seconds": 1.5}
    assert numeric_metrics(metrics) == {"test_accuracy": 0.5, "test_loss": 1.0,
                                        "epochs_run": 3.0, "train_seconds": 1.5}


def test_tags_come_from_the_run_records(tmp_path: Path) -> None:
    config = load_config(CONFIGS / "quickstart.yaml").config
    records.write(tmp_path, records.Environment.of({"dltrain": "9.9", "device": "CPU"}))
    data = {"x_train": {"shape": [2], "sample_sha256": "ab"}}
    records.write(tmp_path, records.Manifest.of({"git": {"commit": "c0ffee", "dirty": False},
                                                 "data": data}))
    tags = run_tags(tmp_path, config, "smoke")
    assert tags["dltrain.kind"] == "smoke" and tags["dltrain.version"] == "9.9"
    assert tags["dltrain.device"] == "CPU" and tags["dltrain.backend"] == config.backend
    assert tags["mlflow.source.git.commit"] == "c0ffee" and tags["dltrain.git_dirty"] == "false"
    import hashlib

    assert tags["dltrain.data_sha256"] == hashlib.sha256(
        json.dumps(data, sort_keys=True).encode()).hexdigest()
