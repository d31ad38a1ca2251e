"""What a run needs from TensorFlow before training: device, seeds, input pipeline, signals."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator
from typing import Any, Literal

from dltrain.build import keras_module, quiet_native_logs
from dltrain.errors import RunError, Terminated

Device = Literal["auto", "cpu", "gpu"]
PREFETCH_BATCHES = 2  # enough to hide the per-batch map; more only costs memory


def prepare_runtime(device: Device, seed: int, deterministic: bool) -> str:
    """Pick the device, seed Python/NumPy/TensorFlow; returns what will run the model."""
    keras_module()
    import tensorflow as tf

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


def pipeline(x: Any, y: Any, batch_size: int, *, shuffle: bool = False, seed: int = 0,
             augmenter: Any = None, repeat: bool = False) -> Any:
    """A tf.data pipeline: shuffle each epoch, batch, augment in parallel, prefetch.

    `repeat` makes it endless, one epoch after another (a fresh shuffle each time), for a fit
    given steps_per_epoch: Keras then keeps one iterator for the whole fit. A new iterator per
    epoch stalled training for 5-9 s in a third of the epochs here (bench/overhead.py).

    tf.data's autotuner is off, with fixed parallelism instead: destroying an autotuned iterator
    waits for its background thread, and Keras destroys the validation iterator after every
    epoch. Those waits left the CPU idle for 30-60 s after about one epoch in three of full
    Fashion-MNIST runs (py-spy: ~IteratorResource under EpochIterator.reset). Autotuned
    iterators also ran some whole fits at half speed, the cores waiting on input
    (bench/autotune.py).
    """
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if augmenter is not None:
        data = data.map(lambda images, labels: (augmenter(images), labels),
                        num_parallel_calls=os.cpu_count() or 1)
    if repeat:
        data = data.repeat()
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(PREFETCH_BATCHES).with_options(options)


class Signals:
    """Ctrl-C and SIGTERM during training, raised where Python can, and again at batch ends.

    A signal that lands while Keras or TensorFlow is calling back into Python can have its
    exception swallowed ("Exception ignored in ..."); the flag makes the next batch end raise it.
    """

    def __init__(self) -> None:
        self.received: int | None = None

    def raise_pending(self) -> None:
        if self.received == signal.SIGTERM:
            raise Terminated
        if self.received == signal.SIGINT:
            raise KeyboardInterrupt

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        self.raise_pending()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Signals]:
        previous = {signum: signal.signal(signum, self._handle)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
