"""Every shipped config validates with `dltrain show` and survives a --smoke fit on local data."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, run_cli

SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def local_data(config: Path, request: pytest.FixtureRequest) -> list[str]:
    """--set options pointing a config at local data: MNIST and Fashion-MNIST at the shipped
    real subsets (on random pixels a smoke run's verdict on the loss is a coin toss), CIFAR-10
    at synthetic files in its real format."""
    name = yaml.safe_load(config.read_text())["dataset"]["name"]
    if name in ("mnist", "fashion_mnist"):
        return ["--set", f"dataset.name={name}_mini"]
    fixture = {"cifar10": "cifar_dir"}.get(name)
    if fixture is None:  # shipped with the project
        return []
    return ["--set", f"dataset.data_dir={request.getfixturevalue(fixture)}"]


def test_there_is_a_config_for_each_classic_example() -> None:
    assert {path.stem for path in SHIPPED} >= {
        "quickstart", "mnist_mlp", "mnist_cnn", "cifar_cnn", "mnist_even_odd",
        "tabular_binary", "tabular_regression", "fashion_mnist_cnn"}


@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: path.stem)
def test_show_builds_the_model(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "show", config)
    assert code == 0, err
    assert "parameters:" in out and f"ok: {config}" in out


@pytest.mark.slow
@pytest.mark.parametrize("config", SHIPPED, ids=lambda path: path.stem)
def test_smoke_fit_writes_a_complete_run(config: Path, tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str],
                                         request: pytest.FixtureRequest) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "fit", config, "--smoke", "--run-dir", run,
                             *local_data(config, request))
    assert code == 0, err
    assert "epoch 1/1" in out
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 1
    assert 0 < metrics["test_samples"] <= 128
    assert metrics["train_samples"] + metrics["validation_samples"] <= 256
    assert math.isfinite(metrics["test"]["loss"])
    assert json.loads((run / "run.json").read_text())["state"] == "completed"
    for name in ("config.yaml", "model.keras", "best.keras", "history.csv", "environment.json"):
        assert (run / name).is_file(), name


def test_mnist_configs_smoke_on_the_shipped_real_digits(request: pytest.FixtureRequest) -> None:
    mnist = [path.stem for path in SHIPPED if "dataset.name=mnist_mini" in local_data(path, request)]
    assert mnist == ["mnist_cnn", "mnist_cnn_search", "mnist_even_odd", "mnist_mlp"]
    fashion = [path.stem for path in SHIPPED
               if "dataset.name=fashion_mnist_mini" in local_data(path, request)]
    assert fashion == ["fashion_mnist_best", "fashion_mnist_cnn", "fashion_mnist_gpu",
                       "fashion_mnist_resnet"]
