"""One writer per run: an OS lock on <run>/.lock, held while a process writes the run.

`fcntl.flock` locks belong to the open file, so the kernel drops them when the holder exits or
is killed: a lock never goes stale, and a free lock on a run marked running means its writer
is gone. The file is never deleted (a deleted lock file could be locked twice); it holds the
holder's PID and command line, to name it to whoever is refused.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import re
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dltrain.errors import RunError
from dltrain.runs.files import refuse_link

LOCK_FILE = ".lock"

HOLDER_WAIT = 3.0  # seconds a refused writer waits for a fresh holder to write its PID
_held: dict[Path, int] = {}  # run folder (resolved) -> open descriptor holding its lock


def acquire(run_dir: Path) -> None:
    """Lock `run_dir` for this process, or raise RunError naming the process that holds it.

    Taking a lock this process already holds does nothing. A link in the folder is refused
    first: the writer would write through it, out of the run.
    """
    key = run_dir.resolve()
    if key in _held:
        return
    for entry in run_dir.iterdir():
        refuse_link(entry)
    descriptor = open_own(run_dir / LOCK_FILE)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(descriptor)
        os.close(descriptor)
        raise RunError(f"{run_dir} is being written by {holder}; wait for it or stop it.") \
            from None
    except BaseException:
        os.close(descriptor)
        raise
    _held[key] = descriptor
    argv = command_line()
    command = " ".join([Path(argv[0]).name, *argv[1:]]) if argv else "python"
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, f"{os.getpid()}\n{command}\n".encode(), 0)


# user:password@ in a URL (tune --storage postgresql://user:password@host/db)
URL_PASSWORD = re.compile(r"([A-Za-z][A-Za-z0-9+.-]*://[^/:@\s]*):[^/\s]*@")
# ...?password=... in one (libpq takes the password there too)
QUERY_PASSWORD = re.compile(r"([?&]password=)[^&\s]*", re.IGNORECASE)


def command_line() -> list[str]:
    """sys.argv as a run file may keep it: a URL's password hidden (***)."""
    return [hidden(arg) for arg in sys.argv]


def hidden(arg: str) -> str:
    """A command-line argument with any URL's password in it replaced by ***."""
    arg = URL_PASSWORD.sub(r"\1:***@", arg)
    return QUERY_PASSWORD.sub(r"\1***", arg) if "://" in arg else arg


def open_own(path: Path) -> int:
    """A lock file opened for writing, made if absent, never emptied on opening: refused when it
    is a link (opened without following one, so none can be swapped in after a check) or a
    file with other names (hard links), since the holder writes its PID into it."""
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            refuse_link(path)
        raise
    status = os.fstat(descriptor)
    if not stat.S_ISREG(status.st_mode) or status.st_nlink > 1:
        os.close(descriptor)
        what = ("a hard link: a name of a file with other names" if stat.S_ISREG(status.st_mode)
                else "not a plain file")
        raise RunError(f"{path}: {what}, where dltrain keeps a lock file of its own; writing it "
                       "could change a file outside the run. Remove it (dltrain makes a new "
                       "one).")
    return descriptor


def release(run_dir: Path) -> None:
    """Drop this process's lock on `run_dir`, if it holds one."""
    descriptor = _held.pop(run_dir.resolve(), None)
    if descriptor is not None:
        # Empty it while still holding it: a PID left behind would be named to a later refused
        # writer as the holder, though the holder then is another process.
        os.ftruncate(descriptor, 0)
        os.close(descriptor)


@contextlib.contextmanager
def writing(run_dir: Path) -> Iterator[None]:
    """Hold the lock on `run_dir` for the block."""
    acquire(run_dir)
    try:
        yield
    finally:
        release(run_dir)


# A search's processes share its folder, so none holds its .lock: each holds a shared lock on
# this file while it works on the search, and none left means the search stopped.
SEARCH_LOCK = ".searching"


@contextlib.contextmanager
def searching(parent: Path) -> Iterator[None]:
    """Hold a shared lock on the search `parent` for the block (with its other processes)."""
    descriptor = open_own(parent / SEARCH_LOCK)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH)  # waits out a probe's moment (searchers_alive)
        yield
    finally:
        os.close(descriptor)


def searchers_alive(parent: Path) -> bool:
    """Whether a process holds the search's shared lock: a moment's exclusive probe succeeds
    only when none does."""
    try:
        descriptor = os.open(parent / SEARCH_LOCK, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return True  # no such file: a search from before, or one just starting; trust run.json
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return True
    finally:
        os.close(descriptor)
    return False


def writer_alive(run_dir: Path) -> bool | None:
    """Whether some process holds `run_dir`'s lock (a search's: its shared lock); None when the
    run has no lock file (made before dltrain locked runs) or it cannot be read."""
    if run_dir.resolve() in _held:
        return True
    if (run_dir / SEARCH_LOCK).is_file():
        return searchers_alive(run_dir)
    try:
        descriptor = os.open(run_dir / LOCK_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    try:
        fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)  # shared: probes don't collide
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(descriptor)  # closing drops the probe's own lock
    return False


def state_now(run_dir: Path, recorded: Any) -> Any:
    """run.json's state as it stands: 'running' with no process holding the run's lock is a
    run that was killed, so interrupted (as `dltrain runs` shows it)."""
    if recorded == "running" and writer_alive(run_dir) is False:
        return "interrupted"
    return recorded


def _holder(descriptor: int) -> str:
    """'process 12345 (dltrain fit ...)' from the lock file. A holder that has just taken the
    lock writes its PID a moment later, over what a killed holder may have left: wait for a
    PID of a live process, and name none if it does not come."""
    deadline = time.monotonic() + HOLDER_WAIT
    while time.monotonic() <= deadline:
        try:
            text = os.pread(descriptor, 4096, 0).decode(errors="replace")
        except OSError:
            text = ""
        pid, _, command = text.partition("\n")
        if text.endswith("\n") and pid.strip().isdigit() and _alive(int(pid)):
            command = command.strip()
            return f"process {pid.strip()}" + (f" ({command})" if command else "")
        time.sleep(0.02)
    return "another process"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # it exists, under another user
        return True
    return True
