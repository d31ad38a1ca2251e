"""Stop training at the first batch whose loss is NaN or infinite."""

from __future__ import annotations


class NonFiniteLoss(Exception):
    """A batch's loss was NaN or infinite (StopOnNonFinite raised it)."""


class QuietTerminateOnNaN(TerminateOnNaN):  # type: ignore[misc,valid-type]
    """Keras's TerminateOnNaN without its "Batch 3: Invalid loss, terminating training" on
    stdout, which holds only results (--json's document, smoke's table): fit says itself what
    diverged, on stderr."""

    def on_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True


class StopOnNonFinite(Callback):  # type: ignore[misc,valid-type]
    """Keras's TerminateOnNaN for Keras's worker thread (JAX, torch): it raises, which reaches
    model.fit at the next batch, instead of setting stop_training from another thread, after
    which Keras read metric buffers its next step had already donated ("Buffer has been
    deleted or donated")."""

    async_safe = True

    def on_train_batch_end(self, batch: int, logs: dict[str, Any] | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise NonFiniteLoss(f"batch {batch + 1}")
