"""The input pipeline that feeds Keras: in-memory arrays to shuffled, augmented batches."""

from __future__ import annotations

import os
from typing import Any

from dltrain.backend import tensorflow_module

PREFETCH_BATCHES = 2  # enough to hide the per-batch map; more only costs memory


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
