"""The learning-rate range test (Smith 2015, as fastai's lr_find and Lightning's Tuner.lr_find
run it): a fresh model from the config trains for a few hundred steps while its rate rises
exponentially, each step's loss is recorded, the test stops once the loss diverges, and a rate
is suggested from the curve. No run is read or written, and the config is not changed: the
plot goes where the caller says (see `default_plot`)."""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from dltrain.backend import Device, prepare_runtime, runtime_notes, use_backend
from dltrain.backend.distribution import place
from dltrain.backend.training_facts import augments_in_pipeline
from dltrain.config.backbone import backbone_of
from dltrain.config.load import Loaded
from dltrain.config.names import load_catalog
from dltrain.config.schema import Config
from dltrain.config.training_section import ScheduleConfig
from dltrain.data.prepare import Splits
from dltrain.errors import ConfigError, DataError, DltrainError
from dltrain.model.build import build_model
from dltrain.report.plots import lr_find_curve
from dltrain.report.tables import print_notes
from dltrain.runs.layout import inside_working_directory
from dltrain.train.fit import prepared_data

START, END, STEPS = 1e-7, 10.0, 200  # fastai's range (1e-7 to 10), over twice its 100 steps
MIN_STEPS = 20  # fewer points than this show no trend
DIVERGES = 4.0  # the running loss above 4x its lowest: diverged (fastai's and Lightning's rule)
# Or, once it fell by a quarter, it climbed back three quarters of the way up: a classifier
# whose units died settles near log(classes), where it started, never at 4x its lowest.
FELL = 0.75
RUNNING = 0.9  # the running loss that watches for divergence: an exponential average, ~10 steps
SMOOTHING = 0.05  # the plotted, searched curve: each loss averaged over a centred 5% of the steps
SPAN = 1.0  # decades over which the suggestion's fall is measured
RULE = "steepest descent of the smoothed loss over a decade, before its minimum"
PLOT_FILE = "lr_find.png"  # not a run file: the test writes no run


@dataclass
class RangeTest:
    """The test's curve, where it stopped and why, and the rate it suggests."""

    rates: list[float]
    losses: list[float]
    smoothed: list[float]
    suggested: float
    lowest: float  # the rate at the smoothed loss's minimum
    stopped: str
    plot: Path
    seconds: float
    key: str | None = "optimizer.learning_rate"  # the config key the suggestion is for, if any
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        use = {} if self.key is None else {"key": self.key, "set": self.set_option()}
        return {"suggested_learning_rate": self.suggested, "rule": RULE, **use,
                "plot": str(self.plot),
                "minimum_loss_learning_rate": self.lowest,
                "minimum_over_10": float(f"{self.lowest / 10:.2g}"), "stopped": self.stopped,
                "steps": len(self.rates), "seconds": round(self.seconds, 2), "notes": self.notes,
                "series": [{"learning_rate": rate, "loss": loss, "smoothed_loss": smooth}
                           for rate, loss, smooth in zip(self.rates, self.losses, self.smoothed,
                                                         strict=True)]}

    def set_option(self) -> str:
        """The --set that uses the suggestion (only when there is a key to set)."""
        return f"--set {self.key}={self.suggested:g}"


def check_range(start: float, end: float, steps: int) -> None:
    """Refuse a range the test cannot run: rates that are not positive and rising, or that span
    less than a decade (or more than a float holds), too few steps."""
    if not (math.isfinite(start) and math.isfinite(end) and 0 < start < end):
        raise DltrainError(f"lr-find needs 0 < --start < --end, both finite. Received: --start "
                           f"{start:g} --end {end:g}. Try --start {START:g} --end {END:g}.")
    if not (math.isfinite(end / start) and end / start >= 10):
        raise DltrainError(f"lr-find measures the loss's fall over a decade of rates: --end must "
                           f"be at least 10x --start (and the ratio a finite number). Received: "
                           f"--start {start:g} --end {end:g}, a ratio of {end / start:.3g}. Try "
                           f"--start {START:g} --end {END:g}.")
    if steps < MIN_STEPS:
        raise DltrainError(f"lr-find needs at least {MIN_STEPS} --steps to see the loss's trend. "
                           f"Received: {steps}. Try --steps {STEPS}.")


def default_plot(config: Config) -> Path:
    """<runs_dir>/lr_find/<name>/lr_find.png: beside the runs, never in a run's folder, and
    not listed by `dltrain runs` (which lists the folders holding a run.json)."""
    return config.output.runs_dir / "lr_find" / config.name / PLOT_FILE


def ramped(config: Config, start: float, end: float, steps: int) -> Config:
    """The config with its optimizer's rate rising from `start` to `end` over `steps` steps
    (Keras's ExponentialDecay with a rate above 1: the same on every backend, read inside the
    compiled step), one step per call so each step's loss is heard."""
    growth = (end / start) ** (1 / (steps - 1))
    schedule = ScheduleConfig(name="ExponentialDecay", decay_steps=1, decay_rate=growth)
    optimizer = config.optimizer.model_copy(update={"learning_rate": start, "schedule": schedule})
    training = config.training.model_copy(update={"steps_per_execution": 1})
    return config.model_copy(update={"optimizer": optimizer, "training": training})


def what_changes(config: Config) -> list[str]:
    """What the test trains differently from `dltrain fit`, for the user to weigh its answer."""
    notes = []
    if (schedule := config.optimizer.schedule) is not None:
        replaced = (f"the config's {schedule.name} schedule is replaced during the test by its "
                    "exponential ramp; ")
        key = suggestion_key(config)
        if key is None:
            notes.append(f"{replaced}{schedule.name} has no starting rate that one --set could "
                         "change (its rates are its values), so no line to use the suggestion "
                         "is printed: scale optimizer.schedule.values so that the first is about "
                         "the suggestion.")
        elif key == WARMUP_KEY:
            notes.append(f"{replaced}the suggestion is the rate its warm-up rises to "
                         "(warmup_target), from which it decays.")
        else:
            notes.append(f"{replaced}the suggestion is the schedule's starting rate.")
    if (backbone := backbone_of(config)) is not None and backbone.fine_tune is not None:
        notes.append("the test trains the first phase (the backbone frozen); fine_tune's own "
                     "learning_rate is not tested.")
    return notes


WARMUP_KEY = "optimizer.schedule.warmup_target"


def suggestion_key(config: Config) -> str | None:
    """The key that sets the rate the suggestion is for, as model.compile's make_learning_rate
    reads them: a warm-up's target (the peak, where the decay starts), else a schedule's own
    initial_learning_rate, else optimizer.learning_rate, which make_learning_rate passes only
    to a schedule that takes an initial_learning_rate. None: a schedule without one
    (PiecewiseConstantDecay: boundaries and values), which no single rate sets."""
    schedule = config.optimizer.schedule
    if schedule is None:
        return "optimizer.learning_rate"
    if "warmup_target" in schedule.kwargs:
        return WARMUP_KEY
    if "initial_learning_rate" in schedule.kwargs:
        return "optimizer.schedule.initial_learning_rate"
    arguments = load_catalog()["schedules"].get(schedule.name, {}).get("args", [])
    return "optimizer.learning_rate" if "initial_learning_rate" in arguments else None


def run_range_test(loaded: Loaded, *, start: float = START, end: float = END,
                   steps: int = STEPS, device: Device = "auto", plot: Path | None = None,
                   console: Console) -> RangeTest:
    """Train a fresh model from the config with rising rates; plot and suggest.

    Raises:
        DltrainError: a range it cannot run, a config or data it cannot train, a curve with
            no rate to suggest (it diverged at once, or the loss never fell).
    """
    check_range(start, end, steps)
    config = loaded.config
    if plot is None:
        inside_working_directory(config.output.runs_dir)
        plot = default_plot(config)
    clock = time.perf_counter()
    use_backend(config.backend, device)
    prepare_runtime(device, config.seed, config.training.deterministic, config.backend)
    test = ramped(config, start, end, steps)
    try:
        with place(config.distribution).scope():
            model = build_model(test)
        splits = prepared_data(test, model)
    except ConfigError as exc:
        raise loaded.locate(exc) from None
    check_enough_samples(splits, config)
    print_notes(console, [*runtime_notes(config.training.deterministic), *splits.notes])
    recorder = train_rising(model, splits, test, start, end, steps)
    smoothed = smooth(recorder.losses)
    title = f"{config.name}: learning-rate range test"
    plot.parent.mkdir(parents=True, exist_ok=True)
    try:
        suggested, lowest = suggest(recorder.rates, smoothed, recorder.stopped)
    except DltrainError as exc:  # the curve shows what went wrong
        lr_find_curve(recorder.rates, recorder.losses, smoothed, None, RULE, title, plot)
        raise DltrainError(f"{exc} The curve is in {plot}.") from None
    lr_find_curve(recorder.rates, recorder.losses, smoothed, suggested, RULE, title, plot)
    return RangeTest(recorder.rates, recorder.losses, smoothed, suggested, lowest,
                     recorder.stopped, plot, time.perf_counter() - clock,
                     suggestion_key(config), what_changes(config))


def check_enough_samples(splits: Splits, config: Config) -> None:
    """Every step compares the loss of one batch: the training split must fill one."""
    batch = config.training.batch_size
    if len(splits.x_train) < batch:
        raise DataError(f"lr-find compares the loss of whole batches of training.batch_size "
                        f"({batch}), but the training split holds {len(splits.x_train)} "
                        f"samples. Lower it (--set training.batch_size={len(splits.x_train)}) "
                        "or train on more data.")


def train_rising(model: Any, splits: Splits, test: Config, start: float, end: float,
                 steps: int) -> Any:
    """model.fit as `dltrain fit` feeds it (shuffled, augmented as the config says, in the
    pipeline or in the step), without validation, cycling over the training split until
    `steps` steps ran or the loss diverged; returns the recorder of each step."""
    from dltrain.model.augment import ReseedAugmentation, in_step
    from dltrain.train.loop import Fitting

    value_max = float(splits.x_train.max(initial=1.0))
    backend = test.backend
    trainer = model if augments_in_pipeline(backend) else in_step(model, test, value_max)
    reseed = [] if trainer is model else [ReseedAugmentation(test.seed)]
    batch = test.training.batch_size
    per_epoch = math.ceil(len(splits.x_train) / batch)
    recorder = step_recorder(start, end, steps, batch, len(splits.x_train))
    training_only = dataclasses.replace(splits, x_val=None, y_val=None)
    fitting = Fitting(training_only, test, 0, value_max if trainer is model else None,
                      value_max, [*reseed, recorder])
    fitting.fit(trainer, 0, math.ceil(steps / per_epoch))
    return recorder


def step_recorder(start: float, end: float, steps: int, batch: int, samples: int) -> Any:
    """A Keras callback that records each step's rate and loss and stops the fit at the end of
    the range or once the loss diverges (`stopped` says which)."""
    from dltrain.backend import keras_module

    growth = (end / start) ** (1 / (steps - 1))

    class StepRecorder(keras_module().callbacks.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.rates: list[float] = []
            self.losses: list[float] = []
            self.stopped = f"reached --end {end:g} without diverging"
            self.total = self.seen = 0.0  # this epoch's loss sum and samples (Keras's mean)
            self.average, self.best = 0.0, math.inf  # the running loss, before its bias correction
            self.first = math.inf  # the running loss over the first steps

        def on_train_batch_end(self, batch_index: int, logs: dict[str, Any] | None = None) -> None:
            if batch_index == 0:
                self.total = self.seen = 0.0
            # Keras logs the epoch's running mean, weighted by batch size: undo it.
            seen = min((batch_index + 1) * batch, samples)
            mean = float((logs or {}).get("loss", math.nan))
            loss = (mean * seen - self.total) / (seen - self.seen)
            self.total, self.seen = mean * seen, seen
            self.rates.append(start * growth ** len(self.rates))
            self.losses.append(loss)
            if self.diverged(loss):
                self.model.stop_training = True
            elif len(self.rates) >= steps:
                self.model.stop_training = True

        def diverged(self, loss: float) -> bool:
            rate = f"{self.rates[-1]:.3g}"
            if not math.isfinite(loss):
                self.stopped = f"the loss became NaN or infinite at {rate}"
                return True
            self.average = RUNNING * self.average + (1 - RUNNING) * loss
            running = self.average / (1 - RUNNING ** len(self.losses))  # fastai's debiasing
            self.best = min(self.best, running)
            if len(self.losses) == 5:
                self.first = running
            if len(self.losses) > 5 and running > DIVERGES * self.best:
                self.stopped = f"diverged at {rate} (running loss over {DIVERGES:g}x its lowest)"
                return True
            fall = self.first - self.best
            if self.best < FELL * self.first and running > self.best + FELL * fall:
                self.stopped = f"diverged at {rate} (running loss back near its start)"
                return True
            return False

    return StepRecorder()


def smooth(losses: list[float]) -> list[float]:
    """Each finite loss averaged over a centred window of about SMOOTHING of the steps (at least
    5): no lag, unlike a running average, so the curve's steepest point is where it happened."""
    values = np.asarray(losses, dtype=float)
    finite = values[np.isfinite(values)]
    half = max(2, round(len(values) * SMOOTHING / 2))
    out = []
    for index in range(len(finite)):
        window = finite[max(0, index - half):index + half + 1]
        out.append(float(window.mean()))
    return out + [math.nan] * (len(values) - len(finite))


def suggest(rates: list[float], smoothed: list[float], stopped: str) -> tuple[float, float]:
    """(the middle of the decade over which the smoothed loss falls most, before its minimum;
    the rate at the minimum), each to two significant digits. A fall measured over a decade,
    not from one step to the next, is not fooled by a bump of noise.

    Raises:
        DltrainError: the loss diverged before it fell, or never fell.
    """
    curve = np.asarray(smoothed, dtype=float)
    finite = int(np.isfinite(curve).sum())
    low = int(np.nanargmin(curve)) if finite else 0
    skip = max(1, finite // 20)  # the first steps' average is over half a window: noisier
    if low - skip < MIN_STEPS // 4:
        raise DltrainError(f"the loss did not fall before the test stopped ({stopped}), so no "
                           f"rate can be suggested. Start lower (e.g. --start "
                           f"{rates[0] / 100:g}), or check that the config trains (dltrain fit "
                           "--smoke).")
    if curve[low] > 0.98 * curve[0]:
        raise DltrainError(f"the loss did not fall between {rates[0]:g} and {rates[low]:.3g} "
                           f"({stopped}). Check that the config trains (dltrain fit --smoke), or "
                           "widen the range (--start, --end).")
    logs = np.log10(rates[:low + 1])
    # Steps in half a span; a shorter fall than a span is measured over all of it.
    half = max(1, min(round(SPAN / 2 / (logs[1] - logs[0])), (low - skip) // 2))
    index = np.arange(skip + half, low - half + 1)
    falls = (curve[index + half] - curve[index - half]) / (logs[index + half] - logs[index - half])
    steepest = int(index[np.argmin(falls)])
    return float(f"{rates[steepest]:.2g}"), float(f"{rates[low]:.2g}")
