"""Export a run's model, input scaling included, through Keras's `model.export`, and prove the
export still predicts what the Keras model does: each file is loaded back by its own runtime,
run on the run's test split and compared, and the result is written to export.json.

The runtimes that load the exports back live in `dltrain.report.export_runtimes`.
"""

from __future__ import annotations

import importlib.util
import shutil
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from dltrain import install_line
from dltrain.backend import keras_module, prepare_runtime, quiet_native_logs, tensorflow_module
from dltrain.backend.names import exporting_backends
from dltrain.config.schema import Config
from dltrain.data.prepare import Preparation, load_splits
from dltrain.errors import RunError
from dltrain.report.evaluate import check_single_run, completed_model, load_model, run_config
from dltrain.report.export_input import describe_input
from dltrain.report.export_runtimes import RUNTIMES, runtime_name
from dltrain.runs import layout as runs
from dltrain.runs import records
from dltrain.runs.preparation import check_outputs, read_preparation
from dltrain.tasks.classification import classes

# dltrain's names for Keras's formats: the names users know from TensorFlow's own tools.
FORMATS = {"saved_model": "tf_saved_model", "onnx": "onnx", "tflite": "litert"}
# Where Keras 3.15's model.export has a path for a format (it refuses LiteRT on JAX): the
# backends' own facts (backend.names.exporting_backends).
EXTRA = install_line("export")
# (module, what installs it) that exporting and checking need, by format and backend: Keras's
# converter for the backend, then the runtime that loads the file back.
REQUIRES: dict[tuple[str, str], list[tuple[str, str]]] = {
    ("saved_model", "jax"): [("tensorflow", 'pip install "tensorflow>=2.21,<2.22"')],
    ("saved_model", "torch"): [("tensorflow", 'pip install "tensorflow>=2.21,<2.22"'),
                               ("torch_xla", "pip install torch_xla")],
    ("onnx", "tensorflow"): [("tf2onnx", EXTRA), ("onnxruntime", EXTRA)],
    ("onnx", "jax"): [("jax2onnx", "pip install jax2onnx"), ("onnxruntime", EXTRA)],
    ("onnx", "torch"): [("onnxscript", "pip install onnxscript"), ("onnxruntime", EXTRA)],
    ("tflite", "torch"): [("litert_torch", "pip install litert-torch"),
                          ("ai_edge_litert", "pip install ai-edge-litert")],
}
# Largest |export - Keras| allowed on outputs of size ~1 (probabilities); scaled up for larger
# outputs. Float32 has a rounding step of 1.2e-7 near 1. A SavedModel runs TensorFlow's own
# kernels on the same graph, so only graph rewrites change the rounding: 1e-5. ONNX Runtime and
# TFLite (XNNPACK) have their own kernels that sum in other orders, a few rounding steps per
# layer: 1e-4. Both are far above what a faithful conversion shows (at most 2e-7 on the
# quickstart model) and far below what a wrong weight, a dropped layer or a missed input
# scaling does (0.01 and up).
TOLERANCE = {"saved_model": 1e-5, "onnx": 1e-4, "tflite": 1e-4}
FAILED_SUFFIX = ".parity-failed"
# The preprocessing.json entries that with_preparation turns into layers, or that describe the
# run. A step it does not know (one added to fit later) is refused: the export would leave it
# out, and the parity check cannot notice a step applied to the outputs.
KNOWN_PREPARATION = {"rescale", "mean", "std", "flatten_from", "class_names", "num_classes",
                     "input_shape", "target_names", "target_mean", "target_std",
                     "backbone",  # its resize and preprocess_input are layers of the model
                     "feature_names"}  # the columns the input takes, in order


def check_supported(fmt: str, backend: str) -> None:
    """Refuse a format Keras cannot export on this backend, naming the ones that can."""
    if fmt not in FORMATS:
        raise RunError(f"--format must be one of {', '.join(FORMATS)}. Received: {fmt!r}.")
    exporting = exporting_backends(fmt)
    if backend not in exporting:
        raise RunError(f"--format {fmt}: Keras exports it from the {' or '.join(exporting)} "
                       f"backend, not {backend}. Export with --backend {exporting[0]} (the .keras "
                       "file loads on any backend).")


def check_installed(fmt: str, backend: str) -> None:
    """The converter and runtime the export needs, looked up (not imported: tf2onnx would load
    TensorFlow before the backend is chosen) so a missing one is named before anything loads."""
    missing = [(module, install) for module, install in REQUIRES.get((fmt, backend), [])
               if importlib.util.find_spec(module) is None]
    if missing:
        names = " and ".join(module for module, _ in missing)
        commands = " and ".join(dict.fromkeys(install for _, install in missing))
        first = exporting_backends(fmt)[0]  # TensorFlow, whose converter comes with the extra
        other = (f" (or export with --backend {first} and {EXTRA})"
                 if backend != first and fmt == "onnx" else "")
        raise RunError(f"--format {fmt} on the {backend} backend needs {names}, not installed "
                       f"here. Install with: {commands}{other}.")


def default_output(run_dir: Path, model_path: Path, fmt: str) -> Path:
    """Beside the model in the run: model.onnx, model.tflite, model_saved_model/."""
    stem = model_path.stem
    return run_dir / {"onnx": f"{stem}.onnx", "tflite": f"{stem}.tflite",
                      "saved_model": f"{stem}_saved_model"}[fmt]


def check_output(path: Path, fmt: str) -> None:
    """An output the export may take: replaced only if it is an earlier export of the format."""
    runs.refuse_link(path)
    if fmt == "tflite" and path.suffix != ".tflite":
        raise RunError(f"--output {path}: a tflite export's name must end with .tflite (Keras's "
                       f"rule). Try --output {path.with_suffix('.tflite')}.")
    if fmt == "onnx" and path.suffix != ".onnx":  # it replaced model.keras or a CSV, exit 0
        raise RunError(f"--output {path}: an onnx export's name must end with .onnx, so that no "
                       f"other file is replaced by it. Try --output {path.with_suffix('.onnx')}.")
    if fmt != "saved_model" and path.is_dir():
        raise RunError(f"--output {path}: is a folder; a {fmt} export is one file. Name a file.")
    if fmt == "saved_model" and path.exists():
        if not path.is_dir():
            raise RunError(f"--output {path}: is a file; a SavedModel is a folder. Name a folder.")
        if any(path.iterdir()) and not (path / "saved_model.pb").is_file():
            raise RunError(f"--output {path}: holds other files and is not a SavedModel; choose "
                           "a new folder so nothing is overwritten.")


def with_preparation(model: Any, preparation: Preparation, raw_shape: list[int],
                     from_logits: bool = False) -> Any:
    """The model behind the run's input scaling as layers, so the export takes raw values:
    rescale, then standardise with the training statistics, then flatten (Preparation.apply);
    a regression's standardised targets are scaled back after it (Preparation.undo_target), and
    a model trained on logits answers in probabilities (metrics.probabilities)."""
    keras = keras_module()
    inputs = keras.Input(tuple(raw_shape), dtype="float32", name="raw_input")
    x = keras.layers.Rescaling(preparation.rescale, name="rescale")(inputs)
    mean, std = preparation.mean, preparation.std
    if mean is not None and std is not None:
        # Not keras.layers.Normalization: its mean and variance are tensors made outside the
        # traced call, which tf2onnx turns into inputs the caller would have to feed. Arrays
        # used inside the call become constants of the graph, and the arithmetic is apply's.
        ops = keras.ops
        x = keras.layers.Lambda(lambda v: ops.divide(ops.subtract(v, mean), std),
                                name="standardize")(x)
    if preparation.flatten_from is not None:
        x = keras.layers.Flatten(name="flatten")(x)
    outputs = model(x)
    if from_logits:
        activation = "sigmoid" if model.output_shape[-1] == 1 else "softmax"
        outputs = keras.layers.Activation(activation, name="probabilities")(outputs)
    target_mean, target_std = preparation.target_mean, preparation.target_std
    if target_mean is not None and target_std is not None:
        # A regression trained on standardised targets answers in the targets' units, as
        # Preparation.undo_target (predict, eval) does.
        ops = keras.ops
        outputs = keras.layers.Lambda(lambda v: ops.add(ops.multiply(v, target_std), target_mean),
                                      name="unstandardize_target")(outputs)
    wrapped = keras.Model(inputs, outputs, name=f"{model.name}_with_preparation")
    wrapped(np.zeros((1, *raw_shape), np.float32))  # Keras exports to ONNX only a called model
    return wrapped


def write_export(model: Any, fmt: str, path: Path) -> None:
    """Keras's model.export, quiet (its converters warn about their own NumPy use)."""
    if fmt == "saved_model":  # on JAX and torch too: imported quietly, off their GPUs
        tensorflow_module()
    with warnings.catch_warnings(), quiet_native_logs():  # and TensorFlow's graph optimiser logs
        warnings.simplefilter("ignore")
        model.export(str(path), format=FORMATS[fmt], verbose=False)


def compare(reference: np.ndarray, got: np.ndarray, labels: np.ndarray | None,
            tolerance: float) -> dict[str, Any]:
    """Max |difference| (passed when within the tolerance, scaled for outputs beyond 1) and,
    for classifiers, both test accuracies and how often their predicted classes agree."""
    reference, got = np.asarray(reference, np.float64), np.asarray(got, np.float64)
    if reference.shape != got.shape:
        return {"passed": False, "max_abs_diff": None,
                "problem": f"gives outputs of shape {list(got.shape)}, the Keras model "
                           f"{list(reference.shape)}"}
    for side, outputs in (("the Keras model", reference), ("the export", got)):
        if not np.isfinite(outputs).all():  # NaN compares false: no difference would exceed
            return {"passed": False, "max_abs_diff": None,
                    "problem": f"{side} gives outputs that are not finite numbers (NaN or "
                               "infinite) on the test split, so the two cannot be compared"}
    diff = float(np.max(np.abs(reference - got))) if reference.size else 0.0
    scale = max(1.0, float(np.max(np.abs(reference))) if reference.size else 1.0)
    result: dict[str, Any] = {"passed": bool(np.isfinite(diff) and diff <= tolerance * scale),
                              "max_abs_diff": diff}
    if labels is not None:
        keras_class, export_class = classes(reference), classes(got)
        result["accuracy"] = {"keras": float(np.mean(keras_class == labels)),
                              "export": float(np.mean(export_class == labels))}
        result["predictions_agree"] = float(np.mean(keras_class == export_class))
    return result


def check(fmt: str, path: Path, raw: np.ndarray, reference: np.ndarray,
          labels: np.ndarray | None) -> dict[str, Any]:
    """Run the export in its runtime and compare; one its runtime cannot load or run fails."""
    try:
        got = RUNTIMES[fmt](path, raw)
    except Exception as exc:  # noqa: BLE001 - any runtime's refusal is this export's failure
        first = (str(exc).strip().splitlines() or [""])[0]
        return {"passed": False, "max_abs_diff": None,
                "problem": f"does not run in {runtime_name(fmt)}: {type(exc).__name__}: {first}"}
    return compare(reference, got, labels, TOLERANCE[fmt])


def parity_data(config: Config, preparation: Preparation, raw_shape: list[int],
                model: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The run's test split as raw values (the export's input), the Keras model's outputs on it
    prepared like eval and predict do, and the class ids (None for a model that does not
    classify)."""
    unscaled = config.dataset.model_copy(update={"rescale": 1.0, "standardize": False})
    splits = load_splits(unscaled, config.seed, config.task_spec)  # the same seeded subset
    raw = splits.x_test
    if list(raw.shape[1:]) != list(raw_shape):
        raise RunError(f"the test split's samples have shape {list(raw.shape[1:])}, not the "
                       f"{raw_shape} the run was trained on; has the data changed?")
    reference, labels = config.task_spec.parity(outputs(config, preparation, model, raw),
                                                splits.y_test, config.from_logits)
    return raw, np.asarray(reference), labels


def outputs(config: Config, preparation: Preparation, model: Any, raw: np.ndarray) -> Any:
    """The Keras model's outputs on raw values, prepared as eval and predict do."""
    return preparation.undo_target(model.predict(
        preparation.apply(raw), batch_size=config.training.batch_size, verbose=0))


def float32_twin(model: Any) -> Any:
    """A mixed-precision model as float32 with the same weights (float32 already); the model
    itself where it computes in float32. ONNX Runtime and TFLite's built-in ops take no
    bfloat16: a bf16 Conv is an invalid ONNX graph, and a Flex op in TFLite."""
    if policy_of(model) == "float32":
        return model
    twin = type(model).from_config(_in_float32(model.get_config()))
    twin.set_weights(model.get_weights())
    return twin


def policy_of(model: Any) -> str:
    """The dtype policy the model's layers compute in: float32 unless one of them does not."""
    names = {layer.dtype_policy.name for layer in model.layers} - {"float32"}
    return next(iter(sorted(names)), "float32")


def _in_float32(config: Any) -> Any:
    """A Keras config with every serialised dtype policy made float32, nested models included."""
    if isinstance(config, dict):
        if config.get("class_name") == "DTypePolicy" and isinstance(config.get("config"), dict):
            return {**config, "config": {**config["config"], "name": "float32"}}
        return {key: _in_float32(value) for key, value in config.items()}
    if isinstance(config, list):
        return [_in_float32(value) for value in config]
    return config


def trained_against_export(config: Config, preparation: Preparation, trained: Any,
                           reference: np.ndarray, raw: np.ndarray,
                           labels: np.ndarray | None) -> dict[str, Any]:
    """For a model trained in mixed precision: its policy, and how far its float32 twin (what
    is exported, and what parity compares the export with) answers from it."""
    # The class ids stand for y_test: the task's parity takes them as they are (one per
    # sample), and a task without classes reads no labels.
    ids = labels if labels is not None else np.empty(0)
    answers, _ = config.task_spec.parity(outputs(config, preparation, trained, raw), ids,
                                         config.from_logits)
    answers = np.asarray(answers, np.float64)
    found: dict[str, Any] = {"trained": policy_of(trained), "exported": "float32",
                             "max_abs_diff": float(np.max(np.abs(answers - reference)))
                             if reference.size else 0.0}
    if labels is not None:
        found["predictions_agree"] = float(np.mean(classes(answers) == classes(reference)))
    return found


def place(partial: Path, path: Path, passed: bool) -> Path:
    """A checked export takes its place (replacing an earlier one); a failed one is set aside
    as NAME.parity-failed, kept for a look but under a name no tool loads by accident."""
    target = path if passed else path.with_name(path.name + FAILED_SUFFIX)
    remove(target)
    partial.replace(target)
    return target


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def export_run(run_dir: Path, fmt: str, *, model_path: Path | None = None,
               output: Path | None = None, backend: str | None = None) -> dict[str, Any]:
    """Export the run's model (or `model_path`) to `fmt`, check it on the test split, record the
    result in export.json and return it; entry["status"] is "passed" or "failed"."""
    if not (run_dir / runs.CONFIG_FILE).is_file():
        raise RunError(f"{run_dir}: not a run directory (no {runs.CONFIG_FILE}); pass a folder "
                       "made by dltrain fit.")
    if model_path is None:
        check_single_run(run_dir, "export")
    config = run_config(run_dir / runs.CONFIG_FILE)
    name = backend or config.backend
    check_supported(fmt, name)
    check_installed(fmt, name)
    model_path = model_path or completed_model(run_dir, "Export")
    path = output or default_output(run_dir, model_path, fmt)
    check_output(path, fmt)
    runs.refuse_link(run_dir / runs.EXPORT_FILE)
    saved, preparation = read_preparation(run_dir / runs.PREPARATION_FILE,
                                          config.model.input_shape)
    unknown = sorted(set(saved) - KNOWN_PREPARATION)
    if unknown:
        raise RunError(f"{run_dir / runs.PREPARATION_FILE}: holds steps export cannot build into "
                       f"the exported model yet ({', '.join(unknown)}); it would answer "
                       "differently from dltrain predict, so nothing was exported.")
    # On the CPU, where the runtimes that check ONNX and TFLite run too: the difference then
    # measures the conversion, not GPU kernels (TF32) against CPU ones.
    prepare_runtime("cpu", config.seed, False, name)
    trained = load_model(model_path, config.training.jit_compile)
    model = float32_twin(trained)
    check_outputs(run_dir / runs.PREPARATION_FILE, saved, model.output_shape[-1])
    raw_shape = preparation.flatten_from or [int(size) for size in model.input_shape[1:]]
    raw, reference, labels = parity_data(config, preparation, raw_shape, model)
    mixed = ({"mixed_precision": trained_against_export(config, preparation, trained, reference,
                                                        raw, labels)}
             if model is not trained else {})
    exported = with_preparation(model, preparation, raw_shape, config.from_logits)
    kept, result, seconds = export_and_check(exported, fmt, path, raw, reference, labels)
    entry = {"status": "passed" if result.pop("passed") else "failed", "format": fmt,
             "keras_format": FORMATS[fmt], "path": str(kept), "model": str(model_path),
             "backend": name, "runtime": runtime_name(fmt), "tolerance": TOLERANCE[fmt],
             **result, **mixed, "test_samples": len(raw),
             "input": describe_input(preparation, raw_shape, raw, config.dataset,
                                     config.backend),
             "output": {"shape": [None, *[int(s) for s in model.output_shape[1:]]],
                        "values": "the Keras model's outputs, as dltrain predict shows them",
                        "class_names": saved.get("class_names")},
             "seconds": seconds}
    record(run_dir, fmt, entry)
    return entry


def export_and_check(model: Any, fmt: str, path: Path, raw: np.ndarray, reference: np.ndarray,
                     labels: np.ndarray | None) -> tuple[Path, dict[str, Any], dict[str, float]]:
    """Export beside `path` under a temporary name, check it, then put it in place or aside;
    returns where it went, the comparison and the seconds each step took."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileNotFoundError:  # a file system that makes no folders there (/proc)
        raise RunError(f"--output {path}: no folder can be made for it there; choose a path "
                       "in a folder you can write.") from None
    partial = path.with_name(f".{path.stem}.partial{path.suffix}")  # Keras wants .tflite last
    remove(partial)
    started = time.perf_counter()
    try:
        write_export(model, fmt, partial)
        exported = time.perf_counter()
        result = check(fmt, partial, raw, reference, labels)
    except BaseException:  # a full disk, an interrupt: no half-written export is left behind
        remove(partial)
        raise
    checked = time.perf_counter()
    return place(partial, path, result["passed"]), result, {
        "export": round(exported - started, 3), "check": round(checked - exported, 3)}


def record(run_dir: Path, fmt: str, entry: dict[str, Any]) -> None:
    """export.json: one entry per format, the latest export of each."""
    entries = records.read_exports(run_dir).formats()
    records.write(run_dir, records.Exports.of({**entries, fmt: entry}))
