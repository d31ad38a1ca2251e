"""The input pipeline that feeds Keras: in-memory arrays to shuffled, augmented batches."""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np

from dltrain.backend import input_is_tf_data, keras_module, tensorflow_module
from dltrain.backend.distribution import process_rows

PREFETCH_BATCHES = 2  # enough to hide the per-batch map; more only costs memory


def pipeline(x: Any, y: Any, batch_size: int, *, shuffle: bool = False, seed: int = 0,
             augmenter: Any = None, repeat: bool = False, first_epoch: int = 0,
             clock: Any = None) -> Any:
    """On TensorFlow, a tf.data pipeline: shuffle each epoch, batch, augment in parallel, prefetch.

    The augmenter takes (images, step, labels) and returns (images, labels): MixUp and CutMix
    mix the labels too. Each epoch's order and augmentation are functions of (seed, epoch), the
    augmenter's draws of the batch's step in the run, so a run resumed at `first_epoch` trains on what the
    uninterrupted run did. `repeat` makes it endless, one epoch after another from
    `first_epoch`, for a fit given steps_per_epoch: Keras then keeps one iterator for the whole
    fit. A new iterator per epoch stalled training for 5-9 s in a third of the epochs here
    (bench/overhead.py). Without `repeat`, Keras iterates it afresh each epoch, and `clock`
    (an `epoch_clock` among the fit's callbacks) says which epoch begins.

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
    if not input_is_tf_data():
        return array_batches(x, y, batch_size, shuffle=shuffle, seed=seed, augmenter=augmenter,
                             first_epoch=first_epoch)
    tf = tensorflow_module()
    if shuffle or augmenter is not None:
        data = _epochs(x, y, batch_size, shuffle, seed, augmenter, repeat, clock, first_epoch)
    else:
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(batch_size)
        data = data.repeat() if repeat else data
    options = tf.data.Options()
    options.autotune.enabled = False
    return data.prefetch(PREFETCH_BATCHES).with_options(options)


def _epochs(x: Any, y: Any, batch_size: int, shuffle: bool, seed: int, augmenter: Any,
            repeat: bool, clock: Any, first_epoch: int) -> Any:
    """tf.data batches whose order and draws are functions of (seed, epoch): each epoch
    permuted by a stateless draw, each batch numbered by its step in the run. Without a
    clock, each fresh iteration is the next epoch (a plain model.fit of the pipeline)."""
    tf = tensorflow_module()
    with tf.device("/cpu:0"):  # where tf.data reads them, as from_tensor_slices keeps them
        images, labels = tf.constant(x), tf.constant(y)
    steps = math.ceil(len(x) / batch_size)

    def one_epoch(epoch: Any) -> Any:
        order = (tf.argsort(tf.random.stateless_uniform([len(x)], seed=tf.stack(
            [tf.constant(seed, tf.int64), epoch]))) if shuffle else tf.range(len(x)))
        rows = tf.data.Dataset.from_tensor_slices(order).batch(batch_size).enumerate()
        return rows.map(lambda index, picked: (epoch * steps + index, picked))

    def take(step: Any, picked: Any) -> tuple[Any, Any]:
        batch, targets = tf.gather(images, picked), tf.gather(labels, picked)
        # The augmenter returns the labels too: MixUp and CutMix mix them with the images.
        return (batch, targets) if augmenter is None else augmenter(batch, step, targets)

    if repeat:  # one iterator for the whole fit: the epochs follow from the first
        epochs = tf.data.Dataset.range(first_epoch, tf.int64.max)
    elif clock is not None:  # an iterator per epoch, made after on_epoch_begin set the clock
        epochs = tf.data.Dataset.from_tensors(0).map(lambda _: clock.epoch.read_value())
    else:
        counter = tf.Variable(first_epoch, dtype="int64", trainable=False)
        epochs = tf.data.Dataset.from_tensors(0).map(lambda _: counter.assign_add(1) - 1)
    data = epochs.flat_map(one_epoch).map(take, num_parallel_calls=os.cpu_count() or 1)
    return data if repeat else data.apply(tf.data.experimental.assert_cardinality(steps))


def epoch_clock(first_epoch: int) -> Any:
    """A Keras callback that tells a TensorFlow pipeline without `repeat` which epoch begins
    (Keras makes its iterator after on_epoch_begin); nothing to tell elsewhere."""
    keras = keras_module()

    class EpochClock(keras.callbacks.Callback):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.epoch = (tensorflow_module().Variable(first_epoch, dtype="int64",
                                                       trainable=False)
                          if input_is_tf_data() else None)

        def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
            if self.epoch is not None:
                self.epoch.assign(epoch)

    return EpochClock()


def array_batches(x: Any, y: Any, batch_size: int, *, shuffle: bool = False, seed: int = 0,
                  augmenter: Any = None, first_epoch: int = 0) -> Any:
    """In-memory arrays as a Keras PyDataset: one pass per epoch, batches sliced from NumPy.

    The order is a fresh permutation each epoch from (seed, epoch), counted from
    `first_epoch`, so a rerun or a resumed run sees the same batches. Augmentation runs on the
    backend's device (Keras preprocessing layers), batch by batch in order, its draws from
    (seed, step) as in tf.data.
    """
    keras = keras_module()

    class Batches(keras.utils.PyDataset):  # type: ignore[misc, name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.epoch = first_epoch
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
                images, labels = augmenter(images, self.epoch * len(self) + index, labels)
            return images, labels

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self.order = self._order()

    return Batches()
