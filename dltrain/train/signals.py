"""Ctrl-C and SIGTERM at any instant of a command, ended as KeyboardInterrupt or Terminated.

The handlers raise at once, so a long step or start-up stops at once. But the exception raised
is not always the one that arrives: raised inside a native library's callback (TensorFlow tracing
the first epoch's steps), it comes back as that library's error (a SystemError, a pybind11 error
with a 100-line traceback), or Python drops it ("Exception ignored in ..."). So each signal is
also recorded, and the record decides: an error that escapes after a signal is the interruption,
and a dropped one is raised again at the next safe point.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

from dltrain.errors import Terminated
from dltrain.train.events import BatchEnded, EpochEnded, Subscriber

_early: list[int] = []  # this command's signals before training's handler (see catch_early)


def interruption(signum: int) -> BaseException:
    """The exception that stops a command for `signum`: exit 143 for SIGTERM, else 130."""
    return Terminated() if signum == signal.SIGTERM else KeyboardInterrupt()


@contextlib.contextmanager
def recognised(received: Callable[[], int | None]) -> Iterator[None]:
    """An error that escapes after a signal (`received` says which) is the interruption, with
    the error as its cause: the CLI said "internal error", exit 1, and a run was marked failed."""
    try:
        yield
    except Exception as exc:
        signum = received()
        if signum is None:
            raise
        raise interruption(signum) from exc


def received_early() -> int | None:
    """The last signal this command received before training's handler took over, or None."""
    return _early[-1] if _early else None


def _handle_early(signum: int, frame: Any) -> None:
    _early.append(signum)
    # In a finaliser: recorded only, for training's handler to raise; a command that does not
    # train goes on, as it did when Python dropped the exception there.
    if not in_finaliser(frame):
        raise interruption(signum)


@contextlib.contextmanager
def catch_early() -> Iterator[None]:
    """For a whole command: Ctrl-C and SIGTERM are recorded as well as raised. One that lands in
    a garbage collector's callback (JAX's, while Keras is imported) has its exception dropped by
    Python, and the fit went on to the end with exit code 0; training's handler raises it again
    (`Signals.installed`). SIGTERM's default action killed the process unannounced (-15)."""
    _early.clear()
    if threading.current_thread() is not threading.main_thread():  # only it takes signals
        yield
        return
    previous = {signum: signal.signal(signum, _handle_early)
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        with recognised(received_early):
            yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _early.clear()  # a later command in this process (a test's) starts afresh


class Signals:
    """Ctrl-C and SIGTERM during training, raised where Python can, and again at batch ends.

    A signal that lands while Keras or TensorFlow is calling back into Python can have its
    exception swallowed ("Exception ignored in ..."); the flag makes the next batch end raise it,
    or the end of the block when no batch end comes (it was dropped after the last one).
    """

    def __init__(self) -> None:
        self.received: int | None = _early[-1] if _early else None

    def raise_pending(self) -> None:
        if self.received is not None:
            raise interruption(self.received)

    def _handle(self, signum: int, frame: Any) -> None:
        self.received = signum
        if not in_finaliser(frame):
            self.raise_pending()

    @contextlib.contextmanager
    def installed(self) -> Iterator[Signals]:
        previous = {signum: signal.signal(signum, self._handle)
                    for signum in (signal.SIGINT, signal.SIGTERM)}
        try:
            with recognised(lambda: self.received):
                self.raise_pending()  # one that came before, its exception dropped
                yield self
                self.raise_pending()
        finally:
            for signum, handler in previous.items():
                signal.signal(signum, handler)


def in_finaliser(frame: Any) -> bool:
    """Whether a signal landed inside a __del__. Python drops an exception raised there, after it
    stopped the finaliser half-way: TensorFlow frees its C handles and iterators in __del__, and
    a half-run one corrupted its heap (a fit SIGTERMed as an epoch ended died -11 or "free():
    invalid next size" as the next epoch's iterator was made, about 1 in 60). Left to finish, the
    signal is raised at the next batch end (PendingSignalCheck) or when training returns."""
    while frame is not None:
        if frame.f_code.co_name == "__del__":
            return True
        frame = frame.f_back
    return False


class PendingSignalCheck(Subscriber):
    """Re-raise a Ctrl-C or SIGTERM whose first exception a library swallowed, at each batch's
    end and each epoch's: heard last (train.wiring), so the epoch's files are written first.
    It only reads a flag, so it is safe on Keras's worker thread."""

    async_safe = True

    def __init__(self, signals: Signals) -> None:
        self.signals = signals

    def batch_ended(self, event: BatchEnded) -> None:
        self.signals.raise_pending()

    def epoch_ended(self, event: EpochEnded) -> None:
        self.signals.raise_pending()
