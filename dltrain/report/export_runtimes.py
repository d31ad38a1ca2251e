"""Load an export back with the runtime its format is made for, and run it on a batch of inputs:
TensorFlow's SavedModel loader, ONNX Runtime, the TFLite (LiteRT) interpreter."""

from __future__ import annotations

import importlib.util
import logging
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.backend import quiet_native_logs, tensorflow_module

BATCH = 256  # inputs per call: bounded memory on a large test split


def chunks(x: np.ndarray, size: int = BATCH) -> Iterator[np.ndarray]:
    for start in range(0, len(x), size):
        yield np.ascontiguousarray(x[start:start + size], dtype=np.float32)


def run_saved_model(path: Path, x: np.ndarray) -> np.ndarray:
    """The `serve` endpoint Keras's export writes, through tf.saved_model.load."""
    tf = tensorflow_module()
    absl = logging.getLogger("absl")
    level = absl.level
    absl.setLevel(logging.ERROR)  # a JAX-made SavedModel warns of gradients that serving never needs
    try:
        loaded = tf.saved_model.load(str(path))  # held: `serve` reads the variables it owns
    finally:
        absl.setLevel(level)
    return np.concatenate([np.asarray(loaded.serve(tf.constant(chunk))) for chunk in chunks(x)])


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    return np.concatenate([session.run(None, {name: chunk})[0] for chunk in chunks(x)])


def run_tflite(path: Path, x: np.ndarray) -> np.ndarray:
    """Resized to each batch: Keras's TFLite files take any batch size (a torch-made one has a
    fixed batch of 1, and resizing serves it too)."""
    interpreter = tflite_interpreter(path)
    given, taken = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    outputs, shape = [], None
    with quiet_native_logs():  # XNNPACK announces itself on stderr at the first allocation
        for chunk in chunks(x):
            if chunk.shape != shape:
                interpreter.resize_tensor_input(given["index"], list(chunk.shape))
                interpreter.allocate_tensors()
                shape = chunk.shape
            interpreter.set_tensor(given["index"], chunk)
            interpreter.invoke()
            outputs.append(np.array(interpreter.get_tensor(taken["index"])))
    return np.concatenate(outputs)


def tflite_interpreter(path: Path) -> Any:
    """LiteRT's interpreter (the ai-edge-litert package) where installed, else TensorFlow
    2.21's own tf.lite.Interpreter, which still ships but warns that it is deprecated."""
    with quiet_native_logs():
        if importlib.util.find_spec("ai_edge_litert") is not None:
            from ai_edge_litert.interpreter import Interpreter

            return Interpreter(model_path=str(path))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return tensorflow_module().lite.Interpreter(model_path=str(path))


def runtime_name(fmt: str) -> str:
    """Which runtime checked a format, with its version, for export.json."""
    if fmt == "onnx":
        import onnxruntime

        return f"onnxruntime {onnxruntime.__version__}"
    if fmt == "tflite" and importlib.util.find_spec("ai_edge_litert") is not None:
        from importlib.metadata import version

        return f"ai-edge-litert {version('ai-edge-litert')}"
    loader = "tf.saved_model.load" if fmt == "saved_model" else "tf.lite.Interpreter"
    return f"tensorflow {tensorflow_module().__version__} ({loader})"


RUNTIMES: dict[str, Callable[[Path, np.ndarray], np.ndarray]] = {
    "saved_model": run_saved_model, "onnx": run_onnx, "tflite": run_tflite}
