"""Stop training at the first batch whose loss is NaN or infinite."""

from __future__ import annotations

import math
from typing import Any

from dltrain.train.events import BatchEnded, FitBegan, Subscriber


class NonFiniteLoss(Exception):
    """A batch's loss was NaN or infinite (NanCheck raised it)."""


class NanCheck(Subscriber):
    """Keras's TerminateOnNaN, without its "Batch 3: Invalid loss, terminating training" on
    stdout, which holds only results (--json's document, smoke's table): fit says itself what
    diverged, on stderr.

    With `raises` (batches heard on Keras's worker thread: JAX, torch) it raises, which reaches
    model.fit at the next batch, instead of setting stop_training from another thread, after
    which Keras read metric buffers its next step had already donated ("Buffer has been
    deleted or donated").
    """

    async_safe = True

    def __init__(self, raises: bool) -> None:
        self.raises = raises
        self.model: Any = None

    def fit_began(self, event: FitBegan) -> None:
        self.model = event.model

    def batch_ended(self, event: BatchEnded) -> None:
        loss = event.logs.get("loss")
        if loss is None or math.isfinite(float(loss)):
            return
        if self.raises:
            raise NonFiniteLoss(f"batch {event.batch}")
        self.model.stop_training = True
