"""Ctrl-C and SIGTERM during training, turned into exceptions at the next safe point."""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator
from typing import Any

from dltrain.errors import Terminated

_early: list[int] = []  # a Ctrl-C before training's handler was installed (see catch_early)


def _handle_early(signum: int, frame: Any) -> None:
    _early.append(signum)
    raise KeyboardInterrupt


@contextlib.contextmanager
def catch_early() -> Iterator[None]:
    """For a whole command: Ctrl-C is recorded as well as raised. One that lands in a garbage
    collector's callback (JAX's, while Keras is imported) has its KeyboardInterrupt dropped by
    Python, and the fit went on to the end with exit code 0; training's handler raises it again
    (`Signals.installed`)."""
    _early.clear()
    if threading.current_thread() is not threading.main_thread():  # only it takes signals
        yield
        return
    previous = signal.signal(signal.SIGINT, _handle_early)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class Signals:
    """Ctrl-C and SIGTERM during training, raised where Python can, and again at batch ends.

    A signal that lands while Keras or TensorFlow is calling back into Python can have its
    exception swallowed ("Exception ignored in ..."); the flag makes the next batch end raise it.
    """

    def __init__(self) -> None:
        self.received: int | None = _early[-1] if _early else None

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
            self.raise_pending()  # one that came before, its exception dropped
            yield self
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)
