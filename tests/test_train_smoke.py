"""`dltrain smoke --synthetic`: every shipped config checked offline on stand-in data."""

from __future__ import annotations

import io
import json
import re
import shutil
import socket
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from rich.console import Console

from conftest import CONFIGS, run_cli

DOWNLOADED = {"mnist", "fashion_mnist", "cifar10", "cifar100"}
# A shipped config for each downloaded dataset one of them reads: --synthetic stands in for each
# dataset alike, whatever the model (each shipped model's smoke fit is tests/test_shipped_configs).
ONE_PER_DATASET = ["cifar_cnn", "fashion_mnist_cnn", "mnist_mlp"]


@pytest.fixture
def offline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty home and Keras cache, and downloads pointed at a closed port on loopback."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("KERAS_HOME", str(home / ".keras"))
    monkeypatch.delenv("DLTRAIN_DATA_DIR", raising=False)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("DLTRAIN_DOWNLOAD_URL", f"http://127.0.0.1:{port}/")
    return home


def dataset_of(config: Path) -> str:
    return str(yaml.safe_load(config.read_text())["dataset"]["name"])


@pytest.mark.slow
def test_synthetic_smoke_passes_a_config_per_dataset_offline_marks_runs_and_outlives_a_crash(
        offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One smoke run (each config's fit costs seconds) for three checks: shipped configs pass
    offline on stand-in data for each dataset they download; a synthetic run says so in its
    metrics and manifest; and a config that crashes is one failed row while the others run."""
    # An internal error in one config ended smoke at once: no table, no JUnit file, the other
    # configs never ran; and --junit into a folder not made yet crashed after all had run.
    import dltrain.train.fit as fitting

    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "a_crashes.yaml").write_text((CONFIGS / "quickstart.yaml").read_text())
    real, kept = fitting.fit, tmp_path / "kept"

    def crash_on_a(loaded: object, **kwargs: object) -> object:
        if "a_crashes" in loaded.source:  # type: ignore[attr-defined]
            raise RuntimeError("boom\nsecond line")
        result = real(loaded, **kwargs)  # type: ignore[arg-type]
        if "mnist_mlp" in loaded.source:  # type: ignore[attr-defined]
            # smoke deletes its run folder when the fit returns: keep what a run says of itself.
            kept.mkdir()
            # Nobody opens a smoke run's folder: no plot is drawn into it.
            (kept / "pictures.txt").write_text(" ".join(
                sorted(path.name for path in result.run_dir.rglob("*.png"))))
            for name in ("metrics.json", "manifest.json", "config.yaml"):
                shutil.copy(result.run_dir / name, kept / name)
        return result

    monkeypatch.setattr(fitting, "fit", crash_on_a)
    # A shipped config for each dataset --synthetic stands in for, and quickstart for those it
    # leaves be: the csv configs' smoke here is the fit tests/test_shipped_configs.py makes.
    shipped = [CONFIGS / f"{name}.yaml" for name in ["quickstart", *ONE_PER_DATASET]]
    assert {dataset_of(path) for path in shipped[1:]} == {
        dataset_of(path) for path in CONFIGS.glob("*.yaml") if dataset_of(path) in DOWNLOADED}
    (tmp_path / "shipped").mkdir()
    for path in shipped:
        shutil.copy(path, tmp_path / "shipped")
    junit = tmp_path / "reports" / "smoke.xml"
    code, out, err = run_cli(capsys, "smoke", folder, tmp_path / "shipped", "--synthetic",
                             "--junit", junit)
    assert code == 1, out + err
    assert f"{len(shipped)} passed, 1 failed" in out
    expected = {path.stem: str(dataset_of(path) in DOWNLOADED).lower() for path in shipped}
    downloaded = sorted(expected.values()).count("true")
    assert downloaded == len(ONE_PER_DATASET)  # every config but quickstart
    assert out.count("synthetic") >= downloaded  # the table's data column (rich wraps details)
    assert err.count("note: synthetic stand-in data for ") == downloaded
    suite = ET.parse(junit).getroot()
    assert suite.get("tests") == str(len(shipped) + 1) and suite.get("failures") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert set(cases) == {"a_crashes", *expected}
    failure = cases.pop("a_crashes").find("failure").get("message")
    assert failure == (f"internal error: RuntimeError: boom (for the traceback: dltrain --debug "
                       f"fit {folder / 'a_crashes.yaml'} --smoke)")
    found = {name: case.find("properties/property[@name='synthetic']").get("value")
             for name, case in cases.items()}
    assert found == expected
    for name, case in cases.items():
        assert case.find("failure") is None
        synthetic = expected[name] == "true"
        assert ("(synthetic data)" in case.find("system-out").text) is synthetic
    assert not (offline / ".keras" / "datasets").exists()  # nothing was downloaded or cached
    # mnist_mlp's run, on stand-in data, says so.
    metrics = json.loads((kept / "metrics.json").read_text())
    assert metrics["synthetic"] is True and metrics["smoke"]["passed"] in (True, False)
    assert json.loads((kept / "manifest.json").read_text())["synthetic"] is True
    assert ("note: synthetic stand-in data for mnist (uint8 28x28 images, 10 classes)"
            in " ".join(err.split()))
    saved = yaml.safe_load((kept / "config.yaml").read_text())
    assert saved["dataset"]["name"] == "mnist" and saved["training"]["steps_per_execution"] == 1
    assert (kept / "pictures.txt").read_text() == ""


def test_synthetic_smoke_of_a_csv_config_without_its_file_fails_and_says_why(
        offline: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tabular.yaml"
    config.write_text((CONFIGS / "tabular_binary.yaml").read_text().replace(
        "../dltrain/data/shipped/pima_diabetes.csv", "nowhere.csv"))
    junit = tmp_path / "smoke.xml"
    code, out, _ = run_cli(capsys, "smoke", config, "--synthetic", "--junit", junit)
    assert code == 1 and "0 passed, 1 failed" in out
    case = ET.parse(junit).getroot().find("testcase")
    assert case is not None and case.find("properties") is None  # no fit, so no data to label
    failure = case.find("failure")
    assert failure is not None
    assert failure.get("message") == (
        f"dataset.path {tmp_path / 'nowhere.csv'} does not exist, and --synthetic cannot stand "
        "in for a csv dataset: its shapes and classes come from the file. Put the file there, "
        "or leave this config out of the smoke run.")


@pytest.mark.slow
def test_a_smoke_fit_whose_loss_did_not_fall_exits_1_as_dltrain_smoke_does(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A CI step running `dltrain fit CONFIG --smoke` passed (exit 0) when the loss stayed put."""
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "fit", CONFIGS / "quickstart.yaml", "--smoke", "--run-dir",
                             run, "--set", "optimizer.learning_rate=1e-12", "--json")
    assert code == 1
    smoke = json.loads(out)["smoke"]
    assert smoke["passed"] is False and smoke["loss_after"] == smoke["loss_before"]
    assert (f"smoke failed: training loss did not fall: {smoke['loss_before']:.4f} -> "
            f"{smoke['loss_after']:.4f}") in " ".join(err.split())
    assert json.loads((run / "run.json").read_text())["state"] == "completed"


def test_junit_stays_xml_when_a_name_or_message_holds_control_characters(tmp_path: Path) -> None:
    """A config named with ESC or BEL, or a non-UTF-8 byte, made a JUnit file no CI could read
    (XML 1.0 has no escape for them): they are written as visible escapes."""
    import os

    from dltrain.train.smoke import SmokeResult, write_junit

    config = "configs/a\x1b[2Jb\x07" + os.fsdecode(b"caf\xe9") + ".yaml"
    junit = tmp_path / "smoke.xml"
    write_junit([SmokeResult(config, False, 1.0, f"{config}: error \x00 here"),
                 SmokeResult("configs/ok.yaml", True, 1.0, "loss 2.3 -> 1.9\ttab kept")], junit)
    cases = list(ET.parse(junit).getroot().iter("testcase"))
    assert cases[0].get("file") == "configs/a\\x1b[2Jb\\x07caf\\udce9.yaml"
    assert cases[0].get("name") == "a\\x1b[2Jb\\x07caf\\udce9"
    assert cases[0].find("failure").get("message").endswith(": error \\x00 here")
    assert cases[1].find("system-out").text == "loss 2.3 -> 1.9\ttab kept"


LONG = ["configs/fashion_mnist_cnn_with_augmentation_and_dropout.yaml",
        "configs/fashion_mnist_cnn_with_augmentation_and_dropout_wide.yaml",
        "configs/fashion_mnist_cnn_with_augmentation_and_dropout_deep.yaml"]
OFFLINE = ("fashion-mnist.npz is not in the Keras cache (/home/ci/.keras/datasets) and could "
           "not be downloaded from https://storage.googleapis.com/tensorflow/tf-keras-datasets/ "
           "(connection refused). Run it where the network is reachable, or pass --synthetic.")


@pytest.mark.parametrize("width", [80, 60])
def test_the_smoke_table_names_every_config_whole_at_80_and_60_columns(width: int) -> None:
    """At 80 columns (a CI log) every config read `configs/fashion_mnis…`; the offline error
    was squeezed into a narrow cell."""
    from dltrain.train.smoke import SmokeResult, smoke_table

    results = [SmokeResult(LONG[0], True, 12.25, "training loss 2.3026 -> 2.1001", False),
               SmokeResult(LONG[1], False, 0.5, OFFLINE),
               SmokeResult(LONG[2], True, 123.5, "training loss 2.3026 -> 1.9876 (synthetic "
                           "data)", True)]
    console = Console(file=io.StringIO(), width=width, record=True)
    console.print(smoke_table(results))
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines())
    assert re.findall(r"fashion_mnist\S*", text) == [
        "fashion_mnist_cnn_with_augmentation_and_dropout",
        "fashion_mnist_cnn_with_augmentation_and_dropout_wide",
        "fashion_mnist_cnn_with_augmentation_and_dropout_deep"]
    assert "…" not in text
    assert "12.2" in text and "123.5" in text and "see [1]" in text
    # The error whole under the table, its words in order.
    under = " ".join(text.split("[1] ", 1)[1].split())
    assert under == OFFLINE


def test_smoke_names_configs_by_their_shortest_unique_name() -> None:
    from dltrain.report.widths import unique_names

    assert unique_names(["configs/a.yaml", "configs/b.yaml"]) == ["a", "b"]
    assert unique_names(["x/cnn.yaml", "y/cnn.yaml", "y/mlp.yml"]) == ["x/cnn", "y/cnn", "mlp"]
    assert unique_names(["c/cnn.yaml", "c/cnn.yml"]) == ["cnn.yaml", "cnn.yml"]
    assert unique_names(["model.layers.1.Dense.units", "optimizer.learning_rate"],
                        separator=".", stem=False) == ["units", "learning_rate"]


def test_junit_testsuite_has_an_iso_timestamp_and_the_hostname(tmp_path: Path) -> None:
    from datetime import datetime

    from dltrain.train.smoke import SmokeResult, write_junit

    junit = tmp_path / "smoke.xml"
    write_junit([SmokeResult("configs/ok.yaml", True, 1.0, "loss 2.3 -> 1.9")], junit)
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite"
    assert suite.get("hostname") == socket.gethostname()
    stamp = datetime.fromisoformat(suite.get("timestamp"))
    assert stamp.tzinfo is not None
    assert len(suite.get("timestamp")) >= len("2026-01-01T12:00:00")


def test_dltrain_smoke_at_80_columns_tells_configs_of_one_prefix_apart(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import dltrain.train.smoke as smoke
    from dltrain import console

    folder = tmp_path / "configs"
    folder.mkdir()
    for path in LONG:
        (tmp_path / path).write_text("name: x\n")
    monkeypatch.setattr(smoke, "smoke_one", lambda path, *args: smoke.SmokeResult(
        str(path), "wide" not in path.name, 1.0, OFFLINE if "wide" in path.name else "fine"))
    monkeypatch.setattr(console.out, "_width", 80)
    code, out, _ = run_cli(capsys, "smoke", folder)
    assert code == 1
    assert sorted(re.findall(r"fashion_mnist\S*", out)) == sorted(
        Path(path).stem for path in LONG)
    assert "[1] fashion-mnist.npz is not in the Keras cache" in out
    assert "2 passed, 1 failed" in out


def test_junit_timestamp_is_when_the_smoke_runs_started(tmp_path: Path) -> None:
    from datetime import datetime, timedelta, timezone

    from dltrain.train.smoke import SmokeResult, write_junit

    started = datetime(2026, 12, 6, 20, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    junit = tmp_path / "smoke.xml"
    write_junit([SmokeResult("configs/ok.yaml", True, 90.0, "loss 2.3 -> 1.9")], junit, started)
    assert ET.parse(junit).getroot().get("timestamp") == "2026-12-06T20:00:05+01:00"
