"""One trial of a search: the config with the trial's values, fitted by the ordinary `fit` into
a child run directory, its objective reported to Optuna after each epoch for pruning."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from dltrain.backend import Device, keras_module
from dltrain.config.load import Loaded
from dltrain.config.schema import Config
from dltrain.config.search_section import SearchConfig
from dltrain.data.prepare import Splits, load_splits
from dltrain.errors import ConfigError, DltrainError, RunError, Terminated
from dltrain.runs import layout as runs
from dltrain.search.space import applied, suggest
from dltrain.tracking.run import mark_pruned
from dltrain.train.fit import fit

Callback = keras_module().callbacks.Callback


def trial_dir(number: int) -> str:
    return f"trial-{number:04d}"


def objective_of(config: Config) -> str:
    """The searched metric: search.objective, else the checkpoint's monitor."""
    chosen = config.search.objective if config.search is not None else None
    return chosen or config.checkpoint_monitor


def direction(config: Config, splits: Splits) -> Literal["maximize", "minimize"]:
    """maximize or minimize, as Keras's MonitorCallback decides it for the objective (the
    metric's own `_direction`; loss goes down): the rule BestCheckpoint follows. Keras knows
    a compiled metric only once it is built, so the model scores a few samples first."""
    from dltrain.data.pipeline import pipeline
    from dltrain.data.prepare import check_fits_model
    from dltrain.model.build import build_model

    objective = objective_of(config)
    model = build_model(config)
    # As fit checks it: data the model cannot take was an internal error here, not exit 2.
    check_fits_model(splits, model.input_shape[1:], model.output_shape[-1], config.task_spec,
                     config.augmentation)
    model.evaluate(pipeline(splits.x_train[:8], splits.y_train[:8], 8), verbose=0)
    # never written: ModelCheckpoint only lends its MonitorCallback rule
    monitor = keras_module().callbacks.ModelCheckpoint("unused.keras", monitor=objective)
    monitor.set_model(model)
    try:
        monitor._set_monitor_op()
    except ValueError:
        raise ConfigError(f"search.objective must name a metric whose direction Keras knows (loss "
                          f"or a built-in metric, val_ for validation). Received: '{objective}'.") \
            from None
    return "maximize" if bool(monitor.monitor_op(1.0, 0.0)) else "minimize"


class ReportEpochs(Callback):  # type: ignore[misc,valid-type]
    """Report the objective to Optuna after each epoch; when its pruner says so, stop training
    (as EarlyStopping does) so the trial's run still ends with all its files."""

    def __init__(self, trial: Any, objective: str, after_epoch: int) -> None:
        super().__init__()
        self.trial, self.objective, self.after_epoch = trial, objective, after_epoch
        self.pruned_at: int | None = None

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        value = (logs or {}).get(self.objective)
        if value is None or not math.isfinite(float(value)):
            return
        self.trial.report(float(value), epoch + 1)
        if epoch + 1 >= self.after_epoch and self.trial.should_prune():
            self.pruned_at = epoch + 1
            self.model.stop_training = True


@dataclass
class Runner:
    """Optuna's objective function: one trial per call, each a child run of `parent`."""

    base: dict[str, Any]  # the search's config as a mapping, search section included
    source: str
    search: SearchConfig
    objective: str
    device: Device
    console: Console
    parent: Path | None = None
    goal: Literal["maximize", "minimize"] = "maximize"
    started: Any = None  # called as each trial starts (the budget's lock lets go then)
    current: int | None = None
    data: dict[str, Splits] = field(default_factory=dict)
    device_name: str = ""  # the device prepare_runtime chose, for environment.json

    def splits(self, config: Config) -> Splits:
        """The data for this config, read once per dataset section, seed and kind of loss (the
        keys a search may change that change the data)."""
        key = json.dumps([config.dataset.model_dump(mode="json"), config.seed,
                          config.task_spec.kind])
        if key not in self.data:
            self.data[key] = load_splits(config.dataset, config.seed, config.task_spec, False)
        return self.data[key]

    def __call__(self, trial: Any) -> float:
        self.current = trial.number
        # Its process named before the budget's lock lets go: a process that takes the lock
        # next never sees this trial without one (results.interrupted would retry its values).
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        if self.started is not None:
            self.started()
        values = {key: suggest(trial, key, space) for key, space in self.search.parameters.items()}
        shown = ", ".join(f"{key}={value}" for key, value in values.items())
        self.console.print(f"trial {trial.number}: {shown}", highlight=False, soft_wrap=True)
        clock = time.perf_counter()
        report = ReportEpochs(trial, self.objective,
                              self.search.prune.after_epoch if self.search.prune else 1)
        try:
            loaded = applied(self.base, self.source, values)
            return self._fit(trial, loaded, report)
        except DltrainError as exc:
            trial.set_user_attr("error", str(exc))
            self.console.print(f"trial {trial.number} failed: {exc}", style="red", markup=False)
            raise
        except (KeyboardInterrupt, Terminated):
            trial.set_user_attr("interrupted", True)
            raise
        finally:
            trial.set_user_attr("seconds", round(time.perf_counter() - clock, 3))

    def _fit(self, trial: Any, loaded: Loaded, report: ReportEpochs) -> float:
        import optuna

        assert self.parent is not None  # set before the study starts
        path = self.parent / trial_dir(trial.number)
        trial.set_user_attr("run_dir", str(path))
        result = fit(loaded, run_dir=path, device=self.device, console=self.console, live=False,
                     splits=self.splits(loaded.config), callbacks=[report])
        rows = runs.read_history(result.run_dir / runs.HISTORY_FILE)
        scores = [row[self.objective] for row in rows
                  if math.isfinite(row.get(self.objective, math.nan))]
        if not scores:
            raise RunError(f"{result.run_dir}: no epoch logged a finite {self.objective}.")
        best = max(scores) if self.goal == "maximize" else min(scores)
        trial.set_user_attr("objective", best)
        trial.set_user_attr("epochs", len(rows))
        trial.set_user_attr("test", result.metrics.get("test") or {})
        if report.pruned_at is not None:
            mark_pruned(loaded.config, path, report.pruned_at)  # its MLflow run: KILLED
            self.console.print(f"trial {trial.number} pruned after epoch {report.pruned_at}: its "
                               f"{self.objective} was worse than the median of earlier trials "
                               "there.", highlight=False, soft_wrap=True)
            raise optuna.TrialPruned(f"pruned after epoch {report.pruned_at}")
        return best
