"""What a search leaves: the table of trials, best.yaml, tune.json and Optuna's own plots."""

from __future__ import annotations

import copy
import os
import socket
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from dltrain.config.load import dump
from dltrain.errors import RunError
from dltrain.report.tables import print_notes
from dltrain.report.widths import Notes, fitted, unique_names
from dltrain.runs import layout as runs
from dltrain.runs import records
from dltrain.runs.names import BEST_CONFIG, HISTORY_PLOT, IMPORTANCE_PLOT
from dltrain.search.space import applied
from dltrain.urls import HIDDEN

KIND = "tune"  # run.json's kind for a search's parent run
UNSTARTED = 300  # seconds after which a trial that never named its process counts as stopped
STATES = {"COMPLETE": "complete", "PRUNED": "pruned", "FAIL": "failed", "RUNNING": "running",
          "WAITING": "waiting"}


def search_state(parent: Path, storage: str | None) -> dict[str, Any]:
    """The parent's run.json, when `parent` is a search directory whose study can be reached
    (with `storage`, or the URL run.json keeps).

    Raises:
        RunError: when it is not one, or its study's password is needed.
    """
    recorded = records.read_if_present(parent, records.RunState)
    state = {} if recorded is None else recorded.as_json()
    if state.get("kind") != KIND or not (parent / runs.CONFIG_FILE).is_file():
        what = runs.resumed_by(parent)
        raise RunError(f"{parent}: not a search directory (no run.json of kind tune with its "
                       "config.yaml); --resume takes the folder dltrain tune printed."
                       + (f" It is {what}." if what else ""))
    saved = state.get("storage")
    if storage is None and isinstance(saved, str) and f":{HIDDEN}@" in saved:
        raise RunError(f"{parent}: its study is in {saved}; pass --storage again with the "
                       "password, which dltrain does not write down.")
    return dict(state)


def interrupted(trial: Any) -> bool:
    """Stopped by Ctrl-C or SIGTERM, running in a process of this machine that is gone
    (killed), or failed for its stale heartbeat (its process died on another machine): its
    values are tried again, and it does not count against the budget."""
    attrs = trial.user_attrs
    if trial.state.name == "FAIL":
        # A trial that ended in its process has its seconds; one failed by another process
        # because its heartbeat stopped (storage.fail_stale) has none: its process died.
        return bool(attrs.get("interrupted")) or ("pid" in attrs and "seconds" not in attrs)
    if trial.state.name != "RUNNING":
        return False
    if not isinstance(attrs.get("pid"), int):
        # Asked of Optuna but not started: a trial names its host and process before the
        # budget's lock lets go, so a process holding the lock sees one without them only when
        # it was stopped in between. Outside the lock (a table, `dltrain runs`) it may be a
        # trial just made: only this host's clock dates it (datetime_start is the local time
        # of the machine that made it), so another machine's is left to its heartbeat.
        started = trial.datetime_start
        return attrs.get("host") in (None, socket.gethostname()) and started is not None and (
            datetime.now() - started).total_seconds() > UNSTARTED
    if attrs.get("host") != socket.gethostname():
        return False
    if attrs.get("interrupted"):
        return True
    try:
        os.kill(attrs["pid"], 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def state_of(trial: Any) -> str:
    return "interrupted" if interrupted(trial) else STATES.get(trial.state.name, trial.state.name)


def trial_rows(trials: list[Any], goal: str) -> list[dict[str, Any]]:
    """One row per trial, best objective first; trials without one after, by number."""
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        objective = attrs.get("objective")
        rows.append({"number": trial.number, "state": state_of(trial), "params": trial.params,
                     "objective": objective, "epochs": attrs.get("epochs"),
                     "seconds": attrs.get("seconds"), "run_dir": attrs.get("run_dir"),
                     "test": attrs.get("test"), "retry_of": attrs.get("retry_of"),
                     "error": attrs.get("error") or _pruned(trial)})
    scored = [row for row in rows if row["objective"] is not None]
    scored.sort(key=lambda row: row["objective"], reverse=goal == "maximize")
    return scored + [row for row in rows if row["objective"] is None]


def _pruned(trial: Any) -> str | None:
    if trial.state.name != "PRUNED":
        return None
    return f"after epoch {trial.last_step}" if trial.last_step is not None else None


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The best completed trial (pruned ones stopped early: their scores are not comparable)."""
    return next((row for row in rows if row["state"] == "complete"), None)


def print_trials(console: Console, rows: list[dict[str, Any]], keys: list[str],
                 objective: str) -> None:
    """Best first; each searched key headed by its shortest unique part (learning_rate for
    optimizer.learning_rate), numbers never wrapped, a long error as a note under the table."""
    table = Table(title=f"Trials by {escape(objective)}", title_justify="left")
    headers = ["trial", *unique_names(keys, separator=".", stem=False), objective, "epochs",
               "time"]
    for name in headers:
        table.add_column(escape(name), justify="right", no_wrap=True)
    table.add_column("state")
    notes = Notes()
    for row in rows:
        reason = row["error"]
        state = escape(row["state"]) + (f" ({escape(reason)})" if reason and len(reason) <= 40
                                        else f" ({notes.cell(reason)})" if reason else "")
        table.add_row(str(row["number"]), *[_value(row["params"].get(key, "-")) for key in keys],
                      "-" if row["objective"] is None else f"{row['objective']:.4f}",
                      str(row["epochs"] or "-"),
                      "-" if row["seconds"] is None else f"{row['seconds']:.1f}s", state)
    console.print(fitted(table, notes))


def _value(value: Any) -> str:
    """A searched value as short as it reads well (tune.json keeps it whole)."""
    return escape(f"{value:.4g}" if isinstance(value, float) else str(value))


def write_results(parent: Path, study: Any, document: dict[str, Any], base: dict[str, Any],
                  source: str) -> list[str]:
    """tune.json, best.yaml (the best values filled in, no search section), the parent's
    metrics.json (the best trial's, for `dltrain runs`) and the plots; returns notes."""
    notes: list[str] = []
    best = document["best"]
    if best is not None:
        runs.write_atomic(parent / BEST_CONFIG,
                          best_config(base, source, best["params"], document.get("smoke")))
        records.write(parent, records.Metrics.of({
            "test": best["test"] or {}, "epochs_run": best["epochs"], "best_trial": best["number"],
            "train_seconds": round(sum(row["seconds"] or 0 for row in document["trials"]), 3)}))
    else:
        notes.append("no trial completed, so there is no best.yaml yet.")
    notes += plots(parent, study, document)
    records.write(parent, records.Search.of({**document, "notes": document["notes"] + notes}))
    return notes


def best_config(base: dict[str, Any], source: str, params: dict[str, Any],
                smoke: list[dict[str, Any]] | None) -> str:
    """best.yaml: the config as written (a --smoke search's shrunk settings set back to the
    file's), with the best values filled in and no search section."""
    written = copy.deepcopy(base)
    for setting in smoke or []:
        *path, last = setting["key"]
        inner = written
        for key in path:
            inner = inner[key]
        inner[last] = setting["written"]
    return dump(applied(written, source, params).config)


def plots(parent: Path, study: Any, document: dict[str, Any]) -> list[str]:
    """Optuna's optimisation history and parameter importances, as PNG files."""
    import matplotlib

    matplotlib.use("Agg")  # no display: files only
    from optuna.visualization import matplotlib as optuna_plots

    complete = [row for row in document["trials"] if row["state"] == "complete"]
    if not complete:
        return []
    with warnings.catch_warnings():  # Optuna marks its matplotlib plots experimental
        warnings.simplefilter("ignore")
        runs.save_figure(optuna_plots.plot_optimization_history(
            study, target_name=document["objective"]).figure,
                         parent / HISTORY_PLOT)
        varied = [key for key in document["parameters"]
                  if len({repr(row["params"].get(key)) for row in complete}) > 1]
        if len(complete) < 2 or not varied:
            return [f"no {IMPORTANCE_PLOT}: parameter importance needs at least 2 completed "
                    f"trials and a parameter whose value varies among them (now "
                    f"{len(complete)} completed, {len(varied)} varied)."]
        runs.save_figure(optuna_plots.plot_param_importances(study).figure,
                         parent / IMPORTANCE_PLOT)
    return []


def best_holds(best: dict[str, Any], shown: str, smoke: list[dict[str, Any]] | None) -> str:
    """What best.yaml holds: a --smoke search's trials trained less than it will."""
    held = f"{BEST_CONFIG}: the config as written with trial {best['number']}'s values ({shown})"
    if smoke:
        held += "; without --smoke's settings, which the trials ran with: " + ", ".join(
            f"{'.'.join(map(str, s['key']))} "
            f"{'unset' if s['written'] is None else s['written']} (trials: {s['smoke']})"
            for s in smoke)
    return held + "."


def print_summary(console: Console, document: dict[str, Any], parent: Path) -> None:
    print_trials(console, document["trials"], document["parameters"], document["objective"])
    best = document["best"]
    if best is not None:
        shown = ", ".join(f"{key}={value}" for key, value in best["params"].items())
        console.print(f"best: trial {best['number']} ({document['objective']} "
                      f"{best['objective']:.4f}): {shown}", highlight=False, soft_wrap=True)
        console.print(escape(best_holds(best, shown, document.get("smoke"))), highlight=False)
        console.print(f"train it: dltrain fit {parent / BEST_CONFIG}", highlight=False,
                      soft_wrap=True)
    print_notes(console, document["notes"])
