"""Choosing the backend and importing Keras on it: devices, seeds, determinism, versions.

The backend (tensorflow, jax or torch) is fixed per process by KERAS_BACKEND before Keras is
first imported: `use_backend` sets it and refuses a switch. What differs by backend is in its
own module (tensorflow.py, jax.py, torch.py), each with the functions of `Backend`, chosen here
by name from REGISTRY; what is known without importing a framework is in names.py.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import importlib.util
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any, Protocol

from dltrain.backend import jax, tensorflow, torch
from dltrain.backend.jax import Compilations
from dltrain.backend.lean_import import keras_takes_tensorflow_for_absent, unused_imports_refused
from dltrain.backend.logs import quiet_native_logs
from dltrain.backend.names import (
    BACKENDS,
    DEFAULT_BACKEND,
    INSTALL,
    NAMES,
    Device,
    facts,
    feeds_tf_data,
)
from dltrain.backend.precision import precision_policy
from dltrain.errors import RunError


class Backend(Protocol):
    """What each backend's module provides (its functions, called on the module)."""

    def before_import(self, device: Device) -> None: ...  # what the framework reads at import
    def deterministic_before_import(self) -> None: ...
    def after_import(self) -> None: ...  # once Keras is imported on it
    def gpu_names(self) -> list[str]: ...
    def hide_gpus(self, gpus: list[str]) -> list[str]: ...  # --device cpu after import
    def set_deterministic(self) -> None: ...
    def determinism_notes(self) -> list[str]: ...
    def versions(self) -> dict[str, Any]: ...
    def op_errors(self) -> tuple[type[BaseException], ...]: ...


REGISTRY: dict[str, Backend] = {"tensorflow": tensorflow, "jax": jax, "torch": torch}
# Whether prepare_runtime left the model a GPU: what mixed_precision auto asks of this process.
_ON_GPU = {"chosen": False}


def installed(name: str) -> bool:
    """Whether a backend's package can be imported here, without importing it."""
    return importlib.util.find_spec(name) is not None


def active_backend() -> str:
    """The backend this process runs (or will run, once Keras is imported)."""
    loaded = sys.modules.get("keras")
    if loaded is not None and hasattr(loaded, "backend"):
        return str(loaded.backend.backend())
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


def use_backend(name: str, device: Device = "auto") -> None:
    """Choose the backend for this process, before Keras is imported; checks it is installed.

    `--device cpu` hides the GPUs from JAX and torch here, since they read it at import.
    """
    if name not in BACKENDS:
        raise RunError(f"backend must be one of {', '.join(BACKENDS)}. Received: {name!r}.")
    if not installed(name):
        others = " or ".join(b for b in BACKENDS if b != name and installed(b))
        raise RunError(f"backend {name}: the {name} package is not installed here. Install it "
                       f"with: {INSTALL[name]}"
                       + (f" (or choose --backend {others})." if others else "."))
    if "keras" in sys.modules:
        current = active_backend()
        if current != name:
            raise RunError(f"backend {name}: Keras is already loaded on the {current} backend in "
                           "this process, and a process cannot switch; run dltrain again (a new "
                           f"process) with --backend {name}.")
        return
    os.environ["KERAS_BACKEND"] = name
    REGISTRY[name].before_import(device)


_IMPORTING = threading.Lock()


def keras_module() -> Any:
    """Import Keras on the chosen backend, quietly; the one place dltrain does it.

    One thread imports, any other waits (fit reads the data in a thread meanwhile): two imports
    at once would both redirect file descriptor 2 (quiet_native_logs) and could leave it closed.
    """
    with _IMPORTING:
        return _import_keras()


@functools.cache
def _import_keras() -> Any:
    name = active_backend()
    os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 and the
    # like; on an AVX2-only CPU they trained the MNIST convnet 1.8x and fashion_mnist_best
    # 1.4x faster than the default kernels. TF_ENABLE_ONEDNN_OPTS=0 still turns them off.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with quiet_native_logs(), unused_imports_refused(name), collection_paused():
        import keras

        if name != "tensorflow":
            keras_takes_tensorflow_for_absent()
    if name == "tensorflow":
        _import_tensorflow()
    if keras.backend.backend() != name:
        raise RunError(f"Keras is loaded on the {keras.backend.backend()} backend, not {name}; "
                       "run dltrain in a new process.")
    if name in REGISTRY:
        REGISTRY[name].after_import()
    return keras


@contextlib.contextmanager
def collection_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while Keras and its backend import, and what they
    made frozen after (gc.freeze): the import makes some 300,000 objects that live as long as
    the process, and each full collection walked them all again, finding nothing to free
    (quickstart's fit on TensorFlow: 6 full collections, 0.6 of its 6.1 CPU-s)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()
            gc.collect()  # once, for the import's own garbage, which freezing would keep
        gc.freeze()


def tensorflow_module() -> Any:
    """TensorFlow itself, quiet and with oneDNN on. On another backend dltrain imports it only
    to write TensorBoard logs or a SavedModel, and keeps it off that backend's GPUs."""
    keras_module()
    with _IMPORTING:
        return _import_tensorflow()


@functools.cache
def _import_tensorflow() -> Any:
    with quiet_native_logs(), unused_imports_refused("tensorflow"), collection_paused():
        import tensorflow as tf

        tensorflow.tame(trains=active_backend() == "tensorflow")
    return tf


def compilations() -> Compilations | None:
    """The compilations so far (a copy), where the backend reports them: JAX; else None."""
    name = active_backend()
    if name not in BACKENDS or not facts(name).counts_compilations or "keras" not in sys.modules:
        return None
    return jax.compilations_so_far()


def tensorboard_available() -> bool:
    """Keras's TensorBoard callback writes through tf.summary, so it needs TensorFlow installed.

    On another backend TensorFlow then only writes the logs: keras_module hid its GPUs.
    """
    return active_backend() == "tensorflow" or installed("tensorflow")


def prepare_runtime(device: Device, seed: int, deterministic: bool,
                    backend: str | None = None) -> str:
    """Choose the backend, pick the device, seed Python/NumPy/the backend; returns what will
    run the model ("CPU", or "GPU (<model>, ...)")."""
    name = backend or active_backend()
    use_backend(name, device)
    chosen = REGISTRY[name]
    if deterministic:
        chosen.deterministic_before_import()
    keras = keras_module()
    gpus = chosen.gpu_names()
    if device == "gpu" and not gpus:
        raise RunError(f"--device gpu: {NAMES[name]} sees no GPU here. Use --device cpu or auto.")
    if device == "cpu":
        gpus = chosen.hide_gpus(gpus)
    keras.utils.set_random_seed(seed)
    if deterministic:
        chosen.set_deterministic()
    _ON_GPU["chosen"] = bool(gpus)
    return f"GPU ({', '.join(gpus)})" if gpus else "CPU"


def dtype_policy(setting: str) -> str:
    """training.mixed_precision's Keras policy here (auto: see backend.precision)."""
    return precision_policy(setting, active_backend(), _ON_GPU["chosen"])


def runtime_notes(deterministic: bool) -> list[str]:
    """What training.deterministic guarantees on a backend other than TensorFlow."""
    return REGISTRY[active_backend()].determinism_notes() if deterministic else []


def versions() -> dict[str, Any]:
    """The backend and framework versions a run records, and settings that change round-off."""
    keras = keras_module()
    name = active_backend()
    found: dict[str, Any] = {"backend": name, "keras": keras.__version__,
                             **REGISTRY[name].versions()}
    found["mixed_precision"] = keras.mixed_precision.global_policy().name
    return found


def op_errors() -> tuple[type[BaseException], ...]:
    """What the backend's ops raise for arguments they cannot take: ValueError and TypeError,
    and TensorFlow's own OpError (InvalidArgumentError, ...) on its backend."""
    keras_module()  # a framework is imported the way keras_module does it (it is, by then)
    return REGISTRY[active_backend()].op_errors()


def input_is_tf_data() -> bool:
    """Whether the running backend reads its input from tf.data (names.feeds_tf_data)."""
    return feeds_tf_data(active_backend())
