"""Where a search's study lives: Optuna's RDBStorage for a URL, and the locks that let the
processes of one search share it, on one machine (a file) or on several (the database server).

On PostgreSQL, processes that start together on a fresh database would each create Optuna's
tables and all but one would die (UniqueViolation on pg_type); an advisory lock makes the
creation one process's at a time. The same kind of lock, held by the database server, makes
"count the trials, then claim one" a single step for every process of the study, wherever it
runs; the server lets it go when its holder's connection ends, so a killed process leaves none.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from dltrain import install_line
from dltrain.errors import RunError
from dltrain.runs import lock as run_lock
from dltrain.urls import scrubbed, shown

POSTGRES_EXTRA = install_line("postgres")
# The driver SQLAlchemy loads for each scheme (2.1: postgresql:// is psycopg 3), for the message
# when it is missing.
DRIVERS = {
    "postgresql": POSTGRES_EXTRA,
    "postgresql+psycopg": POSTGRES_EXTRA,
    "postgresql+psycopg2": "pip install psycopg2-binary, or write postgresql:// (psycopg 3, "
                           f"which the postgres extra brings: {POSTGRES_EXTRA})",
    "mysql": "pip install pymysql and begin the URL with mysql+pymysql://",
    "mysql+pymysql": "pip install pymysql",
}
# A trial on a database server records a heartbeat this often; one without a heartbeat for
# GRACE seconds was in a process that died (on any machine): Optuna fails it and the search
# runs its values again.
HEARTBEAT, GRACE = 20, 90
CREATING = "dltrain: Optuna's tables"  # the advisory lock's name while they are made
CONNECT_TIMEOUT = 15  # seconds: a server that does not answer is an error, not a hang
# Seconds an advisory lock is waited for: each is held for moments (Optuna's tables made, a
# trial claimed), so a longer wait is a process that hangs holding it, not a busy search.
LOCK_TIMEOUT = 600
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's code for a wait that lock_timeout ended


def is_server(storage: str) -> bool:
    """A database server (PostgreSQL, MySQL), as against a SQLite file."""
    return not storage.startswith("sqlite")


def rdb_storage(storage: str) -> Any:
    """Optuna's storage for the URL, its tables made if the database has none.

    Raises:
        RunError: naming the URL (without its password) and what to do, when it cannot be
            opened: an unknown scheme, a missing driver, no server, a wrong password.
    """
    import optuna

    try:
        if not is_server(storage):
            return optuna.storages.RDBStorage(storage, engine_kwargs={"connect_args": {"timeout": 60}})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            with advisory_lock(storage, CREATING):
                return optuna.storages.RDBStorage(
                    storage, engine_kwargs={"pool_pre_ping": True, **connect_args(storage)},
                    heartbeat_interval=HEARTBEAT, grace_period=GRACE)
    except ImportError as exc:
        raise RunError(f"--storage {shown(storage)}: its driver is not installed "
                       f"({first_line(exc, storage)}); {driver_hint(storage)}.") from None
    except Exception as exc:  # SQLAlchemy's errors: a bad URL, a database it cannot open
        raise RunError(f"--storage {shown(storage)}: cannot open it: {first_line(exc, storage)}. "
                       "A URL looks like sqlite:///path/study.db or postgresql://user:password@host/db."
                       ) from None


def fail_stale(study: Any) -> None:
    """Fail the running trials whose heartbeat is stale: their process died, on any machine
    (results.interrupted counts them as interrupted, so their values run again)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)


def driver_hint(storage: str) -> str:
    scheme = storage.split(":")[0].lower()
    return DRIVERS.get(scheme) or DRIVERS.get(scheme.split("+")[0]) or \
        "pip install the database's driver that SQLAlchemy names"


def first_line(exc: BaseException, storage: str) -> str:
    """The error's first line, never with the URL's password (a driver may quote the URL)."""
    lines = str(exc).strip().splitlines()
    return scrubbed(lines[0][:200] if lines else type(exc).__name__, storage)


def connect_args(storage: str) -> dict[str, Any]:
    if not takes_advisory_locks(storage):
        return {}
    return {"connect_args": {"connect_timeout": CONNECT_TIMEOUT}}


def lock_key(name: str) -> int:
    """PostgreSQL's advisory locks are numbered: a name's signed 64-bit hash."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


class Lock(Protocol):
    def acquire(self) -> None: ...

    def release(self) -> None: ...


class FileLock:
    """An OS file lock (the kernel lets it go when its process dies): the processes of one
    machine that share the search's folder."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.handle: int | None = None

    def acquire(self) -> None:
        if self.handle is None:
            self.handle = run_lock.open_own(self.path)  # never through a planted link
            fcntl.flock(self.handle, fcntl.LOCK_EX)

    def release(self) -> None:
        if self.handle is not None:
            os.close(self.handle)  # closing drops the lock
            self.handle = None


class AdvisoryLock:
    """PostgreSQL's session-level advisory lock on its own connection: every process of the
    study, on any machine. Closing the connection (or the process dying) lets it go."""

    def __init__(self, storage: str, name: str) -> None:
        self.storage, self.name, self.key = storage, name, lock_key(name)
        self.connection: Any = None
        self.engine: Any = None

    def acquire(self) -> None:
        """Wait for the lock (LOCK_TIMEOUT seconds at most); held once this returns.

        Raises:
            RunError: when another process held it all that time.
            sqlalchemy.exc.DBAPIError: when the server cannot be reached (tune names it).
        """
        import sqlalchemy

        if self.connection is not None:
            return
        connection = self._engine().connect()
        try:
            # lock_timeout ends a wait on an advisory lock too: a hang would be silent.
            connection.execute(sqlalchemy.text(f"SET lock_timeout = '{LOCK_TIMEOUT}s'"))
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"),
                               {"key": self.key})
        except sqlalchemy.exc.OperationalError as exc:
            connection.close()  # not held: a later acquire() must wait for it again
            if getattr(exc.orig, "sqlstate", None) == LOCK_NOT_AVAILABLE:
                raise RunError(f"--storage {shown(self.storage)}: waited {LOCK_TIMEOUT} s for "
                               f"the lock \"{self.name}\", which another process of the search "
                               "holds all that time (one that hangs: end it, and its lock goes)."
                               ) from None
            raise
        except BaseException:
            connection.close()
            raise
        self.connection = connection

    def _engine(self) -> Any:
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        if self.engine is None:  # NullPool: a closed connection is closed, never pooled locked
            # AUTOCOMMIT: the lock is the session's, so its connection never sits "idle in
            # transaction" (which a server may be set to end) while another process waits.
            self.engine = sqlalchemy.create_engine(self.storage, poolclass=NullPool,
                                                   isolation_level="AUTOCOMMIT",
                                                   **connect_args(self.storage))
        return self.engine

    def release(self) -> None:
        if self.connection is not None:
            connection, self.connection = self.connection, None
            connection.close()


@contextmanager
def advisory_lock(storage: str, name: str) -> Iterator[None]:
    """Held while the block runs, where the database has advisory locks (PostgreSQL)."""
    lock = AdvisoryLock(storage, name) if takes_advisory_locks(storage) else None
    if lock is not None:
        lock.acquire()
    try:
        yield
    finally:
        if lock is not None:
            lock.release()


def takes_advisory_locks(storage: str) -> bool:
    return storage.split(":")[0].split("+")[0].lower() == "postgresql"


def budget_lock(storage: str, study_name: str, folder_lock: Path) -> Lock:
    """The lock around claiming a trial: the database's for PostgreSQL (processes anywhere),
    else a file in the search's folder (the processes that share it)."""
    if takes_advisory_locks(storage):
        return AdvisoryLock(storage, f"dltrain budget: {study_name}")
    return FileLock(folder_lock)
