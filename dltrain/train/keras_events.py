"""The one Keras callback of a fit: Keras's hooks, turned into run events on a stream."""

from __future__ import annotations

import time
from typing import Any

from dltrain.backend import keras_module
from dltrain.backend.training_facts import batches_run_ahead
from dltrain.train.events import BatchEnded, EpochBegan, EpochEnded, FitBegan, FitEnded, Stream

Callback = keras_module().callbacks.Callback


class KerasEvents(Callback):  # type: ignore[misc,valid-type]
    """Hands each of Keras's training hooks to the stream's subscribers as an event.

    It says itself whether Keras may call it from its worker thread (`async_safe`): where the
    backend lets batches run ahead and every subscriber that hears batches is safe there. Any
    batch-level callback that is not makes Keras turn every batch's logs into Python floats
    before the next step, waiting for the device: one such callback cost a plain Keras script
    25-60% per epoch on an H200 (BENCHMARKS.md). Where it is not async-safe (TensorFlow, several
    JAX CPU devices), its batch hook keeps Keras's synchronous dispatch.
    """

    def __init__(self, stream: Stream, backend: str) -> None:
        super().__init__()
        self.stream = stream
        self.async_safe = batches_run_ahead(backend) and stream.async_safe
        self.last_end = time.perf_counter()

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.last_end = time.perf_counter()
        self.stream.emit(FitBegan(self.model))

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.stream.emit(EpochBegan(epoch + 1))

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        # Keras numbers a call of steps_per_execution steps by its last step as if the call
        # were whole, so an epoch's partial last call counted past its batches (72 of 71).
        steps = (self.params or {}).get("steps")
        done = batch + 1 if not steps else min(batch + 1, steps)
        self.stream.emit(BatchEnded(done, logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        seconds, self.last_end = round(now - self.last_end, 3), now
        # self.model: on JAX, Keras's property brings the trained state into the model first.
        self.stream.emit(EpochEnded(epoch + 1, logs if logs is not None else {}, seconds,
                                    self.model))

    def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
        self.stream.emit(FitEnded())
