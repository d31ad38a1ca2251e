"""The C allocator's settings for a training process on torch (glibc, on Linux).

glibc gives a freed block of 128 KB or more straight back to the OS, and the threshold it adapts
from frees lets the next block of the same size be mapped afresh too: a training step's
temporaries (activations, gradients, the next batch) are then page-faulted in again at every
step. On PyTorch's CPU build, fashion_mnist_cnn's epoch took 4.3 million page faults and 16-17 s
where the same net fed from arrays took 12.5-13 s (README, Performance). Keeping blocks up to
32 MB in the heap, and up to 1 GiB of free heap before giving it back, makes them reused: 11-12 s
and almost no faults. The process keeps what it freed, up to its peak, which stays the same.
TensorFlow and JAX showed no such cost (their CPU epochs within noise with the settings), so
they are left as they are.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20  # glibc's largest: HEAP_MAX_SIZE / 2 on 64-bit
TRIM_THRESHOLD = 1 << 30
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "GLIBC_TUNABLES")


def keep_freed_memory() -> bool:
    """Set the thresholds; False (nothing changed) off Linux, without glibc's mallopt, or where
    the environment already sets glibc's malloc (the user's choice wins)."""
    if not sys.platform.startswith("linux") or any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
