"""Resume: reconcile a run directory with its checkpoint, history and manifest, then train on."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from rich.console import Console

from dltrain.backend import Device, prepare_runtime
from dltrain.backend.distribution import place
from dltrain.config.load import Loaded, config_diff, dump, load_config
from dltrain.config.schema import Config
from dltrain.data.prepare import Splits
from dltrain.errors import RunError
from dltrain.model.build import build_model
from dltrain.report.evaluate import load_model
from dltrain.report.tables import print_notes
from dltrain.runs import layout as runs
from dltrain.runs import lock as run_lock
from dltrain.runs import records
from dltrain.runs.architecture import check_architecture
from dltrain.tracking.store import check_ready
from dltrain.train.fit import FitResult, prepared_data, write_run_files
from dltrain.train.loop import _run
from dltrain.train.start import Start
from dltrain.train.timing import Clock


def record_resume(path: Path, config: Config, device_name: str, done: int) -> None:
    """environment.json keeps the session that started the run and adds one entry per resume
    under `resumed`: another machine, device or version may have trained the later epochs."""
    recorded = records.read(path, records.Environment)
    session = {**runs.environment(device_name),
               "steps_per_execution": config.steps_per_execution(), "after_epoch": done}
    resumed = [*(recorded.resumed or []), session]
    records.write(path, recorded.model_copy(update={"resumed": resumed}))


def vouch_for(run_dir: Path, text: str) -> None:
    """The manifest's config hash for the config a resume trains on (--epochs may have grown
    it): the manifest must never vouch for a config the run no longer holds."""
    import hashlib

    manifest = records.read(run_dir, records.Manifest)
    sha = hashlib.sha256(text.encode()).hexdigest()  # as runs.manifest hashes it
    if manifest.config_sha256 != sha:
        records.write(run_dir, manifest.model_copy(update={"config_sha256": sha}))


def resume(run_dir: Path, *, epochs: int | None, changed: Loaded | None, device: Device,
           console: Console, live: bool) -> FitResult:
    """Continue a run from the epoch last.keras holds, or from epoch 0 when it holds none; a run
    whose training is over (all epochs, or early stopping as run.json's `trained` says) gets its
    missing final files. Only training.epochs may grow.

    The run is locked first, so a second resume (or anything else writing it) is refused.
    """
    if run_dir.is_file():
        raise RunError(f"{run_dir}: a file; --resume takes a run directory that fit wrote. To "
                       f"train this config: dltrain fit {run_dir}")
    if not run_dir.is_dir():
        raise RunError(f"{run_dir}: no such folder; give a run directory that fit wrote (dltrain "
                       "runs lists them).")
    if not (run_dir / runs.CONFIG_FILE).is_file():  # not a run: leave no lock file there
        raise RunError(f"{run_dir}: no config.yaml, so no run to resume: a fit killed this early "
                       f"kept nothing. Start it again: dltrain fit CONFIG --run-dir {run_dir}")
    # The folders that hold runs have a config.yaml too: fit would train into them.
    if (run_dir / runs.CV_FILE).is_file():
        raise RunError(f"{run_dir}: a cross-validation, not a fit's run; go on with: dltrain cv "
                       f"--resume {run_dir}")
    if runs.recorded_kind(run_dir) == "tune":
        raise RunError(f"{run_dir}: a search, not a fit's run; go on with: dltrain tune --resume "
                       f"{run_dir}")
    if (run_dir.parent / runs.CV_FILE).is_file():  # a fold's data, which fit cannot remake
        raise RunError(f"{run_dir}: a run of the cross-validation {run_dir.parent}; finish it "
                       f"with: dltrain cv --resume {run_dir.parent}")
    if runs.recorded_kind(run_dir.parent) == "tune":  # fit would train it; the study never knew
        raise RunError(f"{run_dir}: a trial of the search {run_dir.parent}; its study must hear "
                       f"how it ends, so go on with: dltrain tune --resume {run_dir.parent}")
    with run_lock.writing(run_dir):
        return _resume(run_dir, epochs=epochs, changed=changed, device=device, console=console,
                       live=live)


def _resume(run_dir: Path, *, epochs: int | None, changed: Loaded | None, device: Device,
            console: Console, live: bool) -> FitResult:
    clock = Clock.for_command()
    check_config_as_written(run_dir)
    saved = load_config(run_dir / runs.CONFIG_FILE).config
    check_unchanged(run_dir, saved, changed.config if changed else None)
    logged_to = records.read_if_present(run_dir, records.Tracking)
    check_ready(saved, logged_to.uri if logged_to else None)  # before the model loads
    runs.remove_leftovers(run_dir)
    device_name = prepare_runtime(device, saved.seed, saved.training.deterministic, saved.backend)
    clock.lap("start")
    last = run_dir / runs.LAST_FILE
    with place(saved.distribution).scope():
        model = load_model(last) if last.is_file() else build_model(saved)
        check_architecture(run_dir / runs.CONFIG_FILE, saved, model, last)
    clock.lap("build")
    splits = prepared_data(saved, model)
    check_same_data(run_dir, splits)
    clock.lap("data")
    steps = math.ceil(len(splits.x_train) / saved.training.batch_size)
    done = checkpoint_epochs(run_dir, model, steps) if last.is_file() else 0
    recorded = records.read_if_present(run_dir, records.RunState) or records.RunState()
    history = agreeing_history(run_dir, done, recorded.state == "completed")
    config = resumable_config(run_dir, saved, changed.config if changed else None, epochs, done,
                              recorded.state)
    start = Start(model, done, history, interrupted=recorded.trained != done, clock=clock)
    if recorded.trained == done and config.training.epochs == saved.training.epochs:
        start.trained = done  # training was over (early stopping): only the final files are missing
    write_run_files(run_dir, config, splits, device_name, missing_only=True)
    record_resume(run_dir, config, device_name, done)
    runs.write_atomic(run_dir / runs.CONFIG_FILE, dump(config))
    vouch_for(run_dir, dump(config))
    (run_dir / runs.LAST_META).unlink(missing_ok=True)  # an older dltrain's, now stale
    what = ("finishing" if start.trained is not None or done >= config.training.epochs
            else "resuming")
    console.print(f"{what} {run_dir} after epoch {start.epoch}", highlight=False, soft_wrap=True)
    if what == "resuming":  # model.keras will be another model
        print_notes(console, runs.set_aside_scores(run_dir))
    return FitResult(run_dir, _run(start, splits, config, run_dir, console, live))


def checkpoint_epochs(run_dir: Path, model: Any, steps: int) -> int:
    """The epochs last.keras holds: its optimizer's step count over the steps per epoch (the
    config, hence the steps, cannot change on resume)."""
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        raise RunError(f"{run_dir / runs.LAST_FILE}: holds no optimizer state, so it cannot be "
                       f"resumed; start the run again with dltrain fit.")
    taken = int(optimizer.iterations.numpy())
    done, rest = divmod(taken, steps)
    if rest:
        raise RunError(f"{run_dir / runs.LAST_FILE}: its optimizer took {taken} steps, not a "
                       f"whole number of epochs of {steps} steps; the run's training state is "
                       f"inconsistent, so start the run again with dltrain fit.")
    return done


def agreeing_history(run_dir: Path, done: int, completed: bool) -> list[dict[str, float]]:
    """history.csv's rows for the `done` epochs of last.keras. Each epoch's row is written before
    its checkpoint, so a kill between them leaves one row more: it is dropped (the epoch is
    trained again). Any other count (a completed run has none to spare), or rows out of order,
    mean the parts disagree: refused."""
    path = run_dir / runs.HISTORY_FILE
    rows = runs.read_history(path)
    epochs = [row["epoch"] for row in rows]
    spare = [] if completed else [list(range(1, done + 2))]
    if epochs not in [list(range(1, done + 1)), *spare]:
        kept = f"last.keras holds {done} epoch(s)" if done else "there is no last.keras"
        raise RunError(f"{run_dir}: {kept} but history.csv has {len(rows)} rows; the run's "
                       f"training state is inconsistent, so start the run again with dltrain "
                       f"fit.")
    if len(rows) > done:
        if done:
            runs.write_history(path, rows[:done])
        else:
            path.unlink()
    return rows[:done]


def check_config_as_written(run_dir: Path) -> None:
    """config.yaml as the run wrote it, by manifest.json's hash: a resume of an edited one
    trained on, and the run then vouched for a config its first epochs never had."""
    import hashlib

    manifest = records.read_if_present(run_dir, records.Manifest)
    if manifest is None:  # killed before it was written: nothing to hold it against
        return
    recorded = manifest.config_sha256
    path = run_dir / runs.CONFIG_FILE
    if recorded is not None and hashlib.sha256(path.read_bytes()).hexdigest() != recorded:
        raise RunError(f"{path}: changed since the run wrote it (manifest.json holds another "
                       "sha256); a run resumes with the config it was trained with. Put the "
                       "original back, or train the change as a new run: dltrain fit "
                       f"{path} --run-dir NEW_FOLDER. Only training.epochs may grow, with "
                       f"dltrain fit --resume {run_dir} --epochs N.")


def check_same_data(run_dir: Path, splits: Splits) -> None:
    """The data as the run's manifest fingerprints it: a resume on changed files trained on
    them, with the first epochs' scaling, and the manifest still named the old data."""
    manifest = records.read_if_present(run_dir, records.Manifest)
    recorded = None if manifest is None else manifest.data
    if recorded is None:
        return
    arrays = {"x_train": splits.x_train, "y_train": splits.y_train, "x_val": splits.x_val,
              "x_test": splits.x_test, "y_test": splits.y_test}
    changed = [name for name, array in arrays.items() if name in recorded
               and (array is None or runs.fingerprint(array) != recorded[name])]
    if changed:
        raise RunError(f"{run_dir}: the data differs from what the run trained on ({', '.join(changed)} "
                       "by manifest.json's fingerprints); a run resumes on the same data. Put the "
                       "data back, or train on the new data as a new run: dltrain fit "
                       f"{run_dir / runs.CONFIG_FILE} --run-dir NEW_FOLDER.")


def check_unchanged(run_dir: Path, saved: Config, changed: Config | None) -> None:
    """--resume with a config: only its training.epochs may differ from the run's own."""
    if changed is None:
        return
    diff = [f"{key}: {old!r} -> {new!r}" for key, old, new in config_diff(
        saved.model_dump(mode="json"), changed.model_dump(mode="json"))
        if key != "training.epochs"]
    if diff:
        raise RunError(f"{run_dir}: --resume continues the run's own config; only "
                       "training.epochs may change. Changed: " + "; ".join(diff))


def resumable_config(run_dir: Path, saved: Config, changed: Config | None,
                     epochs: int | None, done: int, state: str | None) -> Config:
    """The saved config with the target training.epochs: more than `done`, or `done` itself to
    finish a run that was not completed."""
    target = epochs or (changed.training.epochs if changed else saved.training.epochs)
    if target < done or (target == done and state == "completed"):
        raise RunError(f"{run_dir}: the run is {state} after {done} epochs; pass --epochs N with "
                       f"N > {done} to train longer.")
    return saved.model_copy(update={"training": saved.training.model_copy(
        update={"epochs": target})})
