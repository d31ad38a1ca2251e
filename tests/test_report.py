"""Reports: pictures, per-class metrics, TensorBoard, runs table, compare, predict, smoke, schema."""

from __future__ import annotations

import hashlib
import json
import shutil
import struct
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, ROOT, run_cli, write_mnist
from dltrain.cli import main
from dltrain.runs import records
from dltrain.runs.records import RunState

QUICKSTART = CONFIGS / "quickstart.yaml"
ONE_STEP = ["--set", "training.steps_per_execution=1"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One quickstart run on 600 real images, 3 epochs, shared by the tests of this module (one
    step a call: "auto" traces TensorFlow's train step twice, and no test here is about it)."""
    run = tmp_path_factory.mktemp("reports") / "run"
    code = main(["fit", str(QUICKSTART), "--run-dir", str(run), "--epochs", "3",
                 "--set", "dataset.train_limit=600", "--set", "dataset.test_limit=200",
                 *ONE_STEP])
    assert code == 0
    return run


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.slow
def test_fit_writes_learning_curves_and_confusion_matrix(trained: Path) -> None:
    width, height = png_size(trained / "curves.png")
    assert width >= 600 and height >= 300
    width, height = png_size(trained / "confusion_matrix.png")
    assert width >= 600 and height >= 600


@pytest.mark.slow
def test_eval_json_holds_per_class_metrics_that_add_up(
        trained: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_cli(capsys, "eval", trained, "--json")
    assert code == 0, err
    result = json.loads(out)
    report = result["report"]
    assert [row["class"] for row in report["per_class"]][:2] == ["T-shirt/top", "Trouser"]
    assert sum(row["support"] for row in report["per_class"]) == result["test_samples"] == 200
    assert np.asarray(report["confusion_matrix"]).sum() == 200
    assert np.trace(report["confusion_matrix"]) / 200 == pytest.approx(report["accuracy"])
    assert report["accuracy"] == pytest.approx(result["test"]["accuracy"], abs=1e-6)
    assert 0 <= report["top_5_accuracy"] <= 1 and report["top_5_accuracy"] >= report["accuracy"]
    assert "Per class" in err and "precision" in err  # the tables go to stderr with --json


@pytest.mark.slow
def test_binary_problems_report_roc_auc_and_threshold(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(capsys, "fit", CONFIGS / "tabular_binary.yaml", "--run-dir", run,
                             "--epochs", "3", "--json", *ONE_STEP)
    assert code == 0, err
    report = json.loads(out)["report"]
    assert 0 <= report["roc_auc"] <= 1 and report["threshold"] == 0.5
    assert [row["class"] for row in report["per_class"]] == ["0", "1"]
    assert "top_5_accuracy" not in report
    # predict on rows that hold their own label shows it beside the prediction
    lines = (ROOT / "dltrain" / "data" / "shipped" / "pima_diabetes.csv").read_text().splitlines()
    rows = tmp_path / "rows.csv"
    rows.write_text("\n".join(lines[:5]) + "\n")
    code, out, err = run_cli(capsys, "predict", run, rows, "--json")
    assert code == 0, err
    results = json.loads(out[out.index("["):])
    assert [result["actual"] for result in results] == [line.split(",")[-1] for line in lines[1:5]]
    code, out, err = run_cli(capsys, "predict", run, rows)
    assert code == 0, err
    cells = [line.split("│")[-2].strip() for line in out.splitlines() if line.count("│") == 4]
    assert "actual" in out and cells == [line.split(",")[-1] for line in lines[1:5]]


@pytest.mark.slow
def test_tensorboard_scalars_can_be_read_back(trained: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.util.tensor_util import make_ndarray

    accumulator = EventAccumulator(str(trained / "tensorboard" / "train"))
    accumulator.Reload()
    # Keras on TensorFlow writes epoch scalars as scalar tensor summaries.
    events = accumulator.Tensors("epoch_loss")
    losses = [float(make_ndarray(event.tensor_proto)) for event in events]
    history = [float(row.split(",")[2]) for row in
               (trained / "history.csv").read_text().splitlines()[1:]]
    assert [event.step for event in events] == [0, 1, 2]
    assert losses == pytest.approx(history, rel=1e-5)


@pytest.mark.slow
def test_manifest_pins_config_code_and_data(trained: Path) -> None:
    manifest = json.loads((trained / "manifest.json").read_text())
    config_text = (trained / "config.yaml").read_text()
    assert manifest["config_sha256"] == hashlib.sha256(config_text.encode()).hexdigest()
    assert manifest["seed"] == 42
    assert manifest["data"]["x_train"]["shape"][1:] == [28, 28, 1]
    assert len(manifest["data"]["x_test"]["sample_sha256"]) == 64
    assert manifest["versions"]["keras"].startswith("3.")
    assert manifest["git"] is None or len(manifest["git"]["commit"]) == 40


@pytest.mark.slow
def test_runs_lists_completed_interrupted_and_failed_runs(
        trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "runs"
    shutil.copytree(trained, folder / "done")
    assert run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", folder / "diverged",
                   "--set", "dataset.rescale=1e30")[0] == 2

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr("dltrain.train.loop._train", interrupted)
        assert run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir",
                       folder / "stopped")[0] == 130
    code, out, err = run_cli(capsys, "runs", folder, "--json", "--sort", "name")
    assert code == 0, err
    states = {row["name"]: row["state"] for row in json.loads(out)}
    assert states == {"done": "completed", "diverged": "failed", "stopped": "interrupted"}
    code, out, _ = run_cli(capsys, "runs", folder)
    assert "completed" in out and "interrupted" in out and "failed" in out


@pytest.mark.slow
def test_predict_on_pngs_agrees_with_the_model_on_arrays(
        trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import keras
    import tensorflow as tf

    images = np.load(ROOT / "dltrain" / "data" / "shipped" / "fashion_mnist_mini.npz")["x_test"][:6]
    files = []
    for index, image in enumerate(images):
        files.append(tmp_path / f"item{index}.png")
        files[-1].write_bytes(tf.io.encode_png(image[..., None]).numpy())
    code, out, err = run_cli(capsys, "predict", trained, *files, "--json", "--top-k", "2")
    assert code == 0, err
    predicted = [result["top"][0]["index"] for result in json.loads(out)]
    model = keras.saving.load_model(trained / "model.keras")
    expected = model.predict(images[..., None].astype("float32") / 255, verbose=0).argmax(axis=1)
    assert predicted == expected.tolist()
    assert all(len(result["top"]) == 2 for result in json.loads(out))


@pytest.mark.slow
def test_predict_refuses_what_it_cannot_read(trained: Path, tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "broken.png").write_text("not an image")
    code, _, err = run_cli(capsys, "predict", trained, tmp_path / "broken.png")
    assert code == 2 and "broken.png: not a readable image" in err
    code, _, err = run_cli(capsys, "predict", trained, tmp_path / "notes.txt")
    assert code == 2 and "notes.txt: no such file" in err


@pytest.mark.slow
def test_predict_refuses_an_unfinished_run_and_names_its_checkpoint(
        trained: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import tensorflow as tf

    run = shutil.copytree(trained, tmp_path / "run")
    records.write(run, records.read(run, RunState).model_copy(update={"state": "interrupted"}))
    (run / "model.keras").rename(run / "last.keras")
    (run / "best.keras").unlink(missing_ok=True)
    image = np.load(ROOT / "dltrain" / "data" / "shipped" / "fashion_mnist_mini.npz")["x_test"][0]
    (tmp_path / "item.png").write_bytes(tf.io.encode_png(image[..., None]).numpy())
    code, _, err = run_cli(capsys, "predict", run, tmp_path / "item.png")
    assert code == 2 and "the run is 'interrupted', not completed" in err
    assert "Predict with a checkpoint instead: --model last.keras." in err
    code, out, err = run_cli(capsys, "predict", run, tmp_path / "item.png", "--model",
                             "last.keras", "--json")
    assert code == 0, err
    code, expected, err = run_cli(capsys, "predict", trained, tmp_path / "item.png", "--json")
    assert code == 0 and json.loads(out) == json.loads(expected)


# A shipped config per dataset that smoke reads from $DLTRAIN_DATA_DIR: every shipped config
# is smoked by tests/test_shipped_configs.py (a fit each) and tests/test_train_smoke.py (one
# `smoke --synthetic` of them all); this test is about local data and the JUnit report.
LOCAL = ["cifar_cnn", "fashion_mnist_cnn", "mnist_even_odd"]


@pytest.mark.slow
def test_smoke_passes_shipped_configs_on_local_data_and_reports_a_failing_one_in_junit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        cifar_dir: Path) -> None:
    # One smoke run for both: the failing config beside shipped ones (a test of its own
    # smoked quickstart a second time as the config that passes).
    store = tmp_path / "data"
    for name in ("mnist", "fashion_mnist"):
        write_mnist(store / name, train=300, test=100)
    shutil.copytree(cifar_dir, store / "cifar10")
    monkeypatch.setenv("DLTRAIN_DATA_DIR", str(store))
    folder = tmp_path / "configs"  # a folder of configs, as a project's CI names configs/
    folder.mkdir()
    for stem in LOCAL:
        shutil.copy(CONFIGS / f"{stem}.yaml", folder)
    datasets = {yaml.safe_load(path.read_text())["dataset"]["name"] for path in folder.iterdir()}
    assert datasets == {"mnist", "fashion_mnist", "cifar10"}
    bad = tmp_path / "bad.yaml"
    bad.write_text(QUICKSTART.read_text().replace("optimizer:", "optimiser:"))
    junit = tmp_path / "smoke.xml"
    code, out, err = run_cli(capsys, "smoke", bad, folder, "--junit", junit)
    assert code == 1, out + err
    assert f"{len(LOCAL)} passed, 1 failed" in out
    suite = ET.parse(junit).getroot()
    assert suite.tag == "testsuite"
    assert suite.get("tests") == str(len(LOCAL) + 1) and suite.get("failures") == "1"
    cases = {case.get("name"): case for case in suite.iter("testcase")}
    assert sorted(cases) == sorted(["bad", *LOCAL])
    assert all(cases[stem].find("failure") is None for stem in LOCAL), out + err
    assert all(cases[stem].find("properties/property[@name='synthetic']").get("value")
               == "false" for stem in LOCAL)  # read from $DLTRAIN_DATA_DIR, not stood in for
    failures = suite.findall("testcase/failure")
    assert len(failures) == 1 and "unknown key 'optimiser'" in failures[0].get("message")
    assert cases["bad"].find("failure") is failures[0]


@pytest.mark.slow
def test_schema_is_current_and_every_shipped_config_validates(
        capsys: pytest.CaptureFixture[str]) -> None:
    import jsonschema

    code, out, _ = run_cli(capsys, "schema")
    assert code == 0
    schema = json.loads(out)
    assert json.loads((ROOT / "dltrain.schema.json").read_text()) == schema
    # jsonschema.validate checks the (large) schema against its metaschema on every call, most
    # of this test's time: check it once, then validate each document with one validator.
    validator = jsonschema.validators.validator_for(schema)(schema)
    validator.check_schema(schema)
    for path in sorted(CONFIGS.glob("*.yaml")):
        assert path.read_text().startswith("# yaml-language-server: $schema=../dltrain.schema.json")
        validator.validate(yaml.safe_load(path.read_text()))
    with pytest.raises(jsonschema.ValidationError):
        validator.validate({**yaml.safe_load(QUICKSTART.read_text()), "optimiser": {}})
    # Keras 2 habits the loader accepts are valid for editors too.
    validator.validate({**yaml.safe_load(QUICKSTART.read_text()), "optimizer": "adam"})


@pytest.mark.slow
def test_show_and_fit_json_parse_and_compare_shows_changed_keys_and_metric_differences(
        trained: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # The smoke fit whose --json this reads is also the run compared with `trained` (a fit
    # each cost a second quickstart smoke fit).
    code, out, _ = run_cli(capsys, "show", QUICKSTART, "--json")
    assert code == 0
    shown = json.loads(out)
    assert shown["parameters"] == sum(layer["parameters"] for layer in shown["layers"])
    assert shown["config"]["name"] == "quickstart"
    other = tmp_path / "r"
    code, out, _ = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", other, "--json",
                           "--set", "optimizer.learning_rate=0.01")
    assert code == 0
    fitted = json.loads(out)
    assert fitted["run_dir"] == str(other) and fitted["epochs_run"] == 1
    assert fitted["smoke"]["loss_after"] < fitted["smoke"]["loss_before"]
    code, out, err = run_cli(capsys, "compare", trained, other, "--json")
    assert code == 0, err
    comparison = json.loads(out)
    changed = {change["key"]: (change["a"], change["b"]) for change in comparison["config"]}
    assert changed["optimizer.learning_rate"] == (0.001, 0.01)
    assert changed["training.epochs"] == (3, 1)
    accuracy = next(m for m in comparison["metrics"] if m["metric"] == "accuracy")
    assert accuracy["delta"] == pytest.approx(accuracy["b"] - accuracy["a"])


@pytest.mark.parametrize("text", ["null", "[1, 2]", '{"mean": null}', '{"rescale": "x"}',
                                  "{broken"])
def test_predict_names_a_broken_preprocessing_file(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text((CONFIGS / "quickstart.yaml").read_text())
    (run / "run.json").write_text('{"state": "completed"}')
    (run / "preprocessing.json").write_text(text)
    (tmp_path / "x.png").write_bytes(b"")
    code, _, err = run_cli(capsys, "predict", run, tmp_path / "x.png")
    assert code == 2, err
    assert f"{run / 'preprocessing.json'}" in " ".join(err.split())
