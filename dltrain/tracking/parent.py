"""The MLflow run of a folder that holds runs: a cross-validation (its folds and refit nested
under it) or a search (its trials nested under it), with the summary the folder records."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from dltrain.config.schema import Config
from dltrain.runs import names, records
from dltrain.tracking.run import TrackedRun
from dltrain.tracking.store import tracked

# What a parent hands MLflow as it ends.
PARENT_FILES = (names.CV_FILE, names.TUNE_FILE, names.BEST_CONFIG, names.HISTORY_PLOT,
                names.IMPORTANCE_PLOT)


@contextmanager
def tracked_parent(config: Config, folder: Path, kind: str) -> Iterator[TrackedRun | None]:
    """Open (or continue) the folder's MLflow run for the block, in which its child runs nest;
    afterwards, its summary and files, and the status run.json then says (a search another
    process still runs stays running)."""
    if not tracked(config):
        yield None
        return
    run = TrackedRun.open(config, folder, kind)
    if run is None:  # nested in a tracked folder whose server is gone: untracked
        yield None
        return
    run.log_files([names.CONFIG_FILE])
    try:
        yield run
    finally:
        state = records.read_if_present(folder, records.RunState)
        if state is not None and state.state != "running":
            run.log_results(summary_metrics(folder))
            run.log_files(PARENT_FILES)
            run.end(state.state or "failed")


def summary_metrics(folder: Path) -> dict[str, Any]:
    """A cross-validation's mean and std of each metric (test_accuracy_mean, ...), or a
    search's best objective (best_val_loss), as numbers log_results takes."""
    found: dict[str, Any] = {}
    cv = records.read_if_present(folder, records.CrossValidation)
    if cv is not None:
        for section in ("validation", "test"):
            for metric, figures in (cv.as_json().get(section) or {}).items():
                found.update({f"{section}_{metric}_{what}": value
                              for what, value in figures.items() if value is not None})
    search = records.read_if_present(folder, records.Search)
    if search is not None and search.best and search.objective:
        found[f"best_{search.objective}"] = search.best.get("objective")
        found["trials_done"] = search.done
    return {key: value for key, value in found.items() if isinstance(value, int | float)}
