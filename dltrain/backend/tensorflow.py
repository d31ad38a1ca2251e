"""The TensorFlow backend: what it needs around Keras's import, its devices, its versions and
its op errors. TensorFlow is imported here only once keras_module has (quietly, oneDNN on).
"""

from __future__ import annotations

import logging
import os
from typing import Any

from dltrain.backend.logs import quiet_native_logs
from dltrain.backend.names import Device


class _NotRetracing(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "triggered tf.function retracing" not in record.getMessage()


def tame(trains: bool) -> None:
    """TensorFlow just imported (runtime._import_tensorflow): on another backend, where it only
    writes TensorBoard logs or a SavedModel, kept off the GPUs that backend trains on."""
    import tensorflow as tf

    tf.config.list_physical_devices("GPU")  # initialises CUDA, which logs when there is none
    if not trains:
        tf.config.set_visible_devices([], "GPU")
    # smoke, cv and tune build model after model: TensorFlow then warns of retracing,
    # a paragraph each time, about functions Keras makes, not the user.
    tf.get_logger().addFilter(_NotRetracing())


def before_import(device: Device) -> None:
    """Nothing: TensorFlow hides its GPUs after import (hide_gpus)."""


def deterministic_before_import() -> None:
    """Nothing: op determinism is switched on after import (set_deterministic)."""


def after_import() -> None:
    """Nothing beyond tame, which runs wherever TensorFlow is imported."""


def gpu_names() -> list[str]:
    """The GPUs TensorFlow can use, by model name (one entry per GPU)."""
    import tensorflow as tf

    with quiet_native_logs():
        gpus = tf.config.list_physical_devices("GPU")
        return [tf.config.experimental.get_device_details(gpu).get("device_name", gpu.name)
                for gpu in gpus]


def hide_gpus(gpus: list[str]) -> list[str]:
    """--device cpu: TensorFlow reads it after import, so its GPUs are hidden now."""
    if gpus:
        import tensorflow as tf

        tf.config.set_visible_devices([], "GPU")
    return []


def set_deterministic() -> None:
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()


def determinism_notes() -> list[str]:
    """Nothing to add: op determinism is TensorFlow's own guarantee."""
    return []


def versions() -> dict[str, Any]:
    import tensorflow as tf

    # Kernels differ in round-off, so a rerun that should match needs the same setting.
    return {"tensorflow": tf.__version__,
            "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def op_errors() -> tuple[type[BaseException], ...]:
    """TensorFlow's own OpError (InvalidArgumentError, ...) besides ValueError and TypeError."""
    import tensorflow as tf

    return (ValueError, TypeError, tf.errors.OpError)
