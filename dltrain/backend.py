"""The one seam that knows TensorFlow: importing Keras, devices, seeds, determinism, versions.

Every other module asks this one for Keras (`keras_module`) or for TensorFlow
(`tensorflow_module`) and for the few raw TensorFlow operations dltrain needs, so that a second
backend is a change here and in the input pipeline, not across the package.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from typing import Any, Literal

from dltrain.errors import RunError

Device = Literal["auto", "cpu", "gpu"]


def keras_module() -> Any:
    """Import Keras on the TensorFlow backend, quietly; the one place dltrain does it."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    # TensorFlow turns its oneDNN kernels on by itself only on CPUs with AVX-512 and the like;
    # on an AVX2-only CPU they trained the MNIST convnet 1.8x and fashion_mnist_best 1.4x
    # faster than the default kernels. TF_ENABLE_ONEDNN_OPTS=0 still turns them off.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    with quiet_native_logs():
        import keras
        import tensorflow as tf

        tf.config.list_physical_devices("GPU")  # initialises CUDA, which logs when there is none
    return keras


def tensorflow_module() -> Any:
    """TensorFlow itself, imported the way keras_module does (quiet, oneDNN on)."""
    keras_module()
    import tensorflow as tf

    return tf


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Silence TensorFlow's C++ start-up lines, which ignore TF_CPP_MIN_LOG_LEVEL since 2.18.

    They are written to file descriptor 2 before absl logging starts; Python's own errors are
    raised after the descriptor is restored, so nothing a user needs is lost. DLTRAIN_TF_LOGS=1
    keeps them.
    """
    if os.environ.get("DLTRAIN_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def prepare_runtime(device: Device, seed: int, deterministic: bool) -> str:
    """Pick the device, seed Python/NumPy/TensorFlow; returns what will run the model."""
    tf = tensorflow_module()
    with quiet_native_logs():
        gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise RunError("--device gpu: TensorFlow sees no GPU here. Use --device cpu or auto.")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    keras_module().utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU"


def versions() -> dict[str, Any]:
    """The framework versions a run records, and the kernel setting that changes round-off."""
    keras = keras_module()
    tf = tensorflow_module()
    return {"tensorflow": tf.__version__, "keras": keras.__version__,
            # Kernels differ in round-off, so a rerun that should match needs the same setting.
            "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS")}


def random_brightness(images: Any, bounds: tuple[float, float], value_max: float,
                      seed: int) -> Any:
    """Each image times one factor drawn from `bounds`, clipped to [0, value_max]."""
    tf = tensorflow_module()
    factors = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], bounds[0], bounds[1], seed=seed)
    return tf.clip_by_value(images * factors, 0.0, value_max)


class ImageDecodeError(ValueError):
    """The bytes are not an image the backend can decode; the message says why."""


def decode_image(data: bytes, channels: int, size: tuple[int, int]) -> Any:
    """Decode PNG/JPEG/BMP/GIF bytes to uint8 [height, width, channels], resized bilinearly."""
    import re

    tf = tensorflow_module()
    try:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        raise ImageDecodeError(re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "",
                                      str(exc).splitlines()[0])) from None
    if tuple(image.shape[:2]) != tuple(size):
        resized = tf.image.resize(image, size)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return image.numpy()
