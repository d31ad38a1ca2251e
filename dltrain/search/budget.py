"""The planned number of trials, across every process of a search: what counts against it,
and the retry of a trial whose process was stopped or died."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from dltrain.search import results
from dltrain.search.storage import Lock, fail_stale


def retry_interrupted(study: Any) -> None:
    """Enqueue the values of each interrupted trial not yet retried (Optuna's own way to
    retry a trial: RetryFailedTrialCallback), so no planned trial is lost to a Ctrl-C."""
    trials = study.get_trials(deepcopy=False)
    retried = {trial.user_attrs.get("retry_of") for trial in trials}
    for trial in trials:
        if results.interrupted(trial) and trial.number not in retried and trial.params:
            study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})


class Budget:
    """The planned number of trials across every process of the study.

    Counted: finished trials and running ones (an interrupted one is retried instead, and its
    retry counts once it runs). The lock is taken after each trial and before the first, and
    let go when the next trial has started (Optuna asks for it in between), so no two processes
    can both start the last trial: on a database server, wherever they run.
    """

    def __init__(self, lock: Lock, planned: int) -> None:
        self.lock, self.planned = lock, planned

    def acquire(self) -> None:
        self.lock.acquire()

    def release(self) -> None:
        self.lock.release()

    @contextmanager
    def held(self) -> Iterator[None]:
        self.acquire()
        try:
            yield
        finally:
            self.release()

    def reached(self, study: Any) -> bool:
        fail_stale(study)
        counted = [trial for trial in study.get_trials(deepcopy=False)
                   if trial.state.name != "WAITING" and not results.interrupted(trial)]
        return len(counted) >= self.planned

    def after_trial(self, study: Any, trial: Any) -> None:
        self.acquire()
        retry_interrupted(study)  # one another process left: Optuna runs waiting trials first
        if self.reached(study):
            study.stop()
