"""Where a search's study lives (dltrain/search/storage.py): the driver hints and the URL's
password, the locks, and searches against a real PostgreSQL cluster started for this module:
two processes at once on an empty database, one of them killed, a wrong password."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from postgres_cluster import PASSWORD, Cluster, cluster

from conftest import ROOT, run_cli
from dltrain import install_line
from dltrain.errors import RunError

# --- the URL, the driver, the locks (no server) ---------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgresql", "postgresql+psycopg"])
def test_a_missing_psycopg_names_the_postgres_extra_and_hides_the_password(
        scheme: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from dltrain.search.storage import rdb_storage

    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if not installed
    with pytest.raises(RunError) as error:
        rdb_storage(f"{scheme}://me:{PASSWORD}@127.0.0.1:1/db")
    message = str(error.value)
    assert message.startswith(f"--storage {scheme}://me:***@127.0.0.1:1/db: its driver is not "
                              "installed")
    assert message.endswith(f"; {install_line('postgres')}.") and PASSWORD not in message


def test_psycopg2_s_url_says_which_package_and_that_postgresql_uses_psycopg_3(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from dltrain.search.storage import rdb_storage

    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(RunError) as error:
        rdb_storage("postgresql+psycopg2://me@127.0.0.1:1/db")
    assert str(error.value).endswith(
        "pip install psycopg2-binary, or write postgresql:// (psycopg 3, which the postgres extra "
        f"brings: {install_line('postgres')}).")


def test_a_server_that_is_not_there_is_named_without_the_password() -> None:
    pytest.importorskip("psycopg")
    from dltrain.search.storage import rdb_storage

    with pytest.raises(RunError) as error:  # port 1: nothing listens, refused at once
        rdb_storage(f"postgresql://me:{PASSWORD}@127.0.0.1:1/db")
    message = str(error.value)
    assert message.startswith("--storage postgresql://me:***@127.0.0.1:1/db: cannot open it: ")
    assert "refused" in message and PASSWORD not in message


def test_advisory_locks_are_postgresql_s_and_numbered_by_a_stable_signed_64_bit_key() -> None:
    from dltrain.search.storage import AdvisoryLock, FileLock, budget_lock, lock_key, takes_advisory_locks

    assert [takes_advisory_locks(url) for url in ("postgresql://h/d", "postgresql+psycopg2://h/d",
                                                  "sqlite:///s.db", "mysql+pymysql://h/d")] \
        == [True, True, False, False]
    assert lock_key("a") == lock_key("a") != lock_key("b")
    assert -2**63 <= lock_key("a") < 2**63
    assert isinstance(budget_lock("postgresql://h/d", "study", Path("x")), AdvisoryLock)
    assert isinstance(budget_lock("sqlite:///s.db", "study", Path("x")), FileLock)


@pytest.mark.parametrize("target", ["new.txt", "precious.txt"])
def test_the_trial_budget_s_lock_is_never_opened_through_a_planted_link(
        tmp_path: Path, target: str) -> None:
    """study.lock was opened with open('a'): a link planted there made a file outside the
    search (or held one open for writing)."""
    from dltrain.search.storage import FileLock

    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "precious.txt").write_text("keep")
    search = tmp_path / "search"
    search.mkdir()
    (search / "study.lock").symlink_to(outside / target)
    with pytest.raises(RunError, match="study.lock: a symbolic link"):
        FileLock(search / "study.lock").acquire()
    assert sorted(path.name for path in outside.iterdir()) == ["precious.txt"]
    assert (outside / "precious.txt").read_text() == "keep"


def _trial(state: str, **attrs: Any) -> SimpleNamespace:
    return SimpleNamespace(state=SimpleNamespace(name=state), user_attrs=attrs)


def test_a_trial_failed_for_its_stale_heartbeat_is_interrupted_and_one_that_failed_is_not() -> None:
    from dltrain.search.results import interrupted

    assert interrupted(_trial("FAIL", host="elsewhere", pid=7))  # failed by another process
    assert not interrupted(_trial("FAIL", host="elsewhere", pid=7, seconds=1.5, error="bad"))
    assert interrupted(_trial("FAIL", pid=7, seconds=1.5, interrupted=True))  # Ctrl-C
    assert not interrupted(_trial("RUNNING", host="elsewhere", pid=7))  # alive, for all we know


def test_the_budget_counts_running_and_finished_trials_not_waiting_or_interrupted_ones() -> None:
    import optuna

    from dltrain.search.budget import Budget, retry_interrupted

    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study()
    for value in (1.0, 2.0):
        study.add_trial(optuna.trial.create_trial(params={"x": value}, value=value, distributions={
            "x": optuna.distributions.FloatDistribution(0, 10)}))
    dead = study.ask({"x": optuna.distributions.FloatDistribution(0, 10)})
    dead.set_user_attr("host", "elsewhere")
    dead.set_user_attr("pid", 7)
    study.tell(dead, state=optuna.trial.TrialState.FAIL)  # as a stale heartbeat leaves it
    budget = Budget(SimpleNamespace(acquire=lambda: None, release=lambda: None), planned=3)
    retry_interrupted(study)
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE", "FAIL", "WAITING"]
    # Optuna runs the waiting retry next: it must not count before it runs.
    assert not budget.reached(study)
    study.ask()  # the retry starts
    assert budget.reached(study)


def test_the_postgres_extra_brings_sqlalchemy_2_1_whose_postgresql_scheme_loads_psycopg_3() -> None:
    """On SQLAlchemy 2.0, postgresql:// loads psycopg2: the extra's psycopg would not help."""
    import tomllib

    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert extras["postgres"] == ["psycopg[binary]>=3.1", "sqlalchemy>=2.1"]


def test_a_trial_without_its_process_is_dated_by_this_host_s_clock_only() -> None:
    """datetime_start is the local time of the machine that made the trial: another machine's
    clock (or time zone) ahead made a trial just asked for look stopped, and its values ran
    twice."""
    import socket
    from datetime import datetime, timedelta

    from dltrain.search.results import UNSTARTED, interrupted

    old = datetime.now() - timedelta(seconds=UNSTARTED + 60)
    for host, expected in ((None, True), (socket.gethostname(), True), ("elsewhere", False)):
        trial = _trial("RUNNING", **({"host": host} if host else {}))
        trial.datetime_start = old
        assert interrupted(trial) is expected, host
    trial = _trial("RUNNING")
    trial.datetime_start = datetime.now()
    assert not interrupted(trial)  # just asked for: its process names itself next


class _Connection:
    def __init__(self, fails: bool) -> None:
        self.fails, self.closed, self.said = fails, False, []

    def execute(self, statement: Any, *_: Any) -> None:
        self.said.append(str(statement))
        if self.fails and "pg_advisory_lock" in str(statement):
            raise RuntimeError("the server went away")

    def close(self) -> None:
        self.closed = True


def test_an_advisory_lock_whose_query_failed_is_not_held_and_is_waited_for_again() -> None:
    """self.connection was set before pg_advisory_lock returned: after a failure, the next
    acquire() returned at once, with no lock."""
    from dltrain.search.storage import LOCK_TIMEOUT, AdvisoryLock

    connections = [_Connection(fails=True), _Connection(fails=False)]
    lock = AdvisoryLock("postgresql://me@127.0.0.1:1/db", "dltrain budget: study")
    lock.engine = SimpleNamespace(connect=lambda: connections.pop(0))
    failed, held = connections
    with pytest.raises(RuntimeError, match="went away"):
        lock.acquire()
    assert failed.closed and lock.connection is None
    lock.acquire()
    assert lock.connection is held and held.said == [
        f"SET lock_timeout = '{LOCK_TIMEOUT}s'", "SELECT pg_advisory_lock(:key)"]
    lock.release()
    assert held.closed and lock.connection is None


# --- against a real PostgreSQL cluster ------------------------------------------------------------

LEARNING_RATES, BATCH_SIZES = [0.001, 0.003], [16, 32]
GRID = {(rate, size) for rate in LEARNING_RATES for size in BATCH_SIZES}
TIMEOUT = 240  # seconds for one search process


@pytest.fixture(scope="module")
def server() -> Iterator[Cluster]:
    with cluster() as running:
        yield running


def grid_config(folder: Path) -> Path:
    """tabular_binary with a smaller model and a 2x2 grid: each trial a second or so."""
    raw = yaml.safe_load((ROOT / "configs" / "tabular_binary.yaml").read_text())
    raw["dataset"]["path"] = str(ROOT / "dltrain" / "data" / "shipped" / "pima_diabetes.csv")
    raw["model"]["layers"] = [{"Dense": {"units": 4, "activation": "relu"}},
                              {"Dense": {"units": 1, "activation": "sigmoid"}}]
    raw["training"] = {"epochs": 1, "batch_size": 16}
    raw["search"] = {"method": "grid", "objective": "val_accuracy", "parameters": {
        "optimizer.learning_rate": {"choice": LEARNING_RATES},
        "training.batch_size": {"choice": BATCH_SIZES}}}
    path = folder / "grid.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@dataclass
class Tune:
    """A `dltrain tune` process whose output goes to files: two processes' pipes read one
    after the other could each wait on the other (one blocked writing a full pipe while
    holding a lock the other waits for)."""

    process: subprocess.Popen[bytes]
    out: Path
    err: Path


def start_tune(folder: Path, *args: object) -> Tune:
    """`dltrain tune ARGS` in its own process, started in `folder` (as on its own machine)."""
    folder.mkdir(parents=True, exist_ok=True)
    out, err = folder.with_name(f"{folder.name}.out"), folder.with_name(f"{folder.name}.err")
    with out.open("wb") as stdout, err.open("wb") as stderr:
        process = subprocess.Popen([sys.executable, "-m", "dltrain", "tune", *map(str, args)],
                                   cwd=folder, stdout=stdout, stderr=stderr,
                                   env={**os.environ, "CI": "1", "PYTHONPATH": str(ROOT)})
    return Tune(process, out, err)


def finish(*tunes: Tune) -> list[tuple[int, str, str]]:
    """Each process's exit code and output, every one ended even when one hangs."""
    deadline = time.monotonic() + TIMEOUT
    try:
        for tune in tunes:
            tune.process.wait(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for tune in tunes:
            if tune.process.poll() is None:
                tune.process.kill()
                tune.process.wait(timeout=60)
    return [(tune.process.returncode, tune.out.read_text(), tune.err.read_text())
            for tune in tunes]


def values(trial: dict[str, Any]) -> tuple[float, int]:
    return trial["params"]["optimizer.learning_rate"], trial["params"]["training.batch_size"]


def finished(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [trial for trial in document["trials"]
            if trial["state"] in ("complete", "pruned", "failed")]


@pytest.mark.slow
def test_two_processes_started_at_once_on_an_empty_database_run_each_trial_once(
        server: Cluster, tmp_path: Path) -> None:
    import optuna

    # One died with UniqueViolation (pg_type_typname_nsp_index): both created Optuna's tables.
    url, config = server.create_database("together"), grid_config(tmp_path)
    processes = [start_tune(tmp_path / name, config, "--storage", url, "--run-dir", "search",
                            "--json") for name in ("one", "two")]
    ended = finish(*processes)
    for code, _, err in ended:
        assert code == 0, err
        assert PASSWORD not in err
    documents = [json.loads(out) for _, out, _ in ended]
    # Each process's tune.json as it left: the other's last trial may still have been running.
    assert [[trial["number"] for trial in sorted(document["trials"], key=lambda t: t["number"])]
            for document in documents] == [[0, 1, 2, 3]] * 2
    study = optuna.load_study(study_name=documents[0]["study"], storage=url)
    assert [trial.state.name for trial in study.trials] == ["COMPLETE"] * 4
    assert {(trial.params["optimizer.learning_rate"], trial.params["training.batch_size"])
            for trial in study.trials} == GRID
    ran = [path.name for name in ("one", "two") for path in (tmp_path / name / "search").glob(
        "trial-*")]
    assert sorted(ran) == [f"trial-{number:04d}" for number in range(4)]  # each in one process
    states = [json.loads((tmp_path / name / "search" / "run.json").read_text())
              for name in ("one", "two")]
    # The process that ended first left its folder "running" if the other's trial still was.
    assert "completed" in {state["state"] for state in states}
    assert {state["storage"] for state in states} == {url.replace(PASSWORD, "***")}
    written = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(written) > 40 and not [path for path in written if PASSWORD.encode() in
                                      path.read_bytes()]


def wait_for_trial(folder: Path, tune: Tune) -> Path:
    """A trial's run.json under `folder` (its fit has begun), bounded by TIMEOUT seconds."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline and tune.process.poll() is None:
        found = sorted(folder.glob("trial-*/run.json"))
        if found:
            return found[0].parent
        time.sleep(0.05)
    tune.process.kill()
    tune.process.wait(timeout=60)
    raise AssertionError(f"no trial under {folder}: {tune.err.read_text()}")


@pytest.mark.slow
def test_a_process_killed_mid_trial_leaves_its_trial_to_the_other_which_runs_the_planned_set(
        server: Cluster, tmp_path: Path) -> None:
    url, config = server.create_database("killed"), grid_config(tmp_path)
    doomed = start_tune(tmp_path / "one", config, "--storage", url, "--run-dir", "search")
    survivor = start_tune(tmp_path / "two", config, "--storage", url, "--run-dir", "search",
                          "--json")
    try:
        killed = wait_for_trial(tmp_path / "one" / "search", doomed)
        doomed.process.send_signal(signal.SIGKILL)
        doomed.process.wait(timeout=60)  # reaped, as a shell would: a zombie's pid still answers
    finally:
        [_, (code, out, err)] = finish(doomed, survivor)
    assert code == 0, err
    document = json.loads(out)
    done = finished(document)
    assert len(done) == 4 and {values(trial) for trial in done} == GRID  # none twice
    [lost] = [trial for trial in document["trials"] if trial["state"] == "interrupted"]
    assert Path(lost["run_dir"]).name == killed.name
    [retry] = [trial for trial in done if trial["retry_of"] == lost["number"]]
    assert values(retry) == values(lost)
    assert json.loads((tmp_path / "two" / "search" / "run.json").read_text())["state"] \
        == "completed"


@pytest.mark.slow
def test_a_wrong_password_exits_2_naming_the_url_without_any_password(
        server: Cluster, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    url = server.create_database("guarded").replace(PASSWORD, "not-the-password")
    code, out, err = run_cli(capsys, "tune", grid_config(tmp_path), "--storage", url,
                             "--run-dir", tmp_path / "search")
    assert code == 2
    said = " ".join(err.split())
    assert f"--storage {url.replace('not-the-password', '***')}: cannot open it:" in said
    assert 'password authentication failed for user "dltrain"' in said
    for text in (out, err):
        assert "not-the-password" not in text and PASSWORD not in text
    assert not (tmp_path / "search").exists()  # no run folder, so no file to hold it


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")  # threads race on
# warnings.catch_warnings, which is the process's, so one may escape it
def test_four_openers_at_once_on_an_empty_database_each_open_it(server: Cluster) -> None:
    """Each made Optuna's tables at the same moment, and all but one died (UniqueViolation on
    pg_type): the advisory lock makes it one at a time. The barrier makes "at once" certain,
    where two processes started together may not be."""
    from dltrain.search import storage

    url = server.create_database("four")
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def open_it() -> None:
        try:
            barrier.wait(timeout=60)
            storage.rdb_storage(url)
        except BaseException as exc:  # noqa: BLE001 - the test's assertion shows it
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=TIMEOUT)
    assert not [thread for thread in threads if thread.is_alive()] and errors == []


@pytest.mark.slow
def test_an_advisory_lock_held_too_long_is_a_message_naming_it(
        server: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    from dltrain.search import storage

    monkeypatch.setattr(storage, "LOCK_TIMEOUT", 1)
    url = server.create_database("held")
    holder = storage.AdvisoryLock(url, "dltrain budget: study")
    holder.acquire()
    try:
        waiter = storage.AdvisoryLock(url, "dltrain budget: study")
        with pytest.raises(RunError) as error:
            waiter.acquire()
        assert str(error.value) == (
            f"--storage {url.replace(PASSWORD, '***')}: waited 1 s for the lock \"dltrain "
            "budget: study\", which another process of the search holds all that time (one "
            "that hangs: end it, and its lock goes).")
        assert waiter.connection is None
    finally:
        holder.release()
    waiter.acquire()  # let go: the next wait takes it
    waiter.release()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # study.ask, as a process
def test_a_trial_whose_heartbeat_stops_on_another_machine_is_failed_and_run_again(
        server: Cluster, monkeypatch: pytest.MonkeyPatch) -> None:
    import optuna

    from dltrain.search import storage
    from dltrain.search.budget import Budget, retry_interrupted
    from dltrain.search.results import interrupted

    monkeypatch.setattr(storage, "HEARTBEAT", 1)
    monkeypatch.setattr(storage, "GRACE", 1)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    server.create_database("stale")  # the same driver as postgresql://, named
    url = server.url("stale", scheme="postgresql+psycopg")
    study = optuna.create_study(storage=storage.rdb_storage(url))
    trial = study.ask({"x": optuna.distributions.FloatDistribution(0, 10)})
    trial.set_user_attr("host", "another-machine")  # no pid of this machine's to look up
    trial.set_user_attr("pid", 7)
    study._storage.record_heartbeat(trial._trial_id)
    budget = Budget(SimpleNamespace(acquire=lambda: None, release=lambda: None), planned=1)
    assert budget.reached(study)  # running elsewhere, for all this process knows
    deadline = time.monotonic() + 30  # a grace period of 1 s, then the next count fails it
    while budget.reached(study):
        assert time.monotonic() < deadline, "the stale trial was never failed"
        time.sleep(0.2)
    assert interrupted(study.trials[0]) and not budget.reached(study)
    retry_interrupted(study)
    assert study.trials[1].state.name == "WAITING"
    retry = study.trials[1]
    assert retry.system_attrs["fixed_params"] == trial.params and retry.user_attrs["retry_of"] == 0
