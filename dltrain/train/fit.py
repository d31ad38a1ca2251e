"""Fit: check everything the user gave, write a new run directory, train it (train.loop)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from dltrain.backend import Device, prepare_runtime, runtime_notes, use_backend
from dltrain.backend.distribution import check_even_batches, current, place
from dltrain.backend.training_facts import VERSION_KEYS
from dltrain.config.load import Loaded, dump
from dltrain.config.schema import Config
from dltrain.data.prepare import Splits, check_fits_model, load_splits
from dltrain.errors import ConfigError, Terminated
from dltrain.model.backbone import backbone_preprocessing, check_backbone_inputs
from dltrain.model.build import build_model
from dltrain.report.tables import print_notes
from dltrain.runs import layout as runs
from dltrain.runs import lock as run_lock
from dltrain.runs import records
from dltrain.train.loop import _run
from dltrain.train.signals import received_early, recognised
from dltrain.train.start import Start
from dltrain.train.timing import Background, Clock


@dataclass
class FitResult:
    run_dir: Path
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def fit(loaded: Loaded, *, run_dir: Path | None, device: Device, console: Console,
        live: bool, smoke: bool = False, synthetic: bool = False,
        splits: Splits | None = None, callbacks: list[Any] | None = None,
        pictures: bool = True) -> FitResult:
    """Everything that can fail on the user's input fails before the run directory exists.

    `splits`, when given, is data already loaded for this config (the folds of a
    cross-validation, the trials of a search): used as it is instead of reading the dataset again.
    `callbacks` are Keras callbacks added after dltrain's own (a search reports each epoch).
    `pictures=False` draws no plots into the run (a run that is thrown away).
    The command that calls it checks its MLflow server first (tracking.store.check_ready):
    once, not for each fold or trial, which go on untracked when it goes away.
    """
    config = loaded.config
    clock = Clock.for_command()
    use_backend(config.backend, device)  # first: a reader may ask which backend will run
    # The data is read while the backend starts and the model is built (seconds on a GPU).
    reading = None if splits is not None else Background(
        lambda: load_splits(config.dataset, config.seed, config.task_spec, synthetic))
    device_name = prepare_runtime(device, config.seed, config.training.deterministic,
                                  config.backend)
    clock.lap("start")
    try:
        placement = place(config.distribution)
        with placement.scope():
            start = Start(build_model(config), clock=clock)
    except ConfigError as exc:
        raise loaded.locate(exc) from None
    clock.lap("build")
    try:
        splits = prepared_data(config, start.model, synthetic,
                               splits if reading is None else reading.result())
    except ConfigError as exc:  # the loss against the data: point at the loss's line
        raise loaded.locate(exc) from None
    clock.lap("data")
    print_notes(console, [*runtime_notes(config.training.deterministic), *splits.notes])
    # Several processes: only process 0 writes the run; the others run the very same code into
    # a scratch folder, removed at the end, so no step of theirs can differ.
    path = runs.new_run_dir(config, run_dir if placement.writes else runs.scratch_dir())
    try:
        # A signal handed back as another error (from native code: environment.json's versions)
        # is the interruption here too, or the run stayed 'running' (_run has its own).
        with recognised(received_early):
            # config.yaml, then run.json: from then on the folder is a run that `dltrain runs`
            # lists and `fit --resume` can start or finish; before, it holds nothing to keep.
            runs.write_atomic(path / runs.CONFIG_FILE, dump(config))
            runs.set_state(path, "running")
            write_run_files(path, config, splits, device_name)
        console.print(f"run directory: {path}" if placement.writes else
                      f"process {placement.process_id}: process 0 writes the run directory",
                      highlight=False, soft_wrap=True)
        start.smoke, start.pictures = smoke, pictures
        start.callbacks = list(callbacks or [])
        return FitResult(path, _run(start, splits, config, path, console, live), loaded.notes)
    except (KeyboardInterrupt, Terminated):
        stopped_before_training(path, console)
        raise
    finally:
        run_lock.release(path)
        if not placement.writes:
            runs.remove_scratch(path)


def stopped_before_training(path: Path, console: Console) -> None:
    """A signal while the run's files were written, before training's handler took over: the
    run is interrupted with no epoch, not left 'running' (_run marks the runs it stops)."""
    if (path / runs.CONFIG_FILE).is_file() and (
            (state := records.read_if_present(path, records.RunState)) is None
            or state.state == "running"):
        runs.set_state(path, "interrupted", epochs_done=0)
        console.print(f"interrupted before training; {path} keeps its config. Resume with: "
                      f"{runs.resume_command(path)}", highlight=False, soft_wrap=True)


def write_run_files(path: Path, config: Config, splits: Splits, device_name: str,
                    missing_only: bool = False) -> None:
    """What a run directory holds besides its config before training: environment, manifest,
    preparation (with `missing_only`, those a kill at its start left unwritten)."""
    def wanted(kind: type[records.Record]) -> bool:
        return not (missing_only and (path / kind.FILE).is_file())

    if wanted(records.Environment):
        records.write(path, records.Environment.of({
            **runs.environment(device_name), "steps_per_execution": config.steps_per_execution()}))
    if wanted(records.Manifest):
        write_manifest(path, dump(config), config, splits, device_name)
    if wanted(records.Preprocessing):
        records.write(path, records.Preprocessing.of({
            **splits.preparation.to_json(), "class_names": splits.class_names,
            "num_classes": splits.num_classes, "input_shape": list(config.model.input_shape),
            **backbone_preprocessing(config)}))


def write_manifest(path: Path, text: str, config: Config, splits: Splits,
                   device_name: str) -> None:
    records.write(path, records.Manifest.of({
        **runs.manifest(text, config.seed, {"x_train": splits.x_train, "y_train": splits.y_train,
                                            "x_val": splits.x_val, "x_test": splits.x_test,
                                            "y_test": splits.y_test}),
        "versions": {key: value for key, value in runs.environment(device_name).items()
                     if key in VERSION_KEYS},
        **({"synthetic": True} if splits.synthetic else {})}))


def prepared_data(config: Config, model: Any, synthetic: bool = False,
                  loaded: Splits | None = None) -> Splits:
    splits = loaded or load_splits(config.dataset, config.seed, config.task_spec, synthetic)
    check_fits_model(splits, model.input_shape[1:], model.output_shape[-1], config.task_spec,
                     config.augmentation)
    check_backbone_inputs(config, splits)
    check_even_batches(current(), config.training.batch_size, {
        "training": len(splits.x_train), "test": len(splits.x_test),
        **({} if splits.x_val is None else {"validation": len(splits.x_val)})})
    return splits


