"""The run directory: what it holds and under which names, where it goes, and its state.

The files themselves are written by `dltrain.runs.files`, whole or not at all.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

from dltrain import __version__
from dltrain.config.schema import Config
from dltrain.errors import RunError
from dltrain.runs import lock, records
from dltrain.runs.files import (  # noqa: F401 - re-exported: run files besides the records
    copy_file,
    read_history,
    read_json,
    refuse_link,
    save_figure,
    save_model,
    temporary_of,
    write_atomic,
    write_history,
)
from dltrain.runs.names import (  # noqa: F401 - re-exported: the run folder's names
    BEST_FILE,
    CONFIG_FILE,
    CONFUSION_FILE,
    CURVES_FILE,
    CV_FILE,
    ENV_FILE,
    EVAL_FILE,
    EXPORT_FILE,
    FIT_FILES,
    HISTORY_FILE,
    LAST_FILE,
    LAST_META,
    MANIFEST_FILE,
    METRICS_FILE,
    MODEL_FILE,
    PREDICTED_FILE,
    PREPARATION_FILE,
    RESIDUALS_FILE,
    STATE_FILE,
    TENSORBOARD_DIR,
    scores_of_model,
)


def new_run_dir(config: Config, chosen: Path | None) -> Path:
    """`chosen` exactly (it must be absent, empty, or hold only the temporary files of a fit
    killed at its start), else a fresh runs/<name>-<timestamp>/.

    The folder comes back locked for this process (`dltrain.runs.lock`): made, locked, then
    checked again, so two fits into one --run-dir cannot both start.
    """
    if chosen is not None:
        if chosen.exists() and (not chosen.is_dir() or _holds_files(chosen)):
            what = resumed_by(chosen)  # a fit's, a cross-validation's, a search's
            hint = f" It holds {what}." if what else ""
            raise RunError(f"--run-dir {chosen} already exists and is not empty; choose a new "
                           f"folder so no earlier run is overwritten.{hint}")
        try:
            chosen.mkdir(parents=True, exist_ok=True)
        except FileNotFoundError:  # a file system that makes no folders there (/proc)
            raise RunError(f"--run-dir {chosen}: no folder can be made there; choose one in a "
                           "folder you can write.") from None
        lock.acquire(chosen)
        if _holds_files(chosen):  # another fit made it between the check and the lock
            lock.release(chosen)
            raise RunError(f"--run-dir {chosen} already exists and is not empty; choose a new "
                           "folder so no earlier run is overwritten.")
        remove_leftovers(chosen)
        return chosen
    inside_working_directory(config.output.runs_dir)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = config.output.runs_dir / f"{config.name}-{stamp}"
    path, suffix = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            lock.acquire(path)
            return path
        except FileExistsError:
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")


def scratch_dir() -> Path:
    """A folder outside any run, for a process that trains but does not write (several
    processes: all but process 0)."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix="dltrain-process-"))


def remove_scratch(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def inside_working_directory(runs_dir: Path) -> None:
    """output.runs_dir as the file system sees it: a symlink must not lead a config's runs out
    of the folder it is run from (the config's own check is lexical)."""
    cwd = Path.cwd().resolve()
    target = (cwd / runs_dir).resolve()
    if not target.is_relative_to(cwd):
        raise RunError(f"output.runs_dir {runs_dir} leads to {target}, outside the working "
                       f"directory {cwd}; a config keeps its runs inside the folder it is run "
                       "from. Use --run-dir to put a run elsewhere.")


def _holds_files(folder: Path) -> bool:
    """Anything but the lock and the temporary files of a fit killed at its start."""
    return any(entry.name != lock.LOCK_FILE and temporary_of(entry.name) not in FIT_FILES
               for entry in folder.iterdir())


def remove_leftovers(run_dir: Path) -> list[str]:
    """Delete the temporary files a killed fit left (half-written models: megabytes each).

    Only atomic_target's names for fit's own files: never a user's file, nor a temporary file
    of another command (eval writes eval.json) that may be writing now.
    """
    removed = []
    for item in run_dir.iterdir():
        if temporary_of(item.name) in FIT_FILES and item.is_file():
            item.unlink(missing_ok=True)
            removed.append(item.name)
    return removed


def resumed_by(folder: Path) -> str | None:
    """What `folder` is and the command that goes on with it, for a --resume given the wrong
    kind of folder; None when it is none of dltrain's."""
    if (folder / CV_FILE).is_file():
        return f"a cross-validation: dltrain cv --resume {folder}"
    if recorded_kind(folder) == "tune":
        return f"a search: dltrain tune --resume {folder}"
    if not (folder / CONFIG_FILE).is_file():
        return None
    if (folder.parent / CV_FILE).is_file():
        return (f"a run of the cross-validation {folder.parent}: dltrain cv --resume "
                f"{folder.parent}")
    if recorded_kind(folder.parent) == "tune":
        return f"a trial of the search {folder.parent}: dltrain tune --resume {folder.parent}"
    return f"a fit's run directory: dltrain fit --resume {folder}"


def resume_command(run_dir: Path) -> str:
    """The command that goes on with an interrupted run: a fold's or a trial's is its parent's
    (fit --resume refuses them: the cross-validation or the study must hear how they end)."""
    if (run_dir.parent / CV_FILE).is_file():
        return f"dltrain cv --resume {run_dir.parent}"
    if recorded_kind(run_dir.parent) == "tune":
        return f"dltrain tune --resume {run_dir.parent}"
    return f"dltrain fit --resume {run_dir}"


def _set_aside_checkpoint_scores(run_dir: Path) -> list[str]:
    """best.keras and last.keras change as a resumed run trains: their eval --model scores go."""
    notes = []
    for model in (BEST_FILE, LAST_FILE):
        found = [name for name in scores_of_model(Path(model).stem) if (run_dir / name).is_file()]
        for name in found:
            (run_dir / name).unlink()
        if found:
            notes.append(f"{', '.join(found)} removed: they scored the {model} before this "
                         f"resume; run dltrain eval --model {model} again once the run completes.")
    return notes


def set_aside_scores(run_dir: Path) -> list[str]:
    """Before a resume trains on: metrics.json and eval.json scored the model.keras about to be
    replaced, so they go (fit writes metrics.json anew when it completes; until then `runs` and
    `compare` show no scores rather than the old model's); export.json's exports are of that
    model, so each entry says it is stale. Notes."""
    notes = []
    if (run_dir / METRICS_FILE).is_file():
        (run_dir / METRICS_FILE).unlink()
        notes.append(f"{METRICS_FILE} removed: its test scores were the model's before this "
                     "resume; the run writes new ones when it completes.")
    if (run_dir / EVAL_FILE).is_file():
        (run_dir / EVAL_FILE).unlink()
        notes.append(f"{EVAL_FILE} removed: it scored the model before this resume; run dltrain "
                     "eval again once the run completes.")
    notes.extend(_set_aside_checkpoint_scores(run_dir))
    exports = records.read_exports(run_dir).formats()
    if exports:
        stale = (f"of the model before the resume of {_now()}: export again once the run "
                 "completes")
        records.write(run_dir, records.Exports.of({fmt: {**entry, "stale": stale} if isinstance(
            entry, dict) else entry for fmt, entry in exports.items()}))
        notes.append(f"{EXPORT_FILE}: its exports ({', '.join(exports)}) are {stale}.")
    return notes


def recorded_kind(run_dir: Path) -> str | None:
    """run.json's kind (cv, tune for the folders that hold runs), or None where none is said."""
    try:
        state = records.read_if_present(run_dir, records.RunState)
    except (OSError, RunError):  # unreadable: the commands that need it say so themselves
        return None
    return None if state is None else state.kind


def set_state(run_dir: Path, state: str, **details: Any) -> None:
    """running, completed, interrupted or failed: `eval` trusts only completed runs."""
    records.write(run_dir, records.RunState.of({"state": state, "updated": _now(), **details}))


def environment(device: str) -> dict[str, Any]:
    from dltrain.backend import versions
    from dltrain.backend.distribution import current

    return {
        "dltrain": __version__,
        "python": sys.version.split()[0],
        **versions(),
        "numpy": _numpy_version(),
        "platform": platform.platform(),
        "device": device,
        "distribution": current().to_json(),
        "cpu_count": os.cpu_count(),
        "command": lock.command_line(),  # without a --storage URL's password
        "started": _now(),
    }


def _numpy_version() -> str:
    import numpy

    return numpy.__version__


def manifest(config_text: str, seed: int, arrays: dict[str, Any]) -> dict[str, Any]:
    """What a run needs to be trusted later: config hash, code version, data fingerprint."""
    import hashlib

    return {
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "git": git_state(Path.cwd()),
        "seed": seed,
        "data": {name: fingerprint(array) for name, array in arrays.items() if array is not None},
    }


def fingerprint(array: Any) -> dict[str, Any]:
    """Shape, dtype and a hash of a fixed sample: enough to notice the data changed."""
    import hashlib

    import numpy as np

    step = max(1, len(array) // 1000)
    sample = np.ascontiguousarray(array[::step][:1000])
    return {"shape": list(array.shape), "dtype": str(array.dtype),
            "sample_sha256": hashlib.sha256(sample.tobytes()).hexdigest()}


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit of the working directory's repository and whether it had changes."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                                  timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
