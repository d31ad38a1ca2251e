"""A throwaway PostgreSQL cluster for the tests: initdb into a temporary folder, a server on
127.0.0.1 at a free port (its socket in the same folder), stopped and removed at the end.

PostgreSQL refuses to run as root (CI and the project's machines run as root): there the server
runs as the `postgres` user that Debian's package makes. Without PostgreSQL (or psycopg) the
tests that need it skip saying why, except under CI=true, where they fail: .ci/run installs it.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

USER, PASSWORD = "dltrain", "s3cret-pw-4f9"  # the password: a string no output may contain
TIMEOUT = 60  # seconds for initdb, and for the server to start or stop


def bin_dir() -> Path | None:
    """The folder of initdb and pg_ctl: Debian keeps them out of PATH, one folder per version."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit()
                   else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def unavailable(reason: str) -> None:
    """Skip, or under CI fail: CI must run these tests."""
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: .ci/run installs PostgreSQL and the postgres extra)")
    pytest.skip(reason)


@dataclass
class Cluster:
    port: int
    folder: Path

    def url(self, database: str, password: str = PASSWORD, scheme: str = "postgresql") -> str:
        return f"{scheme}://{USER}:{password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """A new empty database; returns its URL."""
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user=USER, password=PASSWORD,
                             dbname="postgres", autocommit=True, connect_timeout=10) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _as_server_user(folder: Path) -> list[str]:
    """The command prefix that runs initdb and pg_ctl as a user they accept."""
    if os.geteuid() != 0:
        return []
    try:
        owner = pwd.getpwnam("postgres")
    except KeyError:
        unavailable("PostgreSQL refuses root and there is no postgres user to run it as")
    for path in [folder, *folder.rglob("*")]:
        os.chown(path, owner.pw_uid, owner.pw_gid)
    return ["runuser", "-u", "postgres", "--"]


def _run(command: list[str], folder: Path) -> None:
    # TIMEOUT + 10: pg_ctl's own -t TIMEOUT ends first, with its message.
    done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT + 10,
                          cwd=folder)
    if done.returncode != 0:
        log = folder / "server.log"
        raise RuntimeError(f"{' '.join(command)} failed: {done.stdout}{done.stderr}"
                           + (log.read_text() if log.is_file() else ""))


@contextmanager
def cluster() -> Iterator[Cluster]:
    """A running cluster whose superuser USER logs in over TCP with PASSWORD (scram)."""
    binaries = bin_dir()
    if binaries is None:
        unavailable("no PostgreSQL server installed (Debian: apt-get install postgresql)")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        unavailable('psycopg is not installed: pip install -e ".[postgres]"')
    assert binaries is not None
    # Under /tmp, not $TMPDIR: the postgres user must reach it (a TMPDIR under /root it cannot).
    folder = Path(tempfile.mkdtemp(prefix="dltrain-pg-", dir="/tmp"))
    control: list[str] = []
    try:
        os.chmod(folder, 0o755)
        (folder / "password").write_text(PASSWORD)
        prefix = _as_server_user(folder)
        data, port = folder / "data", _free_port()
        # --no-locale: an image without a generated locale (C.UTF-8 or en_US) still works.
        _run([*prefix, str(binaries / "initdb"), "-D", str(data), "-U", USER, "--pwfile",
              str(folder / "password"), "--auth-host=scram-sha-256", "--auth-local=trust",
              "-E", "UTF8", "--no-locale", "--no-sync"], folder)
        # -w: pg_ctl returns once the server accepts connections, or fails after -t seconds.
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off"
        control = [*prefix, str(binaries / "pg_ctl"), "-D", str(data)]
        _run([*control, "-o", options, "-l", str(folder / "server.log"), "-w", "-t",
              str(TIMEOUT), "start"], folder)
        yield Cluster(port, folder)
    finally:
        if control:
            subprocess.run([*control, "-m", "immediate", "-w", "-t", str(TIMEOUT), "stop"],
                           capture_output=True, timeout=TIMEOUT + 10)
        shutil.rmtree(folder, ignore_errors=True)
