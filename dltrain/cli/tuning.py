"""`dltrain tune`: a hyperparameter search from the config's search section (Optuna)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from dltrain.backend.names import Device
from dltrain.cli.options import ConfigBackendOpt, DeviceOpt, JsonOpt, SetOpt
from dltrain.cli.setup import ready_to_train
from dltrain.console import emit_json, for_results
from dltrain.errors import DltrainError

if TYPE_CHECKING:  # for annotations only: `dltrain --help` imports none of them
    from dltrain.config.load import Loaded
    from dltrain.search.tune import TuneResult


def tune(
    config: Annotated[Path | None, typer.Argument(
        help="A YAML config with a search: section (optional with --resume).",
        show_default=False)] = None,
    trials: Annotated[int | None, typer.Option(
        min=1, help="How many trials (default: search.trials; grid: all combinations).",
        show_default=False)] = None,
    storage: Annotated[str | None, typer.Option(
        help="Optuna storage URL (postgresql://..., mysql://...) to share the study between "
             "machines (default: sqlite:///<search directory>/study.db).", show_default=False)]
    = None,
    smoke: Annotated[bool, typer.Option(
        help="Each trial 1 epoch on a small stratified subset (256 train / 128 test).")] = False,
    set_: SetOpt = None,
    run_dir: Annotated[Path | None, typer.Option(
        help="Put the search exactly here (default: runs/<name>-tune-<timestamp>/).",
        show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Continue the search in this directory after Ctrl-C, or join it from another "
             "process while it runs.", show_default=False)] = None,
    device: DeviceOpt = "auto",
    backend: ConfigBackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search the config's search: section with Optuna; each trial is a run in one directory.

    Example: dltrain tune configs/mnist_cnn_search.yaml --trials 8

    Resume or add a process: dltrain tune --resume runs/mnist_cnn-tune-20260101-120000
    """
    from dltrain.config.load import shortcut_overrides

    if (config is None) == (resume is None):
        raise DltrainError("tune needs a CONFIG file, or --resume SEARCH_DIR (not both).")
    if resume is not None and (smoke or set_ or run_dir is not None or backend is not None):
        raise DltrainError("--resume continues the search with its own config in its own "
                           "folder; drop --smoke, --set, --backend and --run-dir.")
    console = for_results(as_json)
    if config is not None:
        # --trials as search.trials while the config is read: random and TPE need a number.
        counted = [] if trials is None else [f"search.trials={trials}"]
        overrides = [*(set_ or []), *counted, *shortcut_overrides(backend=backend)]
        loaded = ready_to_train(config, overrides, device, smoke, check=_check_space)
        from dltrain.config.load import load_config
        from dltrain.search import tune as search

        # best.yaml keeps the config as written: the settings --smoke shrank go back.
        written = load_config(config, overrides).config if smoke else None
        result = search.start(loaded, run_dir=run_dir, storage=storage, trials=trials,
                              device=device, console=console, written=written)
    else:
        assert resume is not None
        result = _resume(resume, storage, trials, device, console)
    from dltrain.search.results import print_summary

    print_summary(console, result.document, result.parent)
    if as_json:
        emit_json(result.document)
    check_some_trial_completed(result.document)


def _check_space(loaded: Loaded) -> None:
    from dltrain.search.space import check_space

    check_space(loaded.config, loaded.source)  # before TensorFlow's seconds-long import


def _resume(resume: Path, storage: str | None, trials: int | None, device: Device,
            console: Console) -> TuneResult:
    from dltrain.backend import use_backend
    from dltrain.config.load import load_config
    from dltrain.runs.names import CONFIG_FILE
    from dltrain.search.results import search_state

    search_state(resume, storage)  # before TensorFlow's seconds-long import
    use_backend(load_config(resume / CONFIG_FILE).config.backend, device)
    from dltrain.search import tune as search  # imports Keras: only once the backend is chosen

    return search.resume(resume, storage=storage, trials=trials, device=device, console=console)


def check_some_trial_completed(document: dict) -> None:
    """A search whose every trial failed found nothing: exit 2 with the first reason (the
    same mistake, a value or data, usually fails them all), not 0 with a note."""
    trials = document.get("trials") or []
    if trials and all(trial["state"] == "failed" for trial in trials):
        first = next(trial for trial in trials if trial["state"] == "failed")
        raise DltrainError(f"every trial failed ({len(trials)}), so the search found nothing; "
                           f"trial {first['number']}: {first.get('error') or 'no reason kept'}")
