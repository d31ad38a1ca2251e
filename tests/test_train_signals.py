"""Ctrl-C before training: recorded from the command's start, raised again when training's
handler is installed, even where Python dropped its exception."""

from __future__ import annotations

import os
import signal

import pytest

from dltrain.train.signals import Signals, catch_early


def test_a_ctrl_c_whose_exception_was_dropped_is_raised_when_training_starts() -> None:
    # Python drops an exception raised in a garbage collector's callback (JAX's, during `import
    # keras`): the fit then ran to its end and exited 0.
    with catch_early():
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass  # as the gc callback's caller drops it
        with pytest.raises(KeyboardInterrupt), Signals().installed():
            pytest.fail("training started after a Ctrl-C")


def test_without_an_early_ctrl_c_training_starts_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with catch_early():
        with Signals().installed() as signals:
            assert signals.received is None
    assert signal.getsignal(signal.SIGINT) is before
