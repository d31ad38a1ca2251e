"""`dltrain cv`: K-fold cross-validation of a config, and its resume."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from dltrain.cli.options import ConfigBackendOpt, DeviceOpt, JsonOpt, SetOpt
from dltrain.cli.setup import ready_to_train, shows_live_progress
from dltrain.console import emit_json, for_results
from dltrain.errors import DltrainError

DEFAULT_FOLDS = 5


def cv(
    config: Annotated[Path | None, typer.Argument(
        help="The experiment's YAML config file (not with --resume).", show_default=False)]
    = None,
    folds: Annotated[int | None, typer.Option(
        help=f"How many folds of the training data (default {DEFAULT_FOLDS}).",
        show_default=False)] = None,
    set_: SetOpt = None,
    smoke: Annotated[bool, typer.Option(
        help="Each fold 1 epoch on a small stratified subset, as fit --smoke: for CI.")] = False,
    refit: Annotated[bool, typer.Option(
        help="Then train once on all the training data (child refit/) and test it.")] = False,
    run_dir: Annotated[Path | None, typer.Option(
        help="Put the cross-validation exactly here (default: runs/<name>-<timestamp>/).",
        show_default=False)] = None,
    resume: Annotated[Path | None, typer.Option(
        help="Finish this interrupted cross-validation: completed folds are kept.",
        show_default=False)] = None,
    device: DeviceOpt = "auto",
    backend: ConfigBackendOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Cross-validate: K fits on K folds of the training data; mean ± std of their metrics.

    The folds are stratified for classifiers and seeded; each fit is a run directory inside one
    parent, scored on the validation fold and on the test split.

    Example: dltrain cv configs/quickstart.yaml --folds 5 --refit

    Resume: dltrain cv --resume runs/quickstart-20260101-120000
    """
    from dltrain.config.load import shortcut_overrides

    if resume is not None and (config is not None or folds is not None or set_ or smoke
                               or run_dir is not None or backend is not None):
        raise DltrainError("--resume finishes the cross-validation with its own config and "
                           "folds; drop CONFIG, --folds, --set, --backend, --smoke and "
                           "--run-dir.")
    console = for_results(as_json)
    live = shows_live_progress(console)
    if resume is not None:
        from dltrain.search.cv import resume_cv

        result = resume_cv(resume, device=device, console=console, live=live,
                           refit=refit)
    elif config is None:
        raise DltrainError("cv needs a CONFIG file, or --resume PARENT_RUN_DIR.")
    else:
        loaded = ready_to_train(config, [*(set_ or []), *shortcut_overrides(backend=backend)],
                                device, smoke)
        from dltrain.search.cv import cross_validate

        result = cross_validate(loaded, folds=DEFAULT_FOLDS if folds is None else folds,
                                run_dir=run_dir, device=device, console=console,
                                live=live, smoke=smoke, refit=refit)
    from dltrain.report.crossval import print_cv

    print_cv(console, result.record, str(result.run_dir))
    if as_json:
        emit_json({"run_dir": str(result.run_dir), **result.record})
