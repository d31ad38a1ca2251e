"""Many runs at once: the runs table and the comparison of two runs."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml

from dltrain.backend.names import backend_of_environment
from dltrain.console import finite
from dltrain.errors import RunError
from dltrain.runs import layout as runs
from dltrain.runs import lock, records
from dltrain.runs.records import CrossValidation, Environment, Metrics, Record, RunState

# Every row has these keys, null where a run does not say (a corrupt run, one not that far yet).
ROW_KEYS = ("name", "path", "date", "dataset", "state", "kind", "backend", "epochs", "accuracy",
            "accuracy_std", "loss", "loss_std", "seconds", "samples_per_second", "r2", "rmse",
            "writer", "unreadable", "error")
# --sort's values: each heading of the runs table, and the names it took before (accuracy, r2).
SORT_KEYS = {"name": "name", "date": "date", "dataset": "dataset", "state": "state",
             "kind": "kind", "backend": "backend", "epochs": "epochs", "acc": "accuracy",
             "accuracy": "accuracy", "loss": "loss", "time": "seconds",
             "samples/s": "samples_per_second", "r2": "r2"}
DESCENDING = {"date", "epochs", "accuracy", "r2", "samples_per_second"}  # newest, most, best


def list_runs(folder: Path, sort: str = "date") -> list[dict[str, Any]]:
    """One row per run directory below `folder` (those holding run.json), sorted by `sort` (a
    SORT_KEYS name): scores best first, the date newest first, text A to Z; rows without the
    value last, and ties newest first."""
    if not folder.is_dir():
        raise RunError(f"{folder}: no such folder of runs.")
    rows = [summarise(path) for path in sorted(folder.iterdir())
            if (path / runs.STATE_FILE).is_file()]
    newest = sorted(rows, key=_instant, reverse=True)
    return newest if SORT_KEYS[sort] == "date" else sort_rows(newest, SORT_KEYS[sort])


def sort_rows(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """`rows` by their `key`, the unknown last; the acc column's regressions (R², no accuracy)
    after the accuracies. Stable: rows that tie keep their order."""
    present = [row for row in rows if row.get(key) is not None]
    missing = [row for row in rows if row.get(key) is None]
    ordered = sorted(present, key=lambda row: row[key], reverse=key in DESCENDING)
    return ordered + (sort_rows(missing, "r2") if key == "accuracy" else missing)


def _instant(row: dict[str, Any]) -> tuple[bool, float]:
    """When the run started, to the second, comparable across time zones; undated rows last
    in a newest-first order."""
    return (True, datetime.fromisoformat(row["date"]).timestamp()) if row["date"] else (False, 0)


def iso_date(text: Any) -> str | None:
    """environment.json's start time as ISO 8601 with seconds and zone (2026-12-06T20:31:05+00:00);
    a time written without a zone is this machine's."""
    if not isinstance(text, str):
        return None
    # strftime's %z writes +0000, which Python 3.10's fromisoformat refuses (3.11 takes it).
    text = re.sub(r"([+-]\d\d)(\d\d)$", r"\1:\2", text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    return (moment if moment.tzinfo is not None else moment.astimezone()).isoformat()


def summarise(path: Path) -> dict[str, Any]:
    """A run's row: what it trained on, how far it got and how it scored; ROW_KEYS each.

    A run whose files cannot be read is still a row, state `corrupt`, with `unreadable` naming
    the first such file and `error` saying what is wrong, so one broken run hides no other. A
    run marked running whose lock no process holds is shown interrupted, `writer: gone`.
    """
    try:
        row = _row(path)
    except Unreadable as exc:
        return {**dict.fromkeys(ROW_KEYS), "name": path.name, "path": str(path),
                "state": "corrupt", "kind": "fit", "unreadable": str(exc.path),
                "error": exc.reason}
    if lock.state_now(path, row["state"]) != row["state"]:
        row.update(state="interrupted", writer="gone")
    return row


class Unreadable(Exception):
    """A run file that is missing its shape: not the JSON, CSV or YAML dltrain wrote."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason


def _row(path: Path) -> dict[str, Any]:
    state = _record(path, RunState, required=True)
    env = _record(path, Environment)
    metrics = _record(path, Metrics)
    config = _mapping(path / runs.CONFIG_FILE, _yaml)
    test = metrics.test or {}
    dataset = config.get("dataset") or {}
    regression = metrics.regression or {}  # a regression's scores, in its targets' units
    if not isinstance(dataset, dict):
        raise Unreadable(path / runs.CONFIG_FILE, "not the layout dltrain writes")
    given = metrics.model_fields_set
    try:
        history = runs.read_history(path / runs.HISTORY_FILE)
    except (OSError, UnicodeDecodeError, RunError) as exc:
        raise Unreadable(path / runs.HISTORY_FILE, str(exc)) from None
    row = {
        **dict.fromkeys(ROW_KEYS),
        "name": path.name,
        "path": str(path),
        "date": iso_date(env.started),
        "dataset": dataset.get("name"),
        "state": state.state,
        "kind": kind(state.as_json(), metrics.as_json(), env.as_json()),
        "backend": backend_of_environment(env.as_json()),
        "epochs": metrics.epochs_run if "epochs_run" in given else len(history),
        "accuracy": test.get("accuracy", test.get("acc")),
        "loss": test.get("loss"),
        "seconds": (metrics.train_seconds_total if "train_seconds_total" in given
                    else metrics.train_seconds),
        "samples_per_second": metrics.samples_per_second,
        "r2": regression.get("r2"),
        "rmse": regression.get("rmse"),
    }
    row = finite(row)  # an r2 of NaN (one test sample) written before nulls: no value
    for key in ("epochs", "accuracy", "loss", "seconds", "samples_per_second", "r2", "rmse"):
        if row[key] is not None and (isinstance(row[key], bool)
                                     or not isinstance(row[key], int | float)):
            raise Unreadable(path / runs.METRICS_FILE, f"{key} is not a number")
    if not isinstance(row["state"], str) or not isinstance(row["dataset"], str | None):
        raise Unreadable(path / (runs.STATE_FILE if not isinstance(row["state"], str)
                                 else runs.CONFIG_FILE), "not the layout dltrain writes")
    if (path / runs.CV_FILE).is_file():
        row.update(cv_row(path))
    return row


def cv_row(path: Path) -> dict[str, Any]:
    """A cross-validation's figures: the mean and std over its folds of the test accuracy and
    loss, the most epochs a fold ran and the time all of them (and a refit) trained. Its folds
    are run directories inside it, not rows of their own."""
    data = _mapping(path / runs.CV_FILE, _json, required=True)
    try:
        record = records.parse(path / runs.CV_FILE, data, CrossValidation)
    except RunError:
        raise Unreadable(path / runs.CV_FILE, "not the layout dltrain writes") from None
    folds, test = record.per_fold, record.test or {}
    if folds is None or not all(isinstance(stats, dict) for stats in test.values()):
        raise Unreadable(path / runs.CV_FILE, "not the layout dltrain writes")
    accuracy = test.get("accuracy", test.get("acc")) or {}
    loss = test.get("loss") or {}
    r2 = test.get("R²") or {}  # a regression's, in its targets' units
    trained = [*folds, record.refit_result or {}]
    try:
        seconds = sum(run.get("train_seconds") or 0.0 for run in trained) if folds else None
        epochs = max((fold.get("epochs_run") or 0 for fold in folds), default=None)
    except TypeError:
        raise Unreadable(path / runs.CV_FILE, "not the layout dltrain writes") from None
    figures = {"accuracy": accuracy.get("mean"), "accuracy_std": accuracy.get("std"),
               "loss": loss.get("mean"), "loss_std": loss.get("std"), "epochs": epochs,
               "seconds": seconds, "r2": r2.get("mean"), "rmse": (test.get("RMSE") or {}).get(
                   "mean")}
    if any(isinstance(value, bool) or not isinstance(value, int | float | None)
           for value in figures.values()):
        raise Unreadable(path / runs.CV_FILE, "not the layout dltrain writes")
    return {"kind": "cv", **figures, "samples_per_second": None}


def _mapping(path: Path, read: Any, required: bool = False) -> dict[str, Any]:
    """The file's mapping; {} when it is absent (a run not that far yet) and not required."""
    try:
        data = read(path)
    except (OSError, UnicodeDecodeError, RunError, yaml.YAMLError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise Unreadable(path, reason.removeprefix(f"{path}: ")) from None  # RunError names it
    if data is None and not required and not path.exists():
        return {}
    if not isinstance(data, dict):
        raise Unreadable(path, f"holds a {type(data).__name__}, not the mapping dltrain writes")
    return data


R = TypeVar("R", bound=Record)


def _record(run_dir: Path, kind: type[R], required: bool = False) -> R:
    """The run's record `kind` (an empty one where a run not that far has no file yet)."""
    path = run_dir / kind.FILE
    try:
        return records.parse(path, _mapping(path, _json, required), kind)
    except RunError as exc:
        raise Unreadable(path, str(exc).removeprefix(f"{path}: ")) from None


def kind(state: dict[str, Any], metrics: dict[str, Any], env: dict[str, Any]) -> str:
    """tune, synthetic, smoke or fit, from the markers the run wrote (metrics.json has `smoke` after
    a --smoke fit); a run stopped before its metrics is told by its command line."""
    markers = {**state, **metrics}
    if state.get("kind") == "tune":  # a search's parent run: its trials are inside it
        return "tune"
    if markers.get("synthetic"):
        return "synthetic"
    if markers.get("smoke") or "--smoke" in (env.get("command") or []):
        return "smoke"
    return "fit"


def compare(run_a: Path, run_b: Path) -> dict[str, Any]:
    """Config keys that differ (old -> new) and the test metrics side by side."""
    from dltrain.config.load import config_diff

    for path in (run_a, run_b):
        if not (path / runs.CONFIG_FILE).is_file():
            raise RunError(f"{path}: no config.yaml; compare takes two run directories.")
    config_a, config_b = (_config(path / runs.CONFIG_FILE) for path in (run_a, run_b))
    changes = [{"key": key, "a": a, "b": b} for key, a, b in config_diff(config_a, config_b)]
    folds = [_compared(path, CrossValidation).folds for path in (run_a, run_b)]
    if folds[0] != folds[1]:  # a cross-validation's fold count is no key of its config
        changes.append({"key": "cv --folds", "a": folds[0], "b": folds[1]})
    tests = [compared_scores(path) for path in (run_a, run_b)]
    scored = [scored_by(config) for config in (config_a, config_b)]
    metrics = []
    for name in sorted(set(tests[0]) | set(tests[1])):
        a, b = tests[0].get(name), tests[1].get(name)
        why = None if a is None or b is None else unlike(name, scored[0], scored[1])
        metrics.append({"metric": name, "a": a, "b": b,
                        "delta": None if a is None or b is None or why else b - a, "why": why})
    return {"a": str(run_a), "b": str(run_b), "config": changes, "metrics": metrics,
            "mean_of_folds": [(path / runs.CV_FILE).is_file() for path in (run_a, run_b)]}


def scored_by(config: dict[str, Any]) -> tuple[str, str, Any]:
    """The run's task, its loss's name and the loss as the config gives it (with its
    arguments): what its scores mean."""
    from dltrain.tasks.base import squash
    from dltrain.tasks.registry import TASKS, task_for

    loss = config.get("loss")
    name = loss.get("name") if isinstance(loss, dict) else loss
    name = name if isinstance(name, str) else "unknown"
    task = config.get("task")
    # {name: mse} is mse: only other arguments make another loss.
    arguments = {key: value for key, value in loss.items() if key != "name"} \
        if isinstance(loss, dict) else {}
    spec = {**arguments, "name": squash(name)} if arguments else squash(name)
    return task_for(name, task if task in TASKS else None).name, name, spec


def unlike(metric: str, a: tuple[str, str, Any], b: tuple[str, str, Any]) -> str | None:
    """Why two runs' values of `metric` are not to be subtracted (None: they compare): runs of
    two tasks score different things, and two losses (or one with other arguments) differ in
    their units."""
    if a[0] != b[0]:
        return (f"a is a {a[0]} (loss {a[1]}), b a {b[0]} (loss {b[1]}): their scores do not "
                "compare")
    if metric == "loss" and a[2] != b[2]:
        losses = f"{a[1]}, {b[1]}" if a[1] != b[1] else f"{a[1]} with other arguments"
        return f"different losses ({losses}): their values do not compare"
    return None


# A regression's scores as compare names them: capitals, apart from Keras's lowercase metrics
# (which a standardised target puts in other units).
REGRESSION_ROWS = {"mae": "MAE", "rmse": "RMSE", "r2": "R²", "target_std": "target std"}


def compared_scores(path: Path) -> dict[str, Any]:
    """A run's test figures; a cross-validation's are the means over its folds (cv.json)."""
    if (path / runs.CV_FILE).is_file():
        test = _compared(path, CrossValidation).test
        if test is None or not all(isinstance(v, dict) for v in test.values()):
            raise RunError(f"{path / runs.CV_FILE}: not the layout dltrain writes; compare takes "
                           "two run directories as dltrain writes them.")
        return {name: stats.get("mean") for name, stats in test.items()}
    scores = scored_metrics(_compared(path, Metrics))
    wrong = [name for name, value in scores.items()
             if isinstance(value, bool) or not isinstance(value, int | float | None)]
    if wrong:
        raise RunError(f"{path / runs.METRICS_FILE}: {wrong[0]} is not a number; compare takes "
                       "two run directories as dltrain writes them.")
    return scores


def scored_metrics(metrics: Metrics) -> dict[str, Any]:
    """The test metrics Keras logged and, for a regression, its scores in the targets' units."""
    regression = metrics.regression or {}
    return {**(metrics.test or {}),
            **{shown: regression[key] for key, shown in REGRESSION_ROWS.items()
               if key in regression}}


def _compared(run_dir: Path, kind: type[R]) -> R:
    """A run's record compare reads; RunError naming its file when it is damaged."""
    try:
        return _record(run_dir, kind)
    except Unreadable as exc:
        raise RunError(f"{exc}; compare takes two run directories as dltrain writes them.") \
            from None


def _config(path: Path) -> dict[str, Any]:
    """config.yaml as compare reads it; RunError naming it when it is damaged."""
    try:
        return _mapping(path, _yaml)
    except Unreadable as exc:
        raise RunError(f"{exc}; compare takes two run directories as dltrain writes them.") \
            from None


def _json(path: Path) -> Any:
    return runs.read_json(path) if path.is_file() else None


def _yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))
