"""The backends dltrain runs on, by name, and what each can do: facts that need no framework.

The one list of backends. It imports nothing but the standard library, so the config (a stage
before `backend`) may validate against it: tools/check_layers.py lets earlier stages import
this module, and only this one, from dltrain.backend. Everything a stage needs to know that
differs by backend is a fact here, asked by function, so no module outside dltrain/backend
compares a backend's name.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args

from dltrain import install_line

Device = Literal["auto", "cpu", "gpu"]
BackendName = Literal["tensorflow", "jax", "torch"]
BACKENDS: tuple[str, ...] = get_args(BackendName)
DEFAULT_BACKEND = "tensorflow"  # dltrain's own dependency, and what runs from before the choice ran on


@dataclass(frozen=True)
class Facts:
    """What a backend can do, as far as dltrain cares, known without importing it."""

    display: str  # the framework's own name, for messages
    install: str  # the command that installs it
    data_parallel: bool  # Keras's data_parallel distribution is in a release
    steps_per_call: bool  # Keras's trainer runs several steps per call (steps_per_execution > 1)
    steps_per_call_data_parallel: bool  # ... and under data_parallel too
    tf_data: bool  # the input pipeline is tf.data, augmenting in its parallel map
    dispatches_ahead: bool  # Keras runs batch-end callbacks on a worker thread, steps ahead
    counts_compilations: bool  # the framework reports its own compilations (jax.monitoring)
    export_formats: tuple[str, ...]  # what Keras 3.15's model.export writes from it
    # Keras's image transforms (affine_transform: RandomZoom, RandomRotation and kin) are ops its
    # compiler takes: jnp and jax.scipy on JAX. Keras marks those layers supports_jit=False for
    # TensorFlow's ImageProjectiveTransform, which XLA lacks, and for every backend.
    compiles_image_transforms: bool = False
    # bfloat16 measured faster than float32 on a CPU that computes it natively (AVX-512 BF16,
    # AMX): oneDNN's kernels under TensorFlow. Not measured on the others' CPU paths.
    cpu_bf16: bool = False
    # Keras's trainer traces the train step a second time for a loop of several steps a call
    # (TensorFlow: once to learn the loop's outputs, once inside tf.while_loop), and each epoch
    # gets its own iterator: a cost that short epochs never pay back.
    traces_step_loop: bool = False


# TensorFlow is a dependency of dltrain itself; the others are extras (GPU wheels: see README).
FACTS: dict[str, Facts] = {
    "tensorflow": Facts("TensorFlow", 'pip install "tensorflow>=2.21,<2.22"', data_parallel=True,
                        steps_per_call=True, steps_per_call_data_parallel=False, tf_data=True,
                        dispatches_ahead=False, counts_compilations=False,
                        export_formats=("saved_model", "onnx", "tflite"), cpu_bf16=True,
                        traces_step_loop=True),
    "jax": Facts("JAX", install_line("jax"), data_parallel=True, steps_per_call=True,
                 steps_per_call_data_parallel=True, tf_data=False, dispatches_ahead=True,
                 counts_compilations=True, export_formats=("saved_model", "onnx"),
                 compiles_image_transforms=True),
    # Keras's torch distribution is not in a release; its trainer refuses several steps a call.
    "torch": Facts("PyTorch", install_line("torch"), data_parallel=False,
                   steps_per_call=False, steps_per_call_data_parallel=False, tf_data=False,
                   dispatches_ahead=True, counts_compilations=False,
                   export_formats=("saved_model", "onnx", "tflite")),
}
NAMES = {name: facts.display for name, facts in FACTS.items()}
INSTALL = {name: facts.install for name, facts in FACTS.items()}


def facts(name: str) -> Facts:
    """The facts of a backend by name (KeyError for a name not in BACKENDS)."""
    return FACTS[name]


def supports_data_parallel(name: str) -> bool:
    """Whether distribution.strategy data_parallel runs on this backend."""
    return FACTS[name].data_parallel


def data_parallel_backends() -> tuple[str, ...]:
    """The backends data_parallel runs on, in BACKENDS order."""
    return tuple(name for name in BACKENDS if FACTS[name].data_parallel)


def runs_steps_per_call(name: str, data_parallel: bool = False) -> bool:
    """Whether Keras's trainer on this backend runs more than one step per call, under
    data_parallel or not (training.steps_per_execution above 1)."""
    chosen = FACTS[name]
    return chosen.steps_per_call_data_parallel if data_parallel else chosen.steps_per_call


def traces_step_loop(name: str) -> bool:
    """Whether several steps a call cost this backend a second tracing of the train step."""
    return FACTS[name].traces_step_loop


def feeds_tf_data(name: str) -> bool:
    """Whether the backend reads its input from tf.data (augmenting in tf.data's parallel map),
    rather than from a Keras PyDataset of NumPy batches (augmenting in the compiled step)."""
    return FACTS[name].tf_data


def dispatches_ahead(name: str) -> bool:
    """Whether Keras's training loop on this backend may run batch-end callbacks on its worker
    thread, steps ahead of the devices (TensorFlow keeps the synchronous dispatch)."""
    return FACTS[name].dispatches_ahead


def counts_compilations(name: str) -> bool:
    """Whether the framework gives its own account of what it compiled (JAX's monitoring)."""
    return FACTS[name].counts_compilations


def compiles_image_transforms(name: str) -> bool:
    """Whether the backend's compiler takes Keras's image augmentation layers into a step."""
    return FACTS[name].compiles_image_transforms


def computes_bf16_on_cpu(name: str) -> bool:
    """Whether training.mixed_precision auto may choose bfloat16 on a CPU for this backend."""
    return FACTS[name].cpu_bf16


def exporting_backends(fmt: str) -> tuple[str, ...]:
    """The backends Keras's model.export writes `fmt` from, in BACKENDS order."""
    return tuple(name for name in BACKENDS if fmt in FACTS[name].export_formats)


def backend_of_environment(env: Mapping[str, Any]) -> Any:
    """The backend an environment.json names; a run from before backends were a choice
    recorded only TensorFlow's version (its "tensorflow" key), and ran on TensorFlow."""
    return env.get("backend") or ("tensorflow" if env.get("tensorflow") else None)
