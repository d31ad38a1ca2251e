"""`dltrain export`: SavedModel, ONNX and TFLite files that carry the run's input scaling, each
loaded back by its own runtime and checked against the Keras model on the test split."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, ROOT, copy_run, run_cli
from dltrain.cli import main
from dltrain.data.prepare import Preparation
from dltrain.errors import RunError
from dltrain.report import export
from dltrain.runs import records
from dltrain.runs.records import Preprocessing

QUICKSTART = CONFIGS / "quickstart.yaml"
NEEDS_ONNX = pytest.mark.skipif(
    any(importlib.util.find_spec(name) is None for name in ("tf2onnx", "onnxruntime")),
    reason='ONNX export needs tf2onnx and onnxruntime: pip install "dltrain-keras[export]"')
ONNX = pytest.param("onnx", marks=NEEDS_ONNX)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory, shared_smoke_run: Path) -> Path:
    """One quickstart --smoke run (1 epoch), shared by this module's tests: copy it to change it."""
    return copy_run(shared_smoke_run, tmp_path_factory.mktemp("export") /
                    "quickstart-20261126-064500")


@pytest.fixture
def run(trained: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


# --- without a trained run ------------------------------------------------------------------

def test_each_format_names_the_backends_keras_exports_it_from() -> None:
    export.check_supported("tflite", "tensorflow")
    with pytest.raises(RunError) as caught:
        export.check_supported("tflite", "jax")
    message = str(caught.value)
    assert "--format tflite" in message and "tensorflow or torch" in message
    assert "--backend tensorflow" in message  # the .keras file loads on any backend


@NEEDS_ONNX  # it shows that only the missing one of the two is named
def test_a_missing_converter_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # makes `import tf2onnx` fail
    with pytest.raises(RunError) as caught:
        export.check_installed("onnx", "tensorflow")
    message = str(caught.value)
    assert "tf2onnx" in message and 'pip install "dltrain-keras[export]"' in message
    assert "onnxruntime" not in message.split("needs")[1].split("Install")[0]  # only what is missing


def test_a_missing_runtime_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(RunError, match=r'onnxruntime.*pip install "dltrain-keras\[export\]"'):
        export.check_installed("onnx", "tensorflow")


def test_the_output_of_each_format_is_named_after_the_model(tmp_path: Path) -> None:
    assert export.default_output(tmp_path, tmp_path / "model.keras", "onnx") == tmp_path / "model.onnx"
    assert export.default_output(tmp_path, tmp_path / "best.keras", "tflite") == tmp_path / "best.tflite"
    assert export.default_output(tmp_path, tmp_path / "model.keras", "saved_model") \
        == tmp_path / "model_saved_model"


def test_an_output_that_cannot_hold_the_export_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RunError, match=r"--output x\.lite: a tflite export's name must end with "
                                       r"\.tflite"):
        export.check_output(Path("x.lite"), "tflite")
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_text("mine")
    with pytest.raises(RunError, match="holds other files"):
        export.check_output(tmp_path / "notes", "saved_model")
    (tmp_path / "notes.onnx").mkdir()
    with pytest.raises(RunError, match="is a folder"):
        export.check_output(tmp_path / "notes.onnx", "onnx")
    # An onnx export replaced whatever the name held: the run's own model.keras, a CSV.
    for name in ("model.keras", "important.csv"):
        (tmp_path / name).write_text("mine")
        with pytest.raises(RunError, match=rf"--output .*{name}: an onnx export's name must end "
                                           r"with \.onnx, so that no other file is replaced"):
            export.check_output(tmp_path / name, "onnx")
    export.check_output(tmp_path / "earlier.onnx", "onnx")  # an earlier export's name: taken


def test_the_wrapper_prepares_raw_inputs_like_preparation_apply() -> None:
    """Rescale, standardise and flatten as layers: raw values in, the model's answer out."""
    from dltrain.backend import keras_module

    keras = keras_module()
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(5, 4, 3, 1)).astype(np.float32)
    preparation = Preparation(1 / 255, mean=rng.random((4, 3, 1), dtype=np.float32),
                              std=rng.random((4, 3, 1), dtype=np.float32) + 0.5,
                              flatten_from=[4, 3, 1])
    inner = keras.Sequential([keras.Input((12,)), keras.layers.Dense(3, activation="softmax")])
    wrapped = export.with_preparation(inner, preparation, [4, 3, 1])
    expected = keras.ops.convert_to_numpy(inner(preparation.apply(raw)))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(wrapped(raw)), expected, atol=1e-6)
    assert wrapped.input_shape == (None, 4, 3, 1)


def test_only_a_completed_run_is_exported_without_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "export", tmp_path, "--format", "saved_model")
    assert code == 2 and f"{tmp_path}: not a run directory (no config.yaml)" in err
    shutil.copy(QUICKSTART, tmp_path / "config.yaml")
    (tmp_path / "run.json").write_text('{"state": "running"}')
    with pytest.raises(RunError, match="the run is 'running', not completed.*no checkpoint"):
        export.export_run(tmp_path, "saved_model")
    (tmp_path / "best.keras").write_bytes(b"")
    with pytest.raises(RunError, match=r"Export a checkpoint instead: --model best.keras\.$"):
        export.export_run(tmp_path, "saved_model")


def test_help_lists_export(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "--help")
    assert code == 0 and "export" in out
    code, out, _ = run_cli(capsys, "export", "--help")
    assert code == 0 and "saved_model" in out and "tflite" in out


def test_parity_compares_outputs_and_accuracy() -> None:
    reference = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], dtype=np.float32)
    labels = np.array([0, 1, 1])
    close = export.compare(reference, reference + 1e-6, labels, 1e-4)
    assert close["passed"] and close["max_abs_diff"] == pytest.approx(1e-6, rel=0.1)
    assert close["accuracy"] == {"keras": pytest.approx(2 / 3), "export": pytest.approx(2 / 3)}
    assert close["predictions_agree"] == 1.0
    flipped = export.compare(reference, reference[:, ::-1], labels, 1e-4)
    assert not flipped["passed"] and flipped["max_abs_diff"] == pytest.approx(0.8)
    assert flipped["accuracy"]["export"] == pytest.approx(1 / 3)
    assert flipped["predictions_agree"] == 0.0


def test_an_export_its_runtime_cannot_load_or_that_answers_in_another_shape_fails(
        tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason='pip install "dltrain-keras[export]"')
    (tmp_path / "broken.onnx").write_bytes(b"not a model")
    reference = np.full((2, 3), 1 / 3, np.float32)
    result = export.check("onnx", tmp_path / "broken.onnx", np.zeros((2, 4), np.float32),
                          reference, np.array([0, 1]))
    assert not result["passed"] and result["max_abs_diff"] is None
    assert result["problem"].startswith("does not run in onnxruntime ")
    shaped = export.compare(reference, reference[:, :2], None, 1e-4)
    assert not shaped["passed"] and "outputs of shape [2, 2], the Keras model [2, 3]" in \
        shaped["problem"]


# --- on the trained quickstart run ------------------------------------------------------------

def png_files(folder: Path, images: np.ndarray) -> list[Path]:
    from dltrain.backend import tensorflow_module

    tf = tensorflow_module()
    files = []
    for index, image in enumerate(images):
        files.append(folder / f"item{index}.png")
        files[-1].write_bytes(tf.io.encode_png(image[..., None]).numpy())
    return files


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["saved_model", ONNX, "tflite"])
def test_each_format_predicts_what_keras_and_dltrain_predict_do(
        fmt: str, run: Path, tmp_path: Path) -> None:
    from dltrain.report.predict import predict_files

    started = time.perf_counter()
    entry = export.export_run(run, fmt)
    seconds = time.perf_counter() - started
    print(f"\n{fmt}: export + parity {seconds:.2f} s "
          f"(export {entry['seconds']['export']:.2f} s, check {entry['seconds']['check']:.2f} s)")
    path = Path(entry["path"])
    assert entry["status"] == "passed" and path.exists()
    assert entry["max_abs_diff"] <= entry["tolerance"] == export.TOLERANCE[fmt]
    assert entry["accuracy"]["export"] == entry["accuracy"]["keras"]
    assert entry["test_samples"] == 128  # --smoke's test_limit
    assert entry["input"]["shape"] == [None, 28, 28, 1] and entry["input"]["dtype"] == "float32"
    assert entry["input"]["value_range"] == [0, 255]
    # how predict makes those pixels from a colour file (tests/test_report_export_input.py)
    assert entry["input"]["image"]["resize"]["method"] == "bilinear"
    assert "ITU-R 601-2" in json.dumps(entry["input"]["image"]["grey_from_colour"])
    assert json.loads((run / "export.json").read_text())[fmt] == entry

    # Raw uint8 pixels through the export give `dltrain predict`'s probabilities.
    images = np.load(ROOT / "dltrain" / "data" / "shipped" / "fashion_mnist_mini.npz")["x_test"][:5]
    predicted = predict_files(run, png_files(tmp_path, images), top_k=10)
    expected = np.zeros((5, 10))
    for row, result in zip(expected, predicted, strict=True):
        for top in result["top"]:
            row[top["index"]] = top["probability"]
    got = export.RUNTIMES[fmt](path, images[..., None].astype(np.float32))
    np.testing.assert_allclose(got, expected, atol=export.TOLERANCE[fmt])


def tamper_onnx(path: Path) -> None:
    """Shift the last layer's 10 biases unequally (an equal shift leaves a softmax as it was): a
    model that still loads but answers differently."""
    import onnx
    from onnx import numpy_helper

    graph = onnx.load(str(path))
    bias = next(init for init in graph.graph.initializer
                if list(init.dims) == [10] and init.data_type == onnx.TensorProto.FLOAT)
    shifted = numpy_helper.to_array(bias) + np.linspace(0, 1, 10, dtype=np.float32)
    bias.CopyFrom(numpy_helper.from_array(shifted, bias.name))
    onnx.save(graph, str(path))


@pytest.mark.slow
@NEEDS_ONNX
def test_a_tampered_onnx_file_fails_parity_and_is_set_aside(
        run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    write = export.write_export

    def write_then_tamper(model: object, fmt: str, path: Path) -> None:
        write(model, fmt, path)
        tamper_onnx(path)

    monkeypatch.setattr(export, "write_export", write_then_tamper)
    code, out, err = run_cli(capsys, "export", run, "--format", "onnx")
    assert code == 1, err
    assert "parity FAILED" in err and "model.onnx.parity-failed" in err
    assert not (run / "model.onnx").exists() and (run / "model.onnx.parity-failed").is_file()
    entry = json.loads((run / "export.json").read_text())["onnx"]
    assert entry["status"] == "failed" and entry["max_abs_diff"] > entry["tolerance"]
    assert entry["path"] == str(run / "model.onnx.parity-failed")


@pytest.mark.slow
def test_cli_exports_tflite_then_a_tampered_runtime_fails_it(
        run: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, err = run_cli(capsys, "export", run, "--format", "tflite", "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["status"] == "passed" and shown["path"] == str(run / "model.tflite")
    assert "passed" in err and "max |diff|" in err  # the table goes to stderr with --json
    good = (run / "model.tflite").read_bytes()

    runtime = export.RUNTIMES["tflite"]
    monkeypatch.setitem(export.RUNTIMES, "tflite",
                        lambda path, x: runtime(path, x) + 1e-3)  # a runtime that drifts
    code, out, err = run_cli(capsys, "export", run, "--format", "tflite")
    assert code == 1 and "parity FAILED" in err and "tolerance 0.0001" in err
    assert (run / "model.tflite").read_bytes() == good  # the earlier, checked export stays
    assert (run / "model.tflite.parity-failed").is_file()
    assert json.loads((run / "export.json").read_text())["tflite"]["status"] == "failed"


@pytest.mark.slow
@NEEDS_ONNX
def test_cli_exports_a_checkpoint_to_a_chosen_path(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "out" / "fashion.onnx"
    code, out, err = run_cli(capsys, "export", run, "--format", "onnx", "--model", "best.keras",
                             "--output", target, "--json")
    assert code == 0, err
    shown = json.loads(out)
    assert shown["path"] == str(target) and target.is_file()
    assert shown["model"] == str(run / "best.keras")


@pytest.mark.slow
def test_cli_refuses_bad_inputs_with_exit_2(
        run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    code, _, err = run_cli(capsys, "export", tmp_path / "nowhere", "--format", "onnx")
    assert code == 2 and "not a run directory" in err
    code, _, err = run_cli(capsys, "export", run, "--format", "pickle")
    assert code == 2 and "'pickle' is not one of" in err
    code, _, err = run_cli(capsys, "export", run, "--format", "onnx", "--model", "gone.keras")
    assert code == 2 and "--model gone.keras: no such file" in err
    code, _, err = run_cli(capsys, "export", run, "--format", "tflite", "--backend", "jax")
    assert code == 2 and "tensorflow or torch" in err
    if Path("/proc/self").is_dir():  # makes no folders: an internal FileNotFoundError
        code, _, err = run_cli(capsys, "export", run, "--format", "onnx", "--output",
                               "/proc/dltrain-x/m.onnx")
        assert code == 2 and "--output /proc/dltrain-x/m.onnx: no folder can be made for it " \
            "there" in " ".join(err.split())
    monkeypatch.setitem(sys.modules, "tf2onnx", None)
    code, _, err = run_cli(capsys, "export", run, "--format", "onnx")
    assert code == 2 and 'pip install "dltrain-keras[export]"' in err
    saved = records.read(run, Preprocessing).as_json()
    records.write(run, Preprocessing.of({**saved, "target_log": True}))
    code, _, err = run_cli(capsys, "export", run, "--format", "saved_model")
    assert code == 2 and "holds steps export cannot build into the exported model yet " \
        "(target_log)" in err
    assert not (run / "export.json").exists()


MLP = """name: flat_mlp
seed: 1
dataset: {name: fashion_mnist_mini, standardize: true}
model:
  input_shape: [784]
  layers:
    - Dense: {units: 16, activation: relu}
    - Dense: {units: 10, activation: softmax}
loss: categorical_crossentropy
metrics: [accuracy]
training: {epochs: 1, batch_size: 32}
"""


@pytest.mark.slow
@pytest.mark.parametrize(("config", "fmt"), [pytest.param("mlp", "onnx", marks=NEEDS_ONNX),
                                             ("tabular", "tflite")])
def test_standardised_flattened_and_tabular_inputs_are_exported_raw(
        config: str, fmt: str, tmp_path: Path) -> None:
    """The images of a flat model (standardised, then flattened) and Pima's CSV features
    (standardised, one sigmoid output): the export takes the values as they were read."""
    from dltrain.report.predict import predict_files

    if config == "mlp":
        path = tmp_path / "mlp.yaml"
        path.write_text(MLP)
    else:  # the shipped config, its CSV path made absolute
        text = (CONFIGS / "tabular_binary.yaml").read_text()
        source = yaml.safe_load(text)["dataset"]["path"]
        csv = (CONFIGS / source).resolve()
        path = tmp_path / "tabular.yaml"
        path.write_text(text.replace(source, str(csv)))
    run = tmp_path / "run"
    assert main(["fit", str(path), "--smoke", "--run-dir", str(run)]) == 0
    entry = export.export_run(run, fmt)
    assert entry["status"] == "passed", entry
    assert entry["accuracy"]["export"] == entry["accuracy"]["keras"]
    steps = entry["input"]["included_steps"]
    assert "standardize with the training mean and std" in steps
    if config == "mlp":
        assert entry["input"]["shape"] == [None, 28, 28, 1] and "flatten 28x28x1 to 784" in steps
        return
    assert entry["input"]["shape"] == [None, 8] and entry["output"]["shape"] == [None, 1]
    rows = csv.read_text().splitlines()[:6]
    (tmp_path / "rows.csv").write_text("\n".join(rows) + "\n")
    predicted = predict_files(run, [tmp_path / "rows.csv"], top_k=2)
    expected = [next(top["probability"] for top in result["top"] if top["index"] == 1)
                for result in predicted]
    features = np.array([[float(v) for v in row.split(",")[:8]] for row in rows[1:]], np.float32)
    got = export.RUNTIMES[fmt](Path(entry["path"]), features)
    np.testing.assert_allclose(got.reshape(-1), expected, atol=export.TOLERANCE[fmt])


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason='JAX is not installed: pip '
                    'install -e ".[jax]"')
def test_a_saved_model_exports_from_the_jax_backend_too(run: Path, tmp_path: Path) -> None:
    """Keras converts through jax2tf there; a process runs one backend, so a subprocess."""
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from dltrain.cli import main; sys.exit(main())",
         "export", str(run), "--format", "saved_model", "--backend", "jax", "--json"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**env, "PYTHONPATH": str(ROOT), "DLTRAIN_JAX_CACHE": str(tmp_path / "jax-cache")})
    assert done.returncode == 0, done.stderr
    entry = json.loads(done.stdout)
    assert entry["status"] == "passed" and entry["backend"] == "jax"
    assert entry["max_abs_diff"] <= export.TOLERANCE["saved_model"]
    assert "WARNING" not in done.stderr  # jax2tf's note about gradients is not the user's business


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A quickstart --smoke run trained in mixed_bfloat16 (the policy restored after it)."""
    import keras

    run = tmp_path_factory.mktemp("bf16") / "run"
    assert main(["fit", str(QUICKSTART), "--smoke", "--run-dir", str(run), "--set",
                 "training.mixed_precision=bf16"]) == 0
    keras.mixed_precision.set_global_policy("float32")
    yield run
    keras.mixed_precision.set_global_policy("float32")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["saved_model", ONNX, "tflite"])
def test_a_model_trained_in_bfloat16_exports_its_float32_twin(fmt: str, bf16_run: Path,
                                                              tmp_path: Path) -> None:
    """ONNX Runtime refused a bf16 Conv as an invalid graph and TFLite wanted a Flex op: the
    export is the model in float32 (its weights are), and says how far that is from the
    model as trained."""
    run = copy_run(bf16_run, tmp_path / "run")
    entry = export.export_run(run, fmt)
    assert entry["status"] == "passed", entry.get("problem")
    assert entry["max_abs_diff"] <= export.TOLERANCE[fmt]
    mixed = entry["mixed_precision"]
    assert (mixed["trained"], mixed["exported"]) == ("mixed_bfloat16", "float32")
    assert 0 < mixed["max_abs_diff"] < 0.05  # bfloat16 keeps 8 bits of mantissa
    assert mixed["predictions_agree"] >= 0.9
    assert json.loads((run / "export.json").read_text())[fmt]["mixed_precision"] == mixed


def test_a_float32_model_is_its_own_twin_and_a_mixed_one_gets_float32_layers() -> None:
    import keras

    plain = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    assert export.float32_twin(plain) is plain and export.policy_of(plain) == "float32"
    mixed = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, dtype="mixed_bfloat16"),
                              keras.layers.Dense(2, dtype="float32")])
    twin = export.float32_twin(mixed)
    assert export.policy_of(mixed) == "mixed_bfloat16" and export.policy_of(twin) == "float32"
    assert all(layer.compute_dtype == "float32" for layer in twin.layers)
    for ours, theirs in zip(twin.get_weights(), mixed.get_weights(), strict=True):
        np.testing.assert_array_equal(ours, theirs)
