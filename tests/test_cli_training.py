"""`dltrain show` and `fit` on configs with Keras names Keras does not know: refused early."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from conftest import CONFIGS, run_cli, write_yaml
from dltrain.config.names import load_catalog

QUICKSTART = CONFIGS / "quickstart.yaml"
DENSE = "- Dense: {units: 64, activation: relu}"  # line 14 of the quickstart
OPTIMIZER = "optimizer: {name: adam, learning_rate: 0.001}"  # line 16
BAD = {
    "layer": (DENSE, "- Dens: {units: 64, activation: relu}",
              "model.layers.3.Dens (line 14): unknown layer 'Dens'. Did you mean 'Dense'?"),
    "argument": (DENSE, "- Dense: {unit: 64, activation: relu}",
                 "model.layers.3.Dense (line 14): unknown argument 'unit' for Dense. "
                 "Did you mean 'units'? Dense takes: activation,"),
    "activation": (DENSE, "- Dense: {units: 64, activation: relu6x}",
                   "model.layers.3.Dense.activation (line 14): unknown activation 'relu6x'. "
                   "Did you mean 'relu6'? Known: celu, elu,"),
    "size": (DENSE, "- Dense: {units: 1000000000000, activation: relu}",
             "model.layers.3.Dense.units (line 14): must be at most 1,000,000. "
             "Received: 1000000000000."),
    "optimizer": (OPTIMIZER, "optimizer: {name: adam, learning_rat: 0.01}",
                  "optimizer (line 16): unknown argument 'learning_rat' for Adam. "
                  "Did you mean 'learning_rate'?"),
}


def bad_config(tmp_path: Path, kind: str) -> tuple[Path, str]:
    old, new, message = BAD[kind]
    text = QUICKSTART.read_text()
    assert text.count(old) == 1
    path = write_yaml(tmp_path / f"bad_{kind}.yaml", text.replace(old, new))
    return path, f"error: {path}: {message}"


@pytest.mark.parametrize("kind", list(BAD))
@pytest.mark.parametrize("command", [["show", "--no-summary"], ["show"], ["fit"]])
def test_unknown_keras_names_are_refused_by_show_and_fit_alike(
        kind: str, command: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    path, message = bad_config(tmp_path, kind)
    code, out, err = run_cli(capsys, *command, path)
    assert code == 2, out + err
    assert " ".join(err.split()).startswith(message), err
    assert "ok" not in out
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


def test_show_no_summary_says_what_it_checked(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "show", "--no-summary", QUICKSTART)
    assert code == 0
    assert " ".join(out.split()) == (
        f"ok: {QUICKSTART} (keys, values, layer/optimizer/loss/metric names and arguments "
        f"checked against Keras {load_catalog()['keras']}; argument values and shapes are checked "
        "when the model is built: run without --no-summary)")


def test_show_no_summary_says_when_the_catalog_is_for_another_keras(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dltrain.config.catalog.installed_keras", lambda: "3.0.0")
    code, out, _ = run_cli(capsys, "show", "--no-summary", QUICKSTART)
    assert code == 0
    assert " ".join(out.split()) == (
        f"ok: {QUICKSTART} (keys and values checked; layer/optimizer/loss/metric names and "
        f"arguments not checked: the catalog is for Keras {load_catalog()['keras']}, not the "
        "installed 3.0.0; they, argument values and shapes are checked when the model is built: "
        "run without --no-summary)")


@pytest.mark.parametrize("command", ["show --no-summary", "fit"])
def test_name_errors_come_back_without_importing_tensorflow(command: str, tmp_path: Path) -> None:
    paths = [str(bad_config(tmp_path, kind)[0]) for kind in BAD]
    code = ("import sys; from dltrain.cli import main; "
            f"codes = [main([*{command.split()!r}, path]) for path in sys.argv[1:]]; "
            "print(codes, 'tensorflow' in sys.modules, 'keras' in sys.modules)")
    result = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True,
                            text=True, cwd=tmp_path, timeout=60)
    assert result.stdout.strip().endswith("[2, 2, 2, 2, 2] False False"), (
        result.stdout + result.stderr)
