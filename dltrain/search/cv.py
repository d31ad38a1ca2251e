"""K-fold cross-validation: one parent run directory, a complete child run per fold, cv.json.

The data is read once; each fold is an ordinary `fit` on the other folds' rows, validated on
its own, tested on the untouched test split, so `dltrain eval` and `show` work on each child.
"""

from __future__ import annotations

import copy
import dataclasses
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console

from dltrain.backend import Device, prepare_runtime
from dltrain.config.load import Loaded, dump, load_config
from dltrain.config.messages import describe
from dltrain.config.schema import Config
from dltrain.data.folds import Fold, fold_splits, folds_digest, make_folds, validation_counts
from dltrain.data.prepare import Splits, check_fits_model, load_splits, standardized
from dltrain.errors import ConfigError, RunError, Terminated
from dltrain.runs import layout as runs
from dltrain.runs import lock as run_lock
from dltrain.runs import records
from dltrain.search.cv_summary import fold_entry, regression_figures, summarise
from dltrain.tracking.parent import tracked_parent
from dltrain.tracking.store import check_ready
from dltrain.train.fit import fit
from dltrain.train.signals import Signals

REFIT_DIR = "refit"


def fold_dir(parent: Path, index: int) -> Path:
    return parent / f"fold-{index}"


@dataclass
class CvResult:
    run_dir: Path  # the parent run directory
    record: dict[str, Any]  # cv.json's contents


@dataclass
class Plan:
    """What a cross-validation runs: its folds' configs and data, and where output goes."""

    fold_loaded: Loaded
    refit_loaded: Loaded | None
    data: Splits  # all the training data (no validation held out) and the test split
    folds: list[Fold]
    device: Device
    console: Console
    live: bool
    smoke: bool


def cross_validate(loaded: Loaded, *, folds: int, run_dir: Path | None, device: Device,
                   console: Console, live: bool, smoke: bool = False,
                   refit: bool = False) -> CvResult:
    """K fits on K folds of the config's training data, in one new parent run directory.

    Everything that can fail on the user's input (the folds, a config the folds or the refit
    cannot run) fails before the parent exists.
    """
    config = loaded.config
    check_ready(config)  # an MLflow server that does not answer: before the parent exists
    plan = make_plan(loaded, folds, refit, device, console, live, smoke)
    device_name = prepare_runtime(device, config.seed, config.training.deterministic,
                                  config.backend)
    check_model_takes(plan)
    parent = runs.new_run_dir(config, run_dir)  # made and locked: one writer per run
    try:
        runs.write_atomic(parent / runs.CONFIG_FILE, dump(config))
        record = {"folds": folds, "stratified": config.task_spec.classes, "smoke": smoke,
                  "refit": refit, "std": "sample standard deviation over the folds (ddof=1)",
                  "samples": len(plan.data.x_train), **data_marks(plan),
                  "per_fold": [], "refit_result": None}
        write_record(parent, record)
        runs.set_state(parent, "running", kind="cv")
        records.write(parent, records.Environment.of(runs.environment(device_name)))
        console.print(f"cross-validation directory: {parent}", highlight=False, soft_wrap=True)
        return run_folds(parent, record, plan)
    finally:
        run_lock.release(parent)


def resume_cv(parent: Path, *, device: Device, console: Console, live: bool,
              refit: bool = False) -> CvResult:
    """Finish a cross-validation: the folds cv.json records are kept, any other is run again
    from its start (an interrupted fold's folder is replaced), then the refit if asked.

    An interrupted fold is rerun, not resumed from its last epoch: `fit --resume` remakes the
    config's data, not the fold's, and a rerun fold starts as an uninterrupted one would (the
    same seed, initial weights and data order). It costs at most one fold's training.
    """
    if not (parent / runs.CV_FILE).is_file():
        what = runs.resumed_by(parent)
        hint = f" It is {what}." if what else ""
        raise RunError(f"{parent}: no cv.json, so it is not a cross-validation to resume.{hint} "
                       "Start one with: dltrain cv CONFIG --folds K")
    with run_lock.writing(parent):
        record = read_record(parent)
        loaded = load_config(parent / runs.CONFIG_FILE)
        logged_to = records.read_if_present(parent, records.Tracking)
        check_ready(loaded.config, logged_to.uri if logged_to else None)
        record["refit"] = bool(record.get("refit") or refit)
        plan = make_plan(loaded, record["folds"], record["refit"], device, console, live,
                         bool(record.get("smoke")))
        if data_marks(plan) != {key: record.get(key) for key in ("folds_sha256", "data")}:
            raise RunError(f"{parent}: the training data or its folds differ from those the "
                           "finished folds used (the dataset changed), so their results cannot "
                           "be combined. Start a new cross-validation with dltrain cv.")
        done = len(record["per_fold"])
        console.print(f"resuming cross-validation {parent}: {done} of {record['folds']} folds "
                      "completed", highlight=False, soft_wrap=True)
        write_record(parent, record)
        return run_folds(parent, record, plan)


def write_record(parent: Path, record: dict[str, Any]) -> None:
    records.write(parent, records.CrossValidation.of(record))


def read_record(parent: Path) -> dict[str, Any]:
    """cv.json as run_folds adds to it: RunError when it is not what dltrain writes, which a
    resume cannot go on from (a missing or non-JSON file is named as any run file is)."""
    path = parent / records.CrossValidation.FILE
    data = runs.read_json(path)
    try:
        record = records.parse(path, data, records.CrossValidation)
    except RunError:  # its own words would advise a fit, not a new cross-validation
        record = None
    if record is None or not (isinstance(record.folds, int) and isinstance(record.per_fold, list)
                              and all(isinstance(entry.get("fold"), int)
                                      for entry in record.per_fold)):
        raise RunError(f"{path}: not the cv.json dltrain writes; start a new cross-validation "
                       "with dltrain cv.")
    return record.as_json()


def make_plan(loaded: Loaded, folds: int, refit: bool, device: Device, console: Console,
              live: bool, smoke: bool) -> Plan:
    """The data (read once) and its folds, and the configs the folds and the refit run."""
    config = loaded.config
    # The folds divide all the training data: the config's own validation split is not made.
    # Read unstandardised: each fold is standardised by the rows it trains on (standardized).
    dataset = config.dataset.model_copy(update={"validation_split": 0.0, "standardize": False,
                                                "standardize_target": False})
    data = load_splits(dataset, config.seed, config.task_spec)
    made = make_folds(data.y_train, folds, config.seed, config.task_spec.classes)
    fold_loaded = variant(loaded, 1 / folds, "each fold validates on its held-out fold")
    refit_loaded = (variant(loaded, 0.0, "--refit trains on all the training data, none held "
                            "out for validation", " Change the config to monitor training "
                            "metrics (loss) or drop --refit.") if refit else None)
    return Plan(fold_loaded, refit_loaded, data, made, device, console, live, smoke)


def check_model_takes(plan: Plan) -> None:
    """The folds' model builds and takes the data, checked as fit checks it: a model or data
    the folds cannot run left a parent folder marked failed (fit leaves no run directory)."""
    from dltrain.model.build import build_model

    config = plan.fold_loaded.config
    model = build_model(config)
    # On a copy: check_fits_model flattens images for a flat input, which each fold does itself.
    probe = dataclasses.replace(plan.data, preparation=copy.copy(plan.data.preparation), notes=[])
    check_fits_model(probe, model.input_shape[1:], model.output_shape[-1], config.task_spec,
                     config.augmentation)


def variant(loaded: Loaded, validation_split: float, why: str, fix: str = "") -> Loaded:
    """The config with dataset.validation_split set, so val_* monitors match the data the run
    gets; refused (ConfigError) when the config cannot run so."""
    data = loaded.config.model_dump(mode="json")
    data["dataset"]["validation_split"] = validation_split
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        override, text = describe(exc.errors()[0], data, loaded.lines, loaded.origins)
        source = f"--set {override}" if override else loaded.source
        raise ConfigError(f"{source}: {why}, so {text}{fix}") from None
    return dataclasses.replace(loaded, config=config, notes=[])


def data_marks(plan: Plan) -> dict[str, Any]:
    """What must not change between a cross-validation's start and its resume."""
    return {"folds_sha256": folds_digest(plan.folds),
            "data": runs.fingerprint(plan.data.x_train)["sample_sha256"]}


def run_folds(parent: Path, record: dict[str, Any], plan: Plan) -> CvResult:
    """Run the folds cv.json does not record yet, then the refit; parent's run.json says how
    far it got (interrupted: resume with `dltrain cv --resume`)."""
    # The parent's MLflow run, the folds' runs nested in it, ends with the state run.json says
    # (which _run_folds sets before it ends). A parent run MLflow refused left nothing to end,
    # but the folder must not say "running" for ever.
    try:
        with tracked_parent(load_config(parent / runs.CONFIG_FILE).config, parent, "cv"):
            return _run_folds(parent, record, plan)
    except BaseException as exc:
        state = records.read_if_present(parent, records.RunState)
        if state is not None and state.state == "running":
            stopped = isinstance(exc, KeyboardInterrupt | Terminated)
            runs.set_state(parent, "interrupted" if stopped else "failed", kind="cv",
                           **({"folds_done": len(record["per_fold"])} if stopped else
                              {"error": f"{type(exc).__name__}: {exc}"}))
        raise


def _run_folds(parent: Path, record: dict[str, Any], plan: Plan) -> CvResult:
    console = plan.console
    try:
        runs.set_state(parent, "running", kind="cv")
        # Between folds too, SIGTERM stops like Ctrl-C: the parent is marked interrupted.
        with Signals().installed():
            for fold in plan.folds:
                if any(entry["fold"] == fold.index for entry in record["per_fold"]):
                    console.print(f"fold {fold.index}: completed earlier, kept", highlight=False)
                    continue
                console.print(f"[bold]fold-{fold.index}[/] ({fold.index + 1} of "
                              f"{len(plan.folds)})", highlight=False)
                record["per_fold"].append(run_fold(parent, fold, plan))
                record["per_fold"].sort(key=lambda entry: entry["fold"])
                record.update(summarise(record["per_fold"]))
                write_record(parent, record)
            if plan.refit_loaded is not None and record.get("refit_result") is None:
                record["refit_result"] = run_refit(parent, plan, plan.refit_loaded)
                write_record(parent, record)
    except (KeyboardInterrupt, Terminated):
        runs.set_state(parent, "interrupted", kind="cv", folds_done=len(record["per_fold"]))
        console.print(f"cross-validation interrupted with {len(record['per_fold'])} of "
                      f"{len(plan.folds)} folds completed. Resume with: dltrain cv --resume "
                      f"{parent}", highlight=False, soft_wrap=True)
        raise
    except BaseException as exc:
        runs.set_state(parent, "failed", kind="cv", error=f"{type(exc).__name__}: {exc}")
        raise
    runs.set_state(parent, "completed", kind="cv")
    return CvResult(parent, record)


def run_fold(parent: Path, fold: Fold, plan: Plan) -> dict[str, Any]:
    """One fold's fit in parent/fold-<i>, from its start (a folder left by an interrupted
    try is replaced), and its results for cv.json."""
    child = fold_dir(parent, fold.index)
    clear(child)
    splits = standardized(fold_splits(plan.data, fold), plan.fold_loaded.config.dataset)
    result = fit(plan.fold_loaded, run_dir=child, device=plan.device, console=plan.console,
                 live=plan.live, smoke=plan.smoke, splits=splits)
    counts = (validation_counts(plan.data.y_train, fold)
              if plan.fold_loaded.config.task_spec.classes else None)
    return fold_entry(fold.index, child, splits, plan.fold_loaded.config, result.metrics, counts)


def run_refit(parent: Path, plan: Plan, loaded: Loaded) -> dict[str, Any]:
    """One fit on all the training data, in parent/refit, tested on the test split."""
    child = parent / REFIT_DIR
    clear(child)
    plan.console.print("[bold]refit on all the training data[/]", highlight=False)
    whole = standardized(plan.data, loaded.config.dataset)
    metrics = fit(loaded, run_dir=child, device=plan.device, console=plan.console,
                  live=plan.live, smoke=plan.smoke, splits=whole).metrics
    test = (regression_figures(metrics["regression"]) if loaded.config.task_spec.numeric_targets
            else metrics["test"])  # a regression's in its targets' own units, as the folds'
    return {"run_dir": REFIT_DIR, "test": test, "epochs_run": metrics["epochs_run"],
            "train_samples": metrics["train_samples"], "train_seconds": metrics["train_seconds"]}


def clear(child: Path) -> None:
    """Remove what an unfinished try of this fold left, unless a process still writes it."""
    if not child.exists():
        return
    with run_lock.writing(child):  # refused, naming the holder, while another process writes
        shutil.rmtree(child)
