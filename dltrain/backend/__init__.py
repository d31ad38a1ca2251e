"""The one seam that knows the Keras backend: choosing it, importing Keras, devices, seeds,
determinism, versions, and the few raw operations dltrain needs.

Every other module asks this one for Keras (`keras_module`) or, on the TensorFlow backend, for
TensorFlow (`tensorflow_module`). The backend (tensorflow, jax or torch) is fixed per process
by KERAS_BACKEND before Keras is first imported: `use_backend` sets it and refuses a switch.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib.util
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from dltrain.backend import allocator
from dltrain.errors import RunError

Device = Literal["auto", "cpu", "gpu"]
BACKENDS = ("tensorflow", "jax", "torch")
NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
# TensorFlow is a dependency of dltrain itself; the others are extras (GPU wheels: see README).
INSTALL = {"tensorflow": 'pip install "tensorflow>=2.21,<2.22"', "jax": 'pip install "dltrain[jax]"',
           "torch": 'pip install "dltrain[torch]"'}


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


def jax_cache_dir() -> Path | None:
    """JAX's persistent compilation cache: on by default in the user's cache folder, so a second
    run of the same net skips XLA's compilation. DLTRAIN_JAX_CACHE=0 turns it off; a path moves it.
    """
    chosen = os.environ.get("DLTRAIN_JAX_CACHE", "")
    if chosen.lower() in ("0", "off", "false", "no"):
        return None
    if chosen and chosen != "1":
        return Path(chosen).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dltrain" / "jax"


def _jax_compilation_cache() -> None:
    folder = jax_cache_dir()
    if folder is None:
        return
    import jax

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache rather than fail
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        # JAX keeps only compilations over 1 s by default: on a CPU none of a small net's are,
        # so nothing was cached (quickstart: 24 entries, 352 KB with 0; first epoch 2.3 s
        # instead of 3.7 s in the second run).
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@dataclasses.dataclass
class Compilations:
    """JAX's own account of its compilations (jax.monitoring): the programs XLA compiled or
    loaded from the persistent cache, how many it loaded, and the seconds spent tracing,
    lowering and compiling or loading them."""

    programs: int = 0
    from_cache: int = 0
    seconds: float = 0.0

    def since(self, earlier: Compilations) -> Compilations:
        return Compilations(self.programs - earlier.programs,
                            self.from_cache - earlier.from_cache,
                            round(self.seconds - earlier.seconds, 3))


_COMPILED = Compilations()  # the process's, since Keras was imported on JAX
_COMPILE_STEPS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")  # the last: once per program


def _listen_to_jax_compilations() -> None:
    from jax import monitoring

    def timed(event: str, duration_secs: float, **kwargs: str | int) -> None:
        if event in _COMPILE_STEPS:
            _COMPILED.seconds += duration_secs
            _COMPILED.programs += event == _COMPILE_STEPS[-1]

    def counted(event: str, **kwargs: str | int) -> None:
        _COMPILED.from_cache += event == "/jax/compilation_cache/cache_hits"

    monitoring.register_event_duration_secs_listener(timed)
    monitoring.register_event_listener(counted)


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


@contextlib.contextmanager
def one_step_per_execution_saved(model: Any) -> Iterator[None]:
    """While `model` is saved, its compile config says one training step per execution.

    Keras compiles a loaded .keras file as saved, and its torch trainer refuses more than one
    step a call as soon as the model is used: a file from a TensorFlow or JAX run with several
    would not evaluate on torch. How many steps a call trains is the run's business (its
    config's training.steps_per_execution), not the model file's.
    """
    saved = getattr(model, "_compile_config", None)  # Keras's record of compile()'s arguments
    arguments = getattr(saved, "config", None)
    steps = arguments.get("steps_per_execution", 1) if isinstance(arguments, dict) else 1
    if arguments is None or steps == 1:
        yield
        return
    arguments["steps_per_execution"] = 1
    try:
        yield
    finally:
        arguments["steps_per_execution"] = steps


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


def brightness_seed(seed: int) -> Any:
    """The seed random_brightness takes: TF's op seed, or Keras's SeedGenerator elsewhere (a
    plain integer would make Keras draw the same factors for every batch)."""
    if active_backend() == "tensorflow":
        return seed
    return keras_module().random.SeedGenerator(seed)


def random_brightness(images: Any, bounds: tuple[float, float], value_max: float,
                      seed: Any) -> Any:
    """Each image times one factor drawn from `bounds`, clipped to [0, value_max]; `seed` a
    SeedGenerator (Keras's draw, on TensorFlow too) or TF's op seed."""
    if active_backend() != "tensorflow" or not isinstance(seed, int):
        keras = keras_module()
        ops = keras.ops
        images = ops.convert_to_tensor(images, dtype="float32")
        factors = keras.random.uniform((ops.shape(images)[0], 1, 1, 1), bounds[0], bounds[1],
                                       seed=seed)
        return ops.clip(images * factors, 0.0, value_max)
    tf = tensorflow_module()
    factors = tf.random.uniform([tf.shape(images)[0], 1, 1, 1], bounds[0], bounds[1], seed=seed)
    return tf.clip_by_value(images * factors, 0.0, value_max)


# What each library says when an allocation fails: TensorFlow's ResourceExhaustedError ("OOM when
# allocating tensor"), XLA's RESOURCE_EXHAUSTED (JAX), torch's OutOfMemoryError ("CUDA out of
# memory") and CPU allocator ("can't allocate memory"), NumPy's MemoryError.
OUT_OF_MEMORY = re.compile(r"RESOURCE_EXHAUSTED|OOM when allocating|out of memory|"
                           r"can't allocate memory", re.IGNORECASE)


def out_of_memory(exc: BaseException) -> str | None:
    """The allocator's own words, shortened, when `exc` says memory ran out (host or device, any
    backend); None for any other error."""
    text = str(exc)
    if not (isinstance(exc, MemoryError)
            or type(exc).__name__ in ("ResourceExhaustedError", "OutOfMemoryError")
            or OUT_OF_MEMORY.search(text)):
        return None
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text).split(" [Op:")[0]  # TensorFlow's op names
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    line = next((line for line in lines if OUT_OF_MEMORY.search(line)),
                lines[0] if lines else type(exc).__name__)
    if "DefaultCPUAllocator" in line:  # torch's CPU allocator, after its source location
        line = line[line.index("DefaultCPUAllocator"):]
    # torch's CUDA message goes on with the device's whole account: keep what was asked for.
    cuda = re.match(r"CUDA out of memory\. Tried to allocate \S+ \S+?\.", line)
    return (cuda[0] if cuda else line)[:300]


def op_errors() -> tuple[type[BaseException], ...]:
    """What the backend's ops raise for arguments they cannot take: ValueError and TypeError,
    and TensorFlow's own OpError (InvalidArgumentError, ...) on its backend."""
    if active_backend() == "tensorflow":
        return (ValueError, TypeError, tensorflow_module().errors.OpError)
    return (ValueError, TypeError)


def op_message(exc: BaseException) -> str:
    """An op's error as one line, without TensorFlow's graph-function and op names."""
    import re

    lines = str(exc).strip().splitlines()
    text = re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\].*", "", lines[0]) if lines else ""
    return text or type(exc).__name__


class ImageDecodeError(ValueError):
    """The bytes are not an image the backend can decode; the message says why."""


def decode_image(data: bytes, channels: int, size: tuple[int, int]) -> Any:
    """Decode PNG/JPEG/BMP/GIF bytes to uint8 [height, width, channels], resized bilinearly.

    TensorFlow's decoder on its backend (as always), Pillow elsewhere; both resize with the
    same half-pixel bilinear kernel and no antialiasing.
    """
    if active_backend() != "tensorflow":
        return _decode_with_pillow(data, channels, size)
    import re

    tf = tensorflow_module()
    try:
        image = tf.io.decode_image(data, channels=channels, expand_animations=False)
    except (tf.errors.InvalidArgumentError, ValueError) as exc:
        if _pillow_reads_it(data):  # a grey BMP or GIF asked as RGB, a CMYK JPEG
            return _decode_with_pillow(data, channels, size)
        raise ImageDecodeError(re.sub(r"\{\{.*?\}\}\s*|\s*\[Op:\w+\]", "",
                                      str(exc).splitlines()[0])) from None
    if tuple(image.shape[:2]) != tuple(size):
        resized = tf.image.resize(image, size)
        image = tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)
    return image.numpy()


def _pillow_reads_it(data: bytes) -> bool:
    """Whether bytes TensorFlow refused are an image it cannot take in that form but Pillow
    can (BMP and GIF in another channel count, CMYK JPEG): not a damaged file, which must stay
    refused (a truncated PNG is found and named by its refusal)."""
    import io

    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            return opened.format in ("BMP", "GIF") or (opened.format == "JPEG"
                                                      and opened.mode == "CMYK")
    except (UnidentifiedImageError, OSError, SyntaxError):
        return False


def _eight_bit(image: Any) -> Any:
    """A 16-bit grey image (PNG's I;16) as 8-bit grey, its high byte as TensorFlow's decoder
    keeps it: Pillow's convert("L") clips, and read almost every pixel as white."""
    if not image.mode.startswith("I"):
        return image
    import numpy as np
    from PIL import Image

    values = np.clip(np.asarray(image).astype(np.int64), 0, 65535) >> 8
    return Image.fromarray(values.astype(np.uint8))


def _decode_with_pillow(data: bytes, channels: int, size: tuple[int, int]) -> Any:
    import io

    import numpy as np
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as opened:
            image = _eight_bit(opened).convert({1: "L", 3: "RGB", 4: "RGBA"}[channels])
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        raise ImageDecodeError(str(exc).split(" <")[0] if isinstance(
            exc, UnidentifiedImageError) else str(exc)) from None
    array = np.asarray(image, dtype=np.uint8).reshape(image.height, image.width, channels)
    if array.shape[:2] == tuple(size):
        return array
    ops = keras_module().ops
    resized = ops.image.resize(array[None].astype("float32"), size, interpolation="bilinear",
                               antialias=False, data_format="channels_last")[0]
    return np.clip(np.round(ops.convert_to_numpy(resized)), 0, 255).astype(np.uint8)
