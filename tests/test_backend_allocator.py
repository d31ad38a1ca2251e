"""The allocator settings for torch runs: a step's same-sized temporaries are reused, not
page-faulted in again at every step."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT
from dltrain.backend import allocator

# 50 "steps", each making and freeing three 8 MB temporaries, as a training step does; prints
# the page faults they took. The first argument says whether to call keep_freed_memory first.
STEPS = """
import resource, sys
import numpy as np
from dltrain.backend.allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory()
def step():
    a = np.ones(1 << 20); b = a * 2; c = b + a
for _ in range(3):
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def faults(mode: str) -> int:
    env = {key: value for key, value in os.environ.items()
           if key not in allocator.USER_SETTINGS}
    done = subprocess.run([sys.executable, "-c", STEPS, mode], capture_output=True, text=True,
                          timeout=60, env={**env, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator")
def test_kept_memory_is_reused_instead_of_faulted_in_at_every_step() -> None:
    plain, kept = faults("plain"), faults("keep")
    assert plain > 50 * 1000  # 24 MB a step, mapped afresh: ~6,000 pages
    assert kept < plain / 20


def test_a_malloc_setting_in_the_environment_is_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MALLOC_TRIM_THRESHOLD_", "131072")
    assert allocator.keep_freed_memory() is False


def test_without_mallopt_nothing_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in allocator.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(allocator.ctypes, "CDLL", lambda name: object())  # a libc without it
    assert allocator.keep_freed_memory() is False
