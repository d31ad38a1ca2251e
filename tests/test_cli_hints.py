"""A mistyped command line: the command meant, and the exact --set line for an option that is a
config value (Keras 2 habits included), exit 2 (dltrain/cli/hints.py)."""

from __future__ import annotations

import pytest

from conftest import run_cli


@pytest.mark.parametrize(("typed", "meant"), [("train", "fit"), ("evaluate", "eval"),
                                              ("fti", "fit"), ("comapre", "compare")])
def test_an_unknown_command_names_the_closest_one(typed: str, meant: str,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, typed, "x.yaml")
    assert code == 2 and out == ""
    assert f"No such command '{typed}'. Did you mean '{meant}'?" in err
    assert f"dltrain {meant} x.yaml" in err  # the line to run instead


def test_an_unknown_command_without_a_close_one_lists_the_commands(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "zzzzzz")
    assert code == 2 and "No such command 'zzzzzz'" in err and "Did you mean" not in err
    assert "dltrain --help" in err


@pytest.mark.parametrize(("args", "line"), [
    (["fit", "x.yaml", "--lr", "0.01"], "--set optimizer.learning_rate=0.01"),
    (["fit", "x.yaml", "--lr=0.01"], "--set optimizer.learning_rate=0.01"),
    (["fit", "x.yaml", "--learning-rate", "3e-4"], "--set optimizer.learning_rate=3e-4"),
    (["fit", "x.yaml", "--learning_rate", "0.1"], "--set optimizer.learning_rate=0.1"),
    (["fit", "x.yaml", "--optimizer", "sgd"], "--set optimizer.name=sgd"),
    (["fit", "x.yaml", "--nb-epoch", "3"], "--epochs 3"),  # fit has an option for the key
    (["fit", "x.yaml", "--batch_size", "64"], "--batch-size 64"),
    (["cv", "x.yaml", "--nb_epoch=2"], "--set training.epochs=2"),  # cv has no --epochs
    (["show", "x.yaml", "--epochs", "3"], "--set training.epochs=3"),
    (["tune", "x.yaml", "--batch-size", "64"], "--set training.batch_size=64"),
    (["cv", "x.yaml", "--loss", "mse"], "--set loss=mse"),
    (["fit", "x.yaml", "--patience", "5"], "--set training.early_stopping.patience=5"),
    (["fit", "x.yaml", "--clipnorm", "1"], "--set optimizer.clipnorm=1"),  # a config key
    (["fit", "x.yaml", "--mixed-precision", "bf16"], "--set training.mixed_precision=bf16"),
    (["fit", "x.yaml", "--training.epochs", "2"], "--epochs 2"),
    (["fit", "x.yaml", "--lr"], "--set optimizer.learning_rate=VALUE"),
    (["fit", "x.yaml", "--lr="], "--set optimizer.learning_rate=VALUE"),
])
def test_an_option_that_is_a_config_value_gets_its_set_line(
        args: list[str], line: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, *args)
    assert code == 2 and out == ""
    option = args[2].split("=")[0]
    assert f"No such option: {option}. Did you mean {line}?" in err, err
    assert "Possible options: --help" not in err


def test_an_unknown_option_of_a_command_without_set_keeps_clicks_message(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "runs", "--lr", "0.1")
    assert code == 2 and "No such option: --lr" in err and "--set" not in err
