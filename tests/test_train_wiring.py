"""The fit's listeners, in the order they hear an epoch's end."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from conftest import CONFIGS
from dltrain.config.load import load_config
from dltrain.train.events import Stream
from dltrain.train.keras_events import KerasEvents
from dltrain.train.signals import PendingSignalCheck, Signals
from dltrain.train.start import Start
from dltrain.train.wiring import wire


def test_an_epoch_is_written_then_reported_to_the_caller_then_a_pending_signal_raised(
        tmp_path: Path) -> None:
    # A search's callback reports each epoch to Optuna: it hears the epoch after the files are
    # written (the stream) and TensorBoard, and before a swallowed Ctrl-C is raised again.
    config = load_config(CONFIGS / "quickstart.yaml", ["training.tensorboard=true"]).config
    caller = object()
    stream = Stream()
    wired = wire(stream, config, tmp_path, Console(file=io.StringIO()), False,
                 Start(model=None, callbacks=[caller]), 10, Signals())
    names = [type(callback).__name__ for callback in wired.callbacks]
    assert names == ["KerasEvents", "TensorBoard", "object", "KerasEvents"]
    assert wired.callbacks[0].stream is stream and wired.callbacks[2] is caller
    signal_check = wired.callbacks[-1]
    assert isinstance(signal_check, KerasEvents)
    assert [type(s) for s in signal_check.stream.subscribers] == [PendingSignalCheck]
    assert not any(isinstance(s, PendingSignalCheck) for s in stream.subscribers)
