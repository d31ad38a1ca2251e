"""Quiet native start-up logs: what TensorFlow writes to file descriptor 2."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def quiet_native_logs() -> Iterator[None]:
    """Silence TensorFlow's C++ start-up lines, which ignore TF_CPP_MIN_LOG_LEVEL since 2.18.

    They are written to file descriptor 2 before absl logging starts; Python's own errors are
    raised after the descriptor is restored, so nothing a user needs is lost. DLTRAIN_TF_LOGS=1
    keeps them.
    """
    if os.environ.get("DLTRAIN_TF_LOGS") == "1":
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
