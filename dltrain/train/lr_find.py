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
# Or, once it fell (by a quarter, for a loss above 0), it climbed back three quarters of the way
# up: a classifier whose units died settles near log(classes), where it started, never at 4x its
# lowest; a loss below 0 (cosine_similarity) has no 4x.
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
    read_back: tuple[int, float] = (0, math.nan)  # the optimizer's step count and rate at the end

    def to_json(self) -> dict[str, Any]:
        use = {} if self.key is None else {"key": self.key, "set": self.set_option()}
        return {"suggested_learning_rate": self.suggested, "rule": RULE, **use,
                "plot": str(self.plot),
                "minimum_loss_learning_rate": self.lowest,
                "minimum_over_10": float(f"{self.lowest / 10:.2g}"), "stopped": self.stopped,
                "steps": len(self.rates), "seconds": round(self.seconds, 2), "notes": self.notes,
                "optimizer": {"steps": self.read_back[0], "learning_rate": self.read_back[1]},
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
    log = train_rising(model, splits, test, start, end, steps)
    read_back = check_ramp_reached(log.rates, log.growth, log.read_back)
    smoothed = smooth(log.losses)
    title = f"{config.name}: learning-rate range test"
    plot.parent.mkdir(parents=True, exist_ok=True)
    try:
        suggested, lowest = suggest(log.rates, smoothed, log.stopped)
    except DltrainError as exc:  # the curve shows what went wrong
        lr_find_curve(log.rates, log.losses, smoothed, None, RULE, title, plot)
        raise DltrainError(f"{exc} The curve is in {plot}.") from None
    lr_find_curve(log.rates, log.losses, smoothed, suggested, RULE, title, plot)
    return RangeTest(log.rates, log.losses, smoothed, suggested, lowest,
                     log.stopped, plot, time.perf_counter() - clock,
                     suggestion_key(config), what_changes(config), read_back)


def check_ramp_reached(rates: list[float], growth: float,
                       read_back: tuple[int, float] | None) -> tuple[int, float]:
    """The optimizer took one step per recorded loss and its rate is now the next on the ramp
    (Keras's learning_rate is the schedule at its step count): else the series is not the
    rates the model trained at, and the curve would be a lie.

    Returns the read-back step count and rate.

    Raises:
        RuntimeError: it is not (dltrain's bug: the CLI reports it as an internal error).
    """
    expected = (len(rates), rates[-1] * growth if rates else math.nan)
    if read_back is None or read_back[0] != expected[0] or not math.isclose(
            read_back[1], expected[1], rel_tol=1e-3):
        raise RuntimeError(f"lr-find's ramp did not reach the optimizer: its step count and "
                           f"rate are {read_back}, not {expected}.")
    return read_back


def check_enough_samples(splits: Splits, config: Config) -> None:
    """Every step compares the loss of one batch: the training split must fill one."""
    batch = config.training.batch_size
    if len(splits.x_train) < batch:
        raise DataError(f"lr-find compares the loss of whole batches of training.batch_size "
                        f"({batch}), but the training split holds {len(splits.x_train)} "
                        f"samples. Lower it (--set training.batch_size={len(splits.x_train)}) "
                        "or train on more data.")


def train_rising(model: Any, splits: Splits, test: Config, start: float, end: float,
                 steps: int) -> StepLog:
    """model.fit as `dltrain fit` feeds it (shuffled, augmented as the config says, in the
    pipeline or in the step), without validation, cycling over the training split until
    `steps` steps ran or the loss diverged; returns the log of each step."""
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
    return recorder.log


def step_recorder(start: float, end: float, steps: int, batch: int, samples: int) -> Any:
    """A Keras callback that feeds each step's logs to a StepLog (its `log`), stops the fit when
    the log says so, and at the end reads back the optimizer's step count and rate into it."""
    from dltrain.backend import keras_module

    class StepRecorder(keras_module().callbacks.Callback):  # type: ignore[misc,name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.log = StepLog(start, end, steps, batch, samples)

        def on_train_batch_end(self, batch_index: int, logs: dict[str, Any] | None = None) -> None:
            if self.log.record(batch_index, logs or {}):
                self.model.stop_training = True

        def on_train_end(self, logs: dict[str, Any] | None = None) -> None:
            optimizer = self.model.optimizer  # on JAX, reading self.model syncs its state
            self.log.read_back = (int(optimizer.iterations), float(optimizer.learning_rate))

    return StepRecorder()


class StepLog:
    """Each step's rate and loss, until the end of the range or the loss diverged (`stopped`
    says which); `read_back`: the optimizer's step count and rate at the end, the proof that
    the ramp reached it."""

    def __init__(self, start: float, end: float, steps: int, batch: int, samples: int) -> None:
        self.start, self.steps, self.batch, self.samples = start, steps, batch, samples
        self.growth = (end / start) ** (1 / (steps - 1))
        self.rates: list[float] = []
        self.losses: list[float] = []
        self.stopped = f"reached --end {end:g} without diverging"
        self.total = self.seen = 0.0  # this epoch's loss sum and samples (Keras's mean)
        self.watch = DivergenceWatch()
        self.read_back: tuple[int, float] | None = None

    def record(self, batch_index: int, logs: dict[str, Any]) -> bool:
        """Record a step from Keras's logs; True: stop the fit."""
        if batch_index == 0:
            self.total = self.seen = 0.0
        # Keras logs the epoch's running mean, weighted by batch size: undo it.
        seen = min((batch_index + 1) * self.batch, self.samples)
        mean = float(logs.get("loss", math.nan))
        loss = (mean * seen - self.total) / (seen - self.seen)
        self.total, self.seen = mean * seen, seen
        self.rates.append(self.start * self.growth ** len(self.rates))
        self.losses.append(loss)
        if (why := self.watch.diverged(loss)) is not None:
            self.stopped = why.format(rate=f"{self.rates[-1]:.3g}")
            return True
        return len(self.rates) >= self.steps


NOISE = 2.0  # a fall counts past twice the mean step-to-step change of the first NOISE_STEPS
NOISE_STEPS = 10  # losses (about 10 standard deviations of the running loss)


class DivergenceWatch:
    """The running loss (an exponential average, debiased as fastai's) and the rules that call
    it diverged. A loss never seen below 0 is measured from 0: fastai's and Lightning's 4x its
    lowest, or back three quarters of the way up once it fell by a quarter. A loss seen below 0
    (cosine_similarity, best near -1) has no floor to measure from: only its climb back counts.
    Either way a fall within the noise of the first steps (the batches' spread, before the rate
    does anything) is no fall to climb back from."""

    def __init__(self) -> None:
        self.raw: list[float] = []
        self.average, self.best = 0.0, math.inf  # the running loss, before its bias correction
        self.first = math.inf  # the running loss over the first steps
        self.low = math.inf  # the lowest running loss since those
        self.noise = 0.0  # the mean step-to-step change of the first NOISE_STEPS losses
        self.signed = False  # a loss was below 0: no 4x (seen from the next step on)

    def diverged(self, loss: float) -> str | None:
        """Why the loss diverged ({rate} to be filled in), or None while it has not."""
        if not math.isfinite(loss):
            return "the loss became NaN or infinite at {rate}"
        self.raw.append(loss)
        if len(self.raw) <= NOISE_STEPS:
            self.noise = float(np.abs(np.diff(self.raw)).mean()) if len(self.raw) > 1 else 0.0
        self.average = RUNNING * self.average + (1 - RUNNING) * loss
        running = self.average / (1 - RUNNING ** len(self.raw))
        self.best = min(self.best, running)
        if len(self.raw) == 5:
            self.first = running
        if len(self.raw) >= 5:  # its fall: from the first steps' average, a steadier start
            self.low = min(self.low, running)
        why = None if len(self.raw) <= 5 else self.rule(running)
        self.signed = self.signed or loss < 0
        return why

    def rule(self, running: float) -> str | None:
        fall = self.first - self.low
        if not (self.signed or self.best <= 0):
            if running > DIVERGES * self.best:
                return f"diverged at {{rate}} (running loss over {DIVERGES:g}x its lowest)"
            if self.low > FELL * self.first:  # fell by less than a quarter
                return None
        if fall > NOISE * self.noise and running > self.low + FELL * fall:
            return "diverged at {rate} (running loss back near its start)"
        return None


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
    if curve[0] - curve[low] < 0.02 * abs(curve[0]):  # a fall of 2% of its size: any sign
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
