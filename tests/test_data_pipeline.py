"""The input pipeline that feeds Keras."""

from __future__ import annotations

import numpy as np

from dltrain.data.pipeline import epoch_clock, pipeline


def test_endless_pipeline_gives_every_sample_once_per_epoch_in_a_new_order() -> None:
    x = np.arange(10, dtype=np.float32)[:, None]
    y = np.arange(10)
    # One iterator over 2 epochs of 3 batches, as Keras reads it with steps_per_epoch=3.
    batches = [labels for _, labels in pipeline(x, y, 4, shuffle=True, seed=1, repeat=True).take(6)]
    epochs = [np.concatenate(batches[i:i + 3]).reshape(-1) for i in (0, 3)]
    for order in epochs:
        assert sorted(order.tolist()) == list(range(10))
    assert epochs[0].tolist() != epochs[1].tolist()


def test_finite_pipeline_keeps_the_order_and_the_last_partial_batch() -> None:
    x = np.arange(10, dtype=np.float32)[:, None]
    sizes = [len(labels) for _, labels in pipeline(x, np.arange(10), 4)]
    assert sizes == [4, 4, 2]
    assert np.concatenate([xb for xb, _ in pipeline(x, np.arange(10), 4)])[:, 0].tolist() == list(range(10))


def test_pipeline_runs_the_augmenter_without_tf_data_autotuning() -> None:
    # Destroying an autotuned iterator took tens of seconds here, and Keras destroys the
    # validation iterator after every epoch: the pipeline must not autotune.
    x = np.arange(8, dtype=np.float32)[:, None]
    data = pipeline(x, np.arange(8), 4, augmenter=lambda images, step, labels: (images * 2, labels),
                    repeat=True)
    assert data.options().autotune.enabled is False
    images, labels = next(iter(data))
    assert images.numpy()[:, 0].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert labels.numpy().reshape(-1).tolist() == [0, 1, 2, 3]


def test_labels_of_one_value_go_in_as_one_column_others_as_they_are() -> None:
    # A binary classifier's output is (n, 1): Keras's binary_crossentropy metric failed on
    # labels of shape (n,), and its hinge broadcast them into an n-by-n grid.
    x = np.arange(10, dtype=np.float32)[:, None]
    _, labels = next(iter(pipeline(x, np.arange(10) % 2, 4)))
    assert np.asarray(labels).shape == (4, 1)
    assert np.asarray(labels).reshape(-1).tolist() == [0, 1, 0, 1]
    _, targets = next(iter(pipeline(x, np.eye(10, 3), 4)))  # one-hot or several targets
    assert np.asarray(targets).shape == (4, 3)


def labels_by_epoch(data: object, epochs: int, steps: int = 3) -> list[list[int]]:
    batches = [np.asarray(labels).reshape(-1).tolist()
               for _, labels in data.take(epochs * steps)]  # type: ignore[attr-defined]
    return [sum(batches[i:i + steps], []) for i in range(0, epochs * steps, steps)]


def test_a_pipeline_from_a_later_epoch_gives_the_order_the_whole_run_did() -> None:
    # A resumed run started its shuffle again from the seed: epoch 3 came in another order.
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    whole = labels_by_epoch(pipeline(x, y, 4, shuffle=True, seed=1, repeat=True), 4)
    assert labels_by_epoch(pipeline(x, y, 4, shuffle=True, seed=1, repeat=True, first_epoch=2),
                           2) == whole[2:]
    assert len({tuple(order) for order in whole}) == 4


def test_a_pipeline_iterated_afresh_each_epoch_follows_the_clock() -> None:
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    whole = labels_by_epoch(pipeline(x, y, 4, shuffle=True, seed=1, repeat=True), 4)
    clock = epoch_clock(0)
    data = pipeline(x, y, 4, shuffle=True, seed=1, clock=clock)
    for epoch in (3, 1):  # as Keras's on_epoch_begin sets it, before it iterates
        clock.on_epoch_begin(epoch)
        assert labels_by_epoch(data, 1) == [whole[epoch]]


def test_each_batch_is_augmented_with_its_step_in_the_run() -> None:
    x, y = np.zeros((10, 1), np.float32), np.arange(10)
    data = pipeline(x, y, 4, seed=1, augmenter=lambda images, step, labels: (images + tf_float(step), labels),
                    repeat=True, first_epoch=2)
    steps = [float(images.numpy()[0, 0]) for images, _ in data.take(4)]
    assert steps == [6.0, 7.0, 8.0, 9.0]  # epoch 2 of 3 batches each starts at step 6


def tf_float(step: object) -> object:
    import tensorflow as tf

    return tf.cast(step, tf.float32)


def test_a_pipeline_without_a_clock_takes_the_next_epoch_at_each_iteration() -> None:
    x, y = np.arange(10, dtype=np.float32)[:, None], np.arange(10)
    whole = labels_by_epoch(pipeline(x, y, 4, shuffle=True, seed=1, repeat=True), 3)
    data = pipeline(x, y, 4, shuffle=True, seed=1)
    assert [labels_by_epoch(data, 1)[0] for _ in range(3)] == whole
