"""`dltrain tune`: an Optuna study of a config's search section, in one parent run directory.

The parent holds the config searched, the study (SQLite, `study.db`, unless --storage names a
server) and one child run per trial (`trial-NNNN/`, made by the ordinary `fit`). Every process
that opens the parent (`--resume`) joins the same study: after Ctrl-C it continues, and several
at once share the trials. A lock makes "count the trials, then ask Optuna for one" a single
step for all of them (search/storage.py: the database server's on PostgreSQL, whatever machine
each runs on; else a file in the search's folder), so together they run exactly the planned
number.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
from rich.console import Console

from dltrain.backend import Device
from dltrain.config.load import Loaded, dump, load_config
from dltrain.config.schema import Config
from dltrain.config.search_section import SearchConfig
from dltrain.errors import DltrainError, RunError, Terminated
from dltrain.runs import layout as runs
from dltrain.runs import lock as run_lock
from dltrain.runs import records
from dltrain.runs.names import STUDY_FILE, STUDY_LOCK
from dltrain.search import results
from dltrain.search.budget import Budget, retry_interrupted
from dltrain.search.space import check_space, grid_space, planned_trials
from dltrain.search.storage import budget_lock, first_line, is_server, rdb_storage
from dltrain.search.trial import Runner, direction, objective_of
from dltrain.tracking.parent import tracked_parent
from dltrain.tracking.store import check_ready
from dltrain.urls import shown

KIND = results.KIND


@dataclass
class TuneResult:
    parent: Path
    document: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def start(loaded: Loaded, *, run_dir: Path | None, storage: str | None, trials: int | None,
          device: Device, console: Console, written: Config | None = None) -> TuneResult:
    """A new search of `loaded`'s search section; everything the user's input can fail on
    (the space, the objective's direction, the data) fails before the parent exists.

    `written`: the config before --smoke shrank it, whose settings best.yaml keeps.
    """
    config = with_trials(loaded.config, trials)
    smoke = smoke_settings(written, config)
    notes = check_space(config, loaded.source)
    check_ready(config)  # an MLflow server that does not answer: before the parent exists
    if storage is not None:  # a URL that cannot be opened left a folder "running" for ever
        rdb_storage(storage)
    runner = _runner(config, loaded.source, device, console)
    parent = runs.new_run_dir(config.model_copy(update={"name": f"{config.name}-tune"}), run_dir)
    # Shared by the search's processes, so no one process's lock: without a lock file,
    # `dltrain runs` shows the state run.json gives (each trial's run has its own lock).
    run_lock.release(parent)
    (parent / run_lock.LOCK_FILE).unlink(missing_ok=True)
    runs.write_atomic(parent / runs.CONFIG_FILE, dump(config))
    runs.set_state(parent, "running", kind=KIND,
                   **({"storage": shown(storage)} if storage else {}))
    # The search's start: versions, device, command (`runs` shows its date and backend).
    records.write(parent, records.Environment.of(runs.environment(runner.device_name)))
    console.print(f"search directory: {parent}", highlight=False, soft_wrap=True)
    with run_lock.searching(parent):
        return _search(parent, config, runner, storage, notes, smoke)


def smoke_settings(written: Config | None, config: Config) -> list[dict[str, Any]]:
    """The settings --smoke changed, each as its key path, its value as written (None: not
    set) and the trials' value: tune.json keeps them for best.yaml and its hint."""
    if written is None:
        return []
    return [{"key": list(key), "written": was, "smoke": now} for key, was, now in _changed(
        (), written.model_dump(mode="json", exclude={"search"}),
        config.model_dump(mode="json", exclude={"search"}))]


def _changed(key: tuple[Any, ...], was: Any, now: Any) -> Iterator[tuple[tuple[Any, ...], Any, Any]]:
    if isinstance(was, dict) and isinstance(now, dict):
        for name in dict.fromkeys([*was, *now]):
            yield from _changed((*key, name), was.get(name), now.get(name))
    elif isinstance(was, list) and isinstance(now, list) and len(was) == len(now):
        for index, (old, new) in enumerate(zip(was, now, strict=True)):
            yield from _changed((*key, index), old, new)
    elif was != now:
        yield key, was, now


def resume(parent: Path, *, storage: str | None, trials: int | None, device: Device,
           console: Console) -> TuneResult:
    """Continue (or join, while another process runs it) the search in `parent`."""
    state = results.search_state(parent, storage)
    check_more_trials(parent, trials)
    source = str(parent / runs.CONFIG_FILE)
    config = with_trials(load_config(parent / runs.CONFIG_FILE).config, trials)
    notes = check_space(config, source)
    logged_to = records.read_if_present(parent, records.Tracking)
    check_ready(config, logged_to.uri if logged_to else None)
    runner = _runner(config, source, device, console)
    if trials is not None:  # the new count, for the processes that join later
        runs.write_atomic(parent / runs.CONFIG_FILE, dump(config))
    searched = records.read_if_present(parent, records.Search)
    smoke = [] if searched is None else searched.as_json().get("smoke") or []
    with run_lock.searching(parent):
        return _search(parent, config, runner, storage or state.get("storage"), notes, smoke)


def with_trials(config: Config, trials: int | None) -> Config:
    """The config with --trials as its search.trials: saved with the search, so every process
    that joins it plans the same number."""
    if trials is None or config.search is None:
        return config
    return config.model_copy(update={"search": config.search.model_copy(update={"trials": trials})})


def check_more_trials(parent: Path, trials: int | None) -> None:
    """--trials on a resume is the search's new total: one below the trials already run
    would record a plan of 3 beside 10 done."""
    document = records.read_if_present(parent, records.Search) if trials is not None else None
    done = None if document is None else document.done
    if isinstance(done, int) and trials is not None and trials < done:
        raise RunError(f"--trials {trials}: the search {parent} has run {done} trials already; "
                       f"--trials is the total, so give more than {done} to run more.")


def _runner(config: Config, source: str, device: Device, console: Console) -> Runner:
    from dltrain.backend import prepare_runtime

    assert config.search is not None  # check_space refused a config without one
    runner = Runner(config.model_dump(mode="json"), source, config.search, objective_of(config),
                    device, console)
    runner.device_name = prepare_runtime(device, config.seed, config.training.deterministic,
                                         config.backend)
    runner.goal = direction(config, runner.splits(config))
    return runner


def _search(parent: Path, config: Config, runner: Runner, storage: str | None,
            notes: list[str], smoke: list[dict[str, Any]]) -> TuneResult:
    """The study's trials in this process, within the search's MLflow run (trials nest in it).

    Raises:
        RunError: when the database server stops answering (named without its password).
    """
    url = storage or f"sqlite:///{parent.resolve() / STUDY_FILE}"
    # Each `ended_by` marks a folder still "running" when what it holds fails: the second a
    # failure in the search, the MLflow run then ended by what run.json says; the first one
    # in opening that run.
    with database_errors(parent, url), ended_by(parent), tracked_parent(config, parent, KIND), \
            ended_by(parent):
        return _run_trials(parent, config, runner, url, notes, smoke)


def _run_trials(parent: Path, config: Config, runner: Runner, url: str, notes: list[str],
                smoke: list[dict[str, Any]]) -> TuneResult:
    planned = planned_trials(runner.search)
    study = open_study(config, url, runner.goal)
    runner.parent = parent
    budget = Budget(budget_lock(url, study.study_name, parent / STUDY_LOCK), planned)
    runner.started = budget.release
    with budget.held():
        retry_interrupted(study)
    try:
        budget.acquire()
        if not budget.reached(study):
            study.optimize(runner, callbacks=[budget.after_trial], catch=(DltrainError,))
    except (KeyboardInterrupt, Terminated) as stop:
        if isinstance(stop, Terminated) and runner.current is not None:
            # Optuna lets it through with the trial still running: end it.
            study.tell(runner.current, state=optuna.trial.TrialState.FAIL,
                       skip_if_finished=True)
        runner.console.print(f"search interrupted; a trial it stopped runs again when it "
                             f"continues. Continue with: dltrain tune --resume {parent}",
                             highlight=False, soft_wrap=True)
        raise
    finally:  # also after Ctrl-C: tune.json and the table say how far the search got
        budget.release()
        # Read and written under the study's lock: a process whose last trial ended first
        # read another's as running, and its tune.json (plots take seconds) landed last.
        with budget.held():
            document = {**summary(parent, study, config, runner, planned, notes),
                        "smoke": smoke}
            notes += results.write_results(parent, study, document, runner.base,
                                           runner.source)
    return TuneResult(parent, {**document, "notes": notes}, notes)


@contextmanager
def ended_by(parent: Path) -> Iterator[None]:
    """A search folder that its block leaves "running" by failing (before summary() could say
    how far it got): interrupted, which --resume continues, or failed for any other error."""
    try:
        yield
    except BaseException as error:
        state = records.read_if_present(parent, records.RunState)
        if state is not None and state.state == "running":
            stopped = isinstance(error, KeyboardInterrupt | Terminated) or \
                _database_error(error) is not None
            runs.set_state(parent, "interrupted" if stopped else "failed", kind=KIND,
                           **_storage_of(parent))
        raise


@contextmanager
def database_errors(parent: Path, url: str) -> Iterator[None]:
    """A database server that stops answering mid-search: a message naming it, not a
    traceback (its trials so far are kept, and --resume continues)."""
    try:
        yield
    except Exception as error:
        cause = _database_error(error)
        if cause is None:
            raise
        raise RunError(f"--storage {shown(url)}: the database stopped answering "
                       f"({first_line(cause, url)}). The trials it recorded are kept; when it "
                       f"answers again, continue with: dltrain tune --resume {parent}"
                       + (" (with --storage again if its URL has a password)" if is_server(url)
                          else "")) from None


def _database_error(error: BaseException | None) -> BaseException | None:
    """SQLAlchemy's error from the driver, itself or under one Optuna raised for it
    (StorageInternalError, whose message says only that a commit failed)."""
    import sqlalchemy.exc

    while error is not None and not isinstance(error, sqlalchemy.exc.DBAPIError):
        error = error.__cause__ or error.__context__
    return error


def summary(parent: Path, study: Any, config: Config, runner: Runner, planned: int,
            notes: list[str]) -> dict[str, Any]:
    """The search as tune.json and --json give it; run.json's state follows it."""
    rows = results.trial_rows(study.get_trials(deepcopy=False), runner.goal)
    done = sum(row["state"] in ("complete", "pruned", "failed") for row in rows)
    live = any(row["state"] in ("running", "waiting") for row in rows)
    found = any(row["state"] in ("complete", "pruned") for row in rows)
    state = ("failed" if not found else "completed") if done >= planned else (
        "running" if live else "interrupted")
    runs.set_state(parent, state, kind=KIND, **_storage_of(parent))
    assert config.search is not None
    return {"parent": str(parent), "study": study.study_name, "method": config.search.method,
            "objective": runner.objective, "direction": runner.goal, "planned": planned,
            "done": done, "parameters": list(config.search.parameters), "trials": rows,
            "best": results.best_row(rows), "notes": list(notes)}


def _storage_of(parent: Path) -> dict[str, Any]:
    state = records.read(parent, records.RunState)
    return {"storage": state.storage} if state.storage else {}


def open_study(config: Config, storage: str, goal: Literal["maximize", "minimize"]) -> Any:
    """The search's study, made or joined: its name comes from the config (its trial count
    aside), so processes given the same config and --storage share one study."""
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # dltrain prints each trial itself
    assert config.search is not None
    searched = config.model_copy(update={"search": config.search.model_copy(
        update={"trials": None})})
    name = f"{config.name}-{hashlib.sha256(dump(searched).encode()).hexdigest()[:12]}"
    study = optuna.create_study(
        storage=rdb_storage(storage), study_name=name,
        direction=goal, load_if_exists=True, pruner=pruner(config.search))
    # Random and TPE: each process its own seed, or two would propose the same values. The grid:
    # one seed for all, since it orders the grid points and a trial's number picks its point.
    offset = 0 if config.search.method == "grid" else len(study.get_trials(deepcopy=False))
    study.sampler = sampler(config.search, config.seed + offset)
    return study


def pruner(search: SearchConfig) -> Any:
    if search.prune is None:
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_warmup_steps=search.prune.after_epoch)


def sampler(search: SearchConfig, seed: int) -> Any:
    if search.method == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if search.method == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    return ResumableGrid(grid_space(search), seed=seed)


class ResumableGrid(optuna.samplers.GridSampler):  # type: ignore[misc]
    """Optuna's GridSampler, also for the retry of an interrupted trial: Optuna enqueues it
    with its values fixed, so it has no grid point, which GridSampler's after_trial expects."""

    def after_trial(self, study: Any, trial: Any, state: Any, values: Any) -> None:
        if "grid_id" in trial.system_attrs:
            super().after_trial(study, trial, state, values)
