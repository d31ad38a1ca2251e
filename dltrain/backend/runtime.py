"""Choosing the backend and importing Keras on it: devices, seeds, determinism, versions.

The backend (tensorflow, jax or torch) is fixed per process by KERAS_BACKEND before Keras is
first imported: `use_backend` sets it and refuses a switch.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import logging
import os
import sys
import threading
from typing import Any

from dltrain.backend import allocator
from dltrain.backend.jax import (
    _COMPILED,
    Compilations,
    _jax_compilation_cache,
    _listen_to_jax_compilations,
    jax_cache_dir,
)
from dltrain.backend.logs import quiet_native_logs
from dltrain.backend.names import BACKENDS, INSTALL, NAMES, Device
from dltrain.errors import RunError


def installed(name: str) -> bool:
    """Whether a backend's package can be imported here, without importing it."""
    return importlib.util.find_spec(name) is not None


def active_backend() -> str:
    """The backend this process runs (or will run, once Keras is imported)."""
    loaded = sys.modules.get("keras")
    if loaded is not None and hasattr(loaded, "backend"):
        return str(loaded.backend.backend())
    return os.environ.get("KERAS_BACKEND") or "tensorflow"


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
    if device == "cpu" and name == "jax":
        os.environ["JAX_PLATFORMS"] = "cpu"
    if device == "cpu" and name == "torch":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


_IMPORTING = threading.Lock()
KEPT_FREED_MEMORY: list[bool] = []  # whether a torch run set the allocator (allocator.py)


def keras_module() -> Any:
    """Import Keras on the chosen backend, quietly; the one place dltrain does it.

    One thread imports, any other waits (fit reads the data in a thread meanwhile): two imports
    at once would both redirect file descriptor 2 (quiet_native_logs) and could leave it closed.
    """
    with _IMPORTING:
        return _import_keras()


class _NotRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


@functools.cache
def _import_keras() -> Any:
    name = active_backend()
    os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 and the
    # like; on an AVX2-only CPU they trained the MNIST convnet 1.8x and fashion_mnist_best
    # 1.4x faster than the default kernels. TF_ENABLE_ONEDNN_OPTS=0 still turns them off.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with quiet_native_logs():
        import keras

        # Keras imports TensorFlow whenever it is installed, whatever the backend (to seed it,
        # and in saving): do it here, quietly, and keep it off the GPUs the backend trains on.
        if name == "tensorflow" or installed("tensorflow"):
            import tensorflow as tf

            tf.config.list_physical_devices("GPU")  # initialises CUDA, which logs when there is none
            if name != "tensorflow":
                tf.config.set_visible_devices([], "GPU")
            # smoke, cv and tune build model after model: TensorFlow then warns of retracing,
            # a paragraph each time, about functions Keras makes, not the user.
            tf.get_logger().addFilter(_NotRetracing())
    if keras.backend.backend() != name:
        raise RunError(f"Keras is loaded on the {keras.backend.backend()} backend, not {name}; "
                       "run dltrain in a new process.")
    if name == "jax":
        _jax_compilation_cache()
        _listen_to_jax_compilations()
    if name == "torch":
        KEPT_FREED_MEMORY.append(allocator.keep_freed_memory())
    return keras


def tensorflow_module() -> Any:
    """TensorFlow itself, imported the way keras_module does (quiet, oneDNN on)."""
    if active_backend() == "tensorflow":
        keras_module()
    import tensorflow as tf

    return tf


def compilations() -> Compilations | None:
    """The compilations so far (a copy), where the backend reports them: JAX; else None."""
    if active_backend() != "jax" or "keras" not in sys.modules:
        return None
    return dataclasses.replace(_COMPILED)


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
    if deterministic and name == "jax" and "jax" not in sys.modules:
        # XLA reads its flags once, when JAX starts: GPU reductions in a fixed order.
        flags = os.environ.get("XLA_FLAGS", "")
        if "xla_gpu_deterministic_ops" not in flags:
            os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()
    keras = keras_module()
    gpus = _gpu_names(name)
    if device == "gpu" and not gpus:
        raise RunError(f"--device gpu: {NAMES[name]} sees no GPU here. Use --device cpu or auto.")
    if device == "cpu" and gpus and name == "tensorflow":
        tensorflow_module().config.set_visible_devices([], "GPU")
        gpus = []
    keras.utils.set_random_seed(seed)
    if deterministic and name == "tensorflow":
        tensorflow_module().config.experimental.enable_op_determinism()
    if deterministic and name == "torch":
        import torch

        torch.use_deterministic_algorithms(True, warn_only=True)
    return f"GPU ({', '.join(gpus)})" if gpus else "CPU"


def _gpu_names(name: str) -> list[str]:
    """The GPUs the backend can use, by model name (one entry per GPU)."""
    if name == "tensorflow":
        tf = tensorflow_module()
        with quiet_native_logs():
            gpus = tf.config.list_physical_devices("GPU")
            return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                    for gpu in gpus]
    if name == "jax":
        import jax

        try:
            return [str(d.device_kind) for d in jax.devices("gpu")]
        except RuntimeError:  # no GPU platform (or JAX_PLATFORMS=cpu)
            return []
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]



def runtime_notes(deterministic: bool) -> list[str]:
    """What training.deterministic guarantees on a backend other than TensorFlow."""
    name = active_backend()
    if not deterministic or name == "tensorflow":
        return []
    if name == "jax":
        return ["training.deterministic on jax: seeds fixed and XLA's deterministic GPU ops on "
                "(XLA_FLAGS=--xla_gpu_deterministic_ops=true); on a CPU, JAX's ops are "
                "deterministic already."]
    return ["training.deterministic on torch: seeds fixed and "
            "torch.use_deterministic_algorithms on (ops without a deterministic kernel warn)."]


def versions() -> dict[str, Any]:
    """The backend and framework versions a run records, and settings that change round-off."""
    keras = keras_module()
    name = active_backend()
    found: dict[str, Any] = {"backend": name, "keras": keras.__version__}
    if name == "tensorflow":
        found["tensorflow"] = tensorflow_module().__version__
        # Kernels differ in round-off, so a rerun that should match needs the same setting.
        found["tf_enable_onednn_opts"] = os.environ.get("TF_ENABLE_ONEDNN_OPTS")
    elif name == "jax":
        import jax
        import jaxlib

        cache = jax_cache_dir()
        found.update(jax=jax.__version__, jaxlib=jaxlib.__version__,
                     jax_compilation_cache=None if cache is None else str(cache))
    else:
        import torch

        found["torch"] = torch.__version__
        found["keep_freed_memory"] = any(KEPT_FREED_MEMORY)  # the allocator's settings (speed)
    found["mixed_precision"] = keras.mixed_precision.global_policy().name
    return found



def op_errors() -> tuple[type[BaseException], ...]:
    """What the backend's ops raise for arguments they cannot take: ValueError and TypeError,
    and TensorFlow's own OpError (InvalidArgumentError, ...) on its backend."""
    if active_backend() == "tensorflow":
        return (ValueError, TypeError, tensorflow_module().errors.OpError)
    return (ValueError, TypeError)
