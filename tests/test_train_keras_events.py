"""The one Keras callback: Keras's hook numbers, turned into the run's events (issue 27)."""

from __future__ import annotations

from dltrain.train.events import BatchEnded, Listener, Stream


def test_a_partial_last_call_is_counted_as_the_batches_it_ran() -> None:
    from dltrain.train.keras_events import KerasEvents

    heard: list[object] = []
    events = KerasEvents(Stream([Listener(heard.append)]), "tensorflow")
    events.set_params({"epochs": 1, "steps": 71, "verbose": 0})
    # 71 batches, 4 steps a call: Keras ends its last call (steps 68-70) with end_step 71.
    for end_step in (3, 67, 71):
        events.on_train_batch_end(end_step, {"loss": 0.5})
    assert [event.batch for event in heard if isinstance(event, BatchEnded)] == [4, 68, 71]


def test_an_epoch_of_unknown_length_keeps_keras_count() -> None:
    from dltrain.train.keras_events import KerasEvents

    heard: list[object] = []
    events = KerasEvents(Stream([Listener(heard.append)]), "tensorflow")
    events.set_params({"epochs": 1, "steps": None, "verbose": 0})
    events.on_train_batch_end(7, {"loss": 0.5})
    assert [event.batch for event in heard if isinstance(event, BatchEnded)] == [8]
