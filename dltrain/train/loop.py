"""The training loop of a prepared run: model.fit with the run's callbacks, then its final files.

The run's writers hear what happens on one event stream (train.events); train.wiring chooses
them. model.fit itself is called in one place: `Fitting.fit`.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console

from dltrain.backend.distribution import score_alone
from dltrain.backend.training_facts import (
    augments_in_pipeline,
    repeats_datasets,
    reports_compilations,
)
from dltrain.config.schema import Config
from dltrain.data.pipeline import pipeline
from dltrain.data.prepare import Splits
from dltrain.errors import RunError, Terminated
from dltrain.report.evaluate import load_model, score
from dltrain.report.tables import print_notes
from dltrain.runs import layout as runs
from dltrain.runs import records
from dltrain.train.events import Failed, Finished, Interrupted, Started, Stream, Trained
from dltrain.train.signals import Signals, received_early, recognised
from dltrain.train.start import Start
from dltrain.train.timing import compile_note, compiled_note

if TYPE_CHECKING:  # wiring's subscribers subclass Keras's callbacks: imported once a backend is chosen
    from dltrain.train.wiring import Wired


def _run(start: Start, splits: Splits, config: Config, path: Path, console: Console,
         live: bool) -> dict[str, Any]:
    """Train with the run marked running; interrupted or failed if it does not complete."""
    from dltrain.train.wiring import run_subscribers

    stream = Stream(run_subscribers(path, console, config, start))
    try:
        with recognised(received_early):  # a signal handed back as another error: interrupted
            stream.emit(Started(path, start.epoch, config.training.epochs))
        with Signals().installed() as signals:
            metrics = _train(start, splits, config, path, console, live, stream, signals)
    except (KeyboardInterrupt, Terminated):
        stream.emit(Interrupted(start.kept, start.trained))
        raise
    except BaseException as exc:
        stream.emit(Failed(f"{type(exc).__name__}: {exc}", start.trained))
        raise
    stream.emit(Finished(metrics))
    return metrics


@dataclass
class Fitting:
    """What model.fit needs across a run's phases (a fine-tuned run has two): the data and
    the callbacks, the training data augmented here when `augment_to` gives its value range."""

    splits: Splits
    config: Config
    first: int
    augment_to: float | None
    value_max: float
    callbacks: list[Any]
    inputs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.inputs = fit_inputs(self.splits, self.config, self.first, self.augment_to)

    def fit(self, model: Any, first: int, last: int) -> None:
        """model.fit from epoch `first` to `last`, the data's own callbacks first."""
        inputs = (self.inputs if first == self.first
                  else fit_inputs(self.splits, self.config, first, self.augment_to))
        data = {key: value for key, value in inputs.items() if key != "callbacks"}
        model.fit(**data, epochs=last, initial_epoch=first, verbose=0, shuffle=False,
                  callbacks=[*inputs["callbacks"], *self.callbacks])

    def rewrap(self, model: Any) -> Any:
        """The trainer around a recompiled model (the augmentation in the step, JAX and torch)."""
        from dltrain.model.augment import in_step

        return model if self.augment_to is not None else in_step(model, self.config,
                                                                  self.value_max)


def _train(start: Start, splits: Splits, config: Config, path: Path, console: Console,
           live: bool, stream: Stream, signals: Signals) -> dict[str, Any]:
    from dltrain.model.augment import ReseedAugmentation, in_step
    from dltrain.train.finetune import fit_in_phases
    from dltrain.train.nan_check import NonFiniteLoss
    from dltrain.train.wiring import wire

    training = config.training
    value_max = float(splits.x_train.max(initial=1.0))
    trainer = (start.model if augments_in_pipeline(config.backend)
               else in_step(start.model, config, value_max))
    # In the training step, the augmentation's seed state starts each epoch from (seed, epoch).
    reseed = [] if trainer is start.model else [ReseedAugmentation(config.seed)]
    steps = math.ceil(len(splits.x_train) / training.batch_size)
    wired = wire(stream, config, path, console, live, start, steps, signals)
    fitting = Fitting(splits, config, start.epoch, value_max if trainer is start.model else None,
                      value_max, [*reseed, *wired.callbacks])
    loss_before = train_loss(start.model, splits, training.batch_size) if start.smoke else None
    start.clock.lap("setup")  # the run's files, the callbacks, the input pipeline
    started = time.perf_counter()
    diverged = False
    if start.trained is None and start.epoch < training.epochs:  # else a resume only finishes
        try:
            trainer = fit_in_phases(trainer, config, fitting.fit, start.epoch,
                                    lambda text: print_notes(console, [text]), fitting.rewrap)
        except NonFiniteLoss:
            diverged = True
        finally:
            wired.last.close()  # the last epoch's checkpoint is in place before anything reads it
    train_seconds = time.perf_counter() - started
    start.clock.lap("train")
    check_finite(start, config, path, console, wired.history.rows, diverged)
    start.trained = len(wired.history.rows)
    stream.emit(Trained(start.trained, start.epoch))
    return final_files(start, splits, config, path, console, wired, trainer,
                       train_seconds, loss_before)


def check_finite(start: Start, config: Config, path: Path, console: Console,
                 rows: list[dict[str, float]], diverged: bool) -> None:
    """The first epoch's note on compiling; a RunError if the loss became NaN or infinite."""
    if not reports_compilations(config.backend):  # JAX's own account comes at the end
        print_notes(console, compile_note(rows[start.epoch:]))
    if diverged or (rows and not all(math.isfinite(v) for v in rows[-1].values())):
        if (compiled := start.clock.compilations()) is not None:  # no end to print it at
            print_notes(console, [compiled_note(compiled)])
        raise RunError("the loss became NaN or infinite; training stopped. Try a lower "
                       "optimizer.learning_rate, optimizer.clipnorm, or check dataset.rescale. "
                       + kept_after_divergence(path, start.kept, rows))


def final_files(start: Start, splits: Splits, config: Config, path: Path, console: Console,
                wired: Wired, trainer: Any, train_seconds: float,
                loss_before: float | None) -> dict[str, Any]:
    """model.keras, the learning curves, the test scores and metrics.json, once training is
    over."""
    history, checkpoint = wired.history, wired.checkpoint
    runs.save_model(start.model, path / runs.MODEL_FILE)
    start.clock.lap("model_file")
    from dltrain.report.plots import learning_curves

    if start.pictures:
        learning_curves(history.rows, checkpoint.best_epoch, checkpoint.monitor,
                        f"{config.name}: learning curves", path / runs.CURVES_FILE,
                        units=curve_units(splits))
    start.clock.lap("curves")
    if score_alone():  # several processes: each scores the saved model on its own devices
        start.model = trainer = load_model(path / runs.MODEL_FILE)
    # The trainer scores as the model does (its augmentation runs in training calls only), with
    # the test step the validation compiled: one compilation fewer on JAX and torch.
    scored = score(trainer, splits, config, path if start.pictures else None,
                   f"{config.name}: final model on the test split")
    start.clock.lap("score")
    if checkpoint.best_epoch is None and start.history:  # no epoch trained: weigh the run's own
        checkpoint.set_model(start.model)
        checkpoint.settle()
    epochs_now = len(history.rows) - start.epoch
    metrics = {
        **scored,
        "epochs_run": len(history.rows),
        "best_epoch": checkpoint.best_epoch,
        "resumed_at_epoch": start.epoch or None,
        "train_samples": len(splits.x_train),
        "validation_samples": 0 if splits.x_val is None else len(splits.x_val),
        "train_seconds": round(train_seconds, 3),
        # Every session's epochs, a resumed run's too (train_seconds: this command's only).
        "train_seconds_total": round(sum(row.get("seconds") or 0.0 for row in history.rows), 3),
        "samples_per_second": (round(len(splits.x_train) * epochs_now / train_seconds, 1)
                               if epochs_now else None),
        "final_epoch": history.rows[-1] if history.rows else {},
        **({"synthetic": True} if splits.synthetic else {}),
    }
    if loss_before is not None:
        after = train_loss(start.model, splits, config.training.batch_size)
        metrics["smoke"] = {"loss_before": loss_before, "loss_after": after,
                            "passed": math.isfinite(after) and after < loss_before}
        start.clock.lap("smoke")
    metrics["phase_seconds"] = start.clock.phases()
    compiled = start.clock.compilations()
    if compiled is not None:
        metrics["compilation"] = dataclasses.asdict(compiled)
        print_notes(console, [compiled_note(compiled)])
    records.write(path, records.Metrics.of(metrics))
    return metrics


def curve_units(splits: Splits) -> str | None:
    """What the learning curves are measured on, where not the data as given: a regression
    trained on standardised targets has its losses and metrics in their units (an MAE of 0.3
    is 0.3 standard deviations), the test scores in the targets' own."""
    return "on standardised targets" if splits.preparation.target_mean is not None else None


def kept_after_divergence(path: Path, kept: int, rows: list[dict[str, float]]) -> str:
    """What a diverged run keeps, by the files that exist, and which epoch stopped: its row in
    history.csv holds the figures it stopped at where Keras ended the epoch (TensorFlow), none
    where the NaN check raised at the batch (JAX, torch)."""
    last = rows[-1] if rows else {}
    if last and not all(math.isfinite(float(value)) for value in last.values()):
        epoch = int(last["epoch"])
        recorded = f"{runs.HISTORY_FILE}'s row {epoch} holds its figures up to then"
    else:
        epoch, recorded = kept + 1, f"{runs.HISTORY_FILE} has no row for it"
    stopped = f"Epoch {epoch} stopped at the non-finite loss; {recorded}. "
    if kept == 0:
        return stopped + ("No epoch completed, so no checkpoint was kept; start the run again "
                          "with dltrain fit once the config is changed.")
    best = (f" and the best one in {path / runs.BEST_FILE}" if (path / runs.BEST_FILE).is_file()
            else "")
    return stopped + f"The last good epoch ({kept}) is kept in {path / runs.LAST_FILE}{best}."


def fit_inputs(splits: Splits, config: Config, epoch: int,
               augment_to: float | None) -> dict[str, Any]:
    """model.fit's data arguments: shuffled training data and the validation data, the training
    data augmented here when `augment_to` gives its value range (None: the model augments),
    and the callbacks the data needs (`callbacks`). Each epoch's order and draws are functions
    of (seed, epoch), so a run resumed at `epoch` trains on what the uninterrupted run did.

    Endless datasets with steps per epoch keep one iterator for the whole fit (see pipeline).
    Keras runs whole executions, so with steps_per_execution > 1 an endless dataset would shift
    the epochs' boundaries: then each epoch gets its own iterator, told its epoch by a clock.
    """
    from dltrain.data.pipeline import epoch_clock
    from dltrain.model.augment import make_augmenter

    training = config.training
    batch = training.batch_size
    repeat = config.steps_per_execution() == 1 and repeats_datasets(config.backend)
    augmenter = (None if augment_to is None
                 else make_augmenter(config.augmentation, config.seed, value_max=augment_to))
    clock = epoch_clock(epoch)
    inputs: dict[str, Any] = {"x": pipeline(
        splits.x_train, splits.y_train, batch, shuffle=training.shuffle, seed=config.seed,
        augmenter=augmenter, repeat=repeat, first_epoch=epoch, clock=clock), "callbacks": [clock]}
    if splits.validation is not None:
        inputs["validation_data"] = pipeline(*splits.validation, batch, repeat=repeat)
    if repeat:
        inputs["steps_per_epoch"] = math.ceil(len(splits.x_train) / batch)
        if splits.x_val is not None:
            inputs["validation_steps"] = math.ceil(len(splits.x_val) / batch)
    return inputs


def train_loss(model: Any, splits: Splits, batch_size: int) -> float:
    """The loss on the training data as it stands, without augmentation or dropout."""
    logs = model.evaluate(pipeline(splits.x_train, splits.y_train, batch_size), verbose=0,
                          return_dict=True)
    return float(logs["loss"])
