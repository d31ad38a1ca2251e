"""The one seam that knows the Keras backend: choosing it, importing Keras, devices, seeds,
determinism, versions, and the few raw operations dltrain needs.

Every other module asks this package for Keras (`keras_module`) or, on the TensorFlow backend,
for TensorFlow (`tensorflow_module`), and for what differs by backend. As in Keras's own
keras/src/backend/, each backend has its module (tensorflow, jax, torch) with the same few
functions (`runtime.Backend`), chosen by name in `runtime`. `names` holds the one list of
backends and what each can do, with no framework, for stages before this one (the config).
The rest: `logs` (quiet start-up), `failures` (what errors say), `images` (decoding),
`augment_ops`, `saving`, `allocator` and `distribution`.
"""

from __future__ import annotations

from dltrain.backend.augment_ops import (
    brightness_seed,
    let_augmentation_compile,
    random_brightness,
)
from dltrain.backend.failures import OUT_OF_MEMORY, op_message, out_of_memory
from dltrain.backend.images import ImageDecodeError, decode_image
from dltrain.backend.jax import Compilations, jax_cache_dir
from dltrain.backend.logs import quiet_native_logs
from dltrain.backend.names import BACKENDS, INSTALL, NAMES, Device
from dltrain.backend.runtime import (
    active_backend,
    compilations,
    dtype_policy,
    input_is_tf_data,
    installed,
    keras_module,
    op_errors,
    prepare_runtime,
    runtime_notes,
    tensorboard_available,
    tensorflow_module,
    use_backend,
    versions,
)
from dltrain.backend.saving import one_step_per_execution_saved

__all__ = [
    "BACKENDS", "INSTALL", "NAMES", "OUT_OF_MEMORY", "Compilations", "Device", "ImageDecodeError",
    "active_backend", "brightness_seed", "compilations", "decode_image", "dtype_policy",
    "input_is_tf_data", "installed", "jax_cache_dir", "keras_module", "let_augmentation_compile",
    "one_step_per_execution_saved", "op_errors", "op_message", "out_of_memory", "prepare_runtime",
    "quiet_native_logs", "random_brightness", "runtime_notes", "tensorboard_available",
    "tensorflow_module", "use_backend", "versions",
]
