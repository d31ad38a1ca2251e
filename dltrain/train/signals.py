"""Ctrl-C and SIGTERM during training, turned into exceptions at the next safe point."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from typing import Any

from dltrain.errors import Terminated


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
