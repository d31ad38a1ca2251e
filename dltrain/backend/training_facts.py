"""What the training loop needs to know of the backend that runs it, asked as questions of the
one table of backend facts (backend.names), so that only dltrain/backend compares backend names."""

from __future__ import annotations

from dltrain.backend.distribution import steps_may_run_ahead
from dltrain.backend.names import BACKENDS, counts_compilations, dispatches_ahead, feeds_tf_data

# environment.json's keys that manifest.json keeps as the run's versions: the backends' packages
# among them.
VERSION_KEYS = ("dltrain", "python", "backend", *BACKENDS, "keras", "numpy", "mixed_precision")


def augments_in_pipeline(backend: str) -> bool:
    """tf.data augments in its own parallel map (measured, tuned); elsewhere the compiled
    training step does."""
    return feeds_tf_data(backend)


def repeats_datasets(backend: str) -> bool:
    """tf.data repeats a dataset for the whole fit; other backends get one pass per epoch from
    a PyDataset (see data.pipeline)."""
    return feeds_tf_data(backend)


def batches_run_ahead(backend: str) -> bool:
    """Whether Keras may run batch-end callbacks on its worker thread while the next steps are
    dispatched (JAX, torch; not over several JAX CPU devices). TensorFlow keeps the synchronous
    dispatch its tests pin down."""
    return dispatches_ahead(backend) and steps_may_run_ahead()


def reports_compilations(backend: str) -> bool:
    """Whether the backend gives its own account of what it compiled (JAX): then the first
    epoch's extra time is not the measure of it."""
    return counts_compilations(backend)
