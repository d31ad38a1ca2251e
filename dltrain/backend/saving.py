"""A model's compile config as saved: what a .keras file says about steps per call."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any


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
