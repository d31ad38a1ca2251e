"""The input pipeline that feeds Keras: in-memory arrays to shuffled, augmented batches."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from dltrain.backend import active_backend, keras_module, tensorflow_module
from dltrain.backend.distribution import process_rows

PREFETCH_BATCHES = 2  # enough to hide the per-batch map; more only costs memory


def pipeline(x: Any, y: Any, batch_size: int, *, shuffle: bool = False, seed: int = 0,
             augmenter: Any = None, repeat: bool = False) -> Any:
    """On TensorFlow, a tf.data pipeline: shuffle each epoch, batch, augment in parallel, prefetch.

    `repeat` makes it endless, one epoch after another (a fresh shuffle each time), for a fit
    given steps_per_epoch: Keras then keeps one iterator for the whole fit. A new iterator per
    epoch stalled training for 5-9 s in a third of the epochs here (bench/overhead.py).

    tf.data's autotuner is off, with fixed parallelism instead: destroying an autotuned iterator
    waits for its background thread, and Keras destroys the validation iterator after every
    epoch. Those waits left the CPU idle for 30-60 s after about one epoch in three of full
    Fashion-MNIST runs (py-spy: ~IteratorResource under EpochIterator.reset). Autotuned
    iterators also ran some whole fits at half speed, the cores waiting on input
    (bench/autotune.py).

    On JAX and torch, `array_batches` (no tf.data, so no TensorFlow needed); `repeat` is then
    not used: each epoch is one pass over a PyDataset. With several processes (JAX), each
    reads its own part of every batch, all drawn from the same seeded order.

    Labels of one value per sample go in as one column, (n, 1), the rank of a binary
    classifier's output: Keras's losses match ranks themselves, but its metrics built from
    loss functions do not (binary_crossentropy failed; hinge, KL divergence and Poisson
    broadcast (n,) against (n, 1) into an n-by-n grid and gave wrong figures).
    """
    y = y.reshape(len(y), 1) if getattr(y, "ndim", None) == 1 else y
    if active_backend() != "tensorflow":
        return array_batches(x, y, batch_size, shuffle=shuffle, seed=seed, augmenter=augmenter)
    tf = tensorflow_module()

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


def array_batches(x: Any, y: Any, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                  augmenter: Any = None) -> Any:
    """In-memory arrays as a Keras PyDataset: one pass per epoch, batches sliced from NumPy.

    The order is a fresh permutation each epoch from seed + epoch, so a rerun sees the same
    batches. Augmentation runs on the backend's device (Keras preprocessing layers), batch by
    batch in order, so its seeded draws repeat too.
    """
    keras = keras_module()

    class Batches(keras.utils.PyDataset):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.epoch = 0
            self.order = self._order()

        def _order(self) -> Any:
            if not shuffle:
                return None
            return np.random.default_rng([seed, self.epoch]).permutation(len(x))

        def __len__(self) -> int:
            return math.ceil(len(x) / batch_size)

        def __getitem__(self, index: int) -> tuple[Any, Any]:
            rows = slice(index * batch_size, (index + 1) * batch_size)
            if self.order is None:
                images, labels = x[rows], y[rows]
            else:
                picked = np.sort(self.order[rows])  # sorted reads are faster; order is random already
                images, labels = x[picked], y[picked]
            own = process_rows(len(images))  # several processes: each its part of the batch
            images, labels = images[own], labels[own]
            if augmenter is not None:
                images = augmenter(images)
            return images, labels

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return Batches()
