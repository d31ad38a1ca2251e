"""One stream of run events, many subscribers: the console, history.csv, the checkpoints, the
run's state, the signal and NaN checks (and an experiment tracker) each hear the same sequence.

Keras's hooks reach the stream through one callback (train.keras_events); the runner emits the
run's own events (started, trained, interrupted, failed, finished). A subscriber is an object
with a method per event it cares for (a `Subscriber`), or any callable taking the event
(`Stream.subscribe` wraps it). Subscribers hear each event in the order they were subscribed.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Started:
    """Training of the run begins after `first_epoch` epochs (a resumed run's)."""

    run_dir: Path
    first_epoch: int
    epochs: int


@dataclass(frozen=True)
class FitBegan:
    """model.fit begins with `model` (a fine-tuned run calls it once per phase)."""

    model: Any


@dataclass(frozen=True)
class EpochBegan:
    epoch: int  # 1-based, as history.csv counts


@dataclass(frozen=True)
class BatchEnded:
    """A training batch ended; on JAX and torch it may be heard on Keras's worker thread."""

    batch: int  # 1-based within the epoch
    logs: dict[str, Any]


@dataclass(frozen=True)
class EpochEnded:
    """`seconds` run from the previous epoch's end (or the fit's start) to this one's, so they
    include validation and the files written after the previous epoch."""

    epoch: int  # 1-based
    logs: dict[str, Any]
    seconds: float
    model: Any = field(default=None, compare=False, repr=False)  # its state as the epoch left it


@dataclass(frozen=True)
class NewBest:
    """The best checkpoint now holds `epoch`: the best `value` of `monitor` so far."""

    epoch: int
    monitor: str
    value: float


@dataclass(frozen=True)
class FitEnded:
    """model.fit returned, or stopped early (not when an exception ended it)."""


@dataclass(frozen=True)
class Trained:
    """Training is over after `epochs` epochs (early stopping may end it sooner); the final
    files (model, curves, scores) follow."""

    epochs: int
    first_epoch: int


@dataclass(frozen=True)
class Interrupted:
    """Ctrl-C or SIGTERM: `epochs_done` epochs are kept in last.keras."""

    epochs_done: int
    trained: int | None


@dataclass(frozen=True)
class Failed:
    error: str  # "TypeName: message"
    trained: int | None


@dataclass(frozen=True)
class Finished:
    metrics: dict[str, Any] = field(default_factory=dict)


Event = (Started | FitBegan | EpochBegan | BatchEnded | EpochEnded | NewBest | FitEnded
         | Trained | Interrupted | Failed | Finished)


class Subscriber:
    """A listener on the stream: override the methods of the events it cares for.

    `async_safe` (Keras's word): whether `batch_ended` may run on Keras's worker thread. Only
    batch events can; every other event is heard on the training thread.
    """

    async_safe = False

    def started(self, event: Started) -> None: ...
    def fit_began(self, event: FitBegan) -> None: ...
    def epoch_began(self, event: EpochBegan) -> None: ...
    def batch_ended(self, event: BatchEnded) -> None: ...
    def epoch_ended(self, event: EpochEnded) -> None: ...
    def new_best(self, event: NewBest) -> None: ...
    def fit_ended(self, event: FitEnded) -> None: ...
    def trained(self, event: Trained) -> None: ...
    def interrupted(self, event: Interrupted) -> None: ...
    def failed(self, event: Failed) -> None: ...
    def finished(self, event: Finished) -> None: ...


class Listener(Subscriber):
    """A plain callable as a subscriber: it hears every event."""

    def __init__(self, call: Callable[[Event], None], async_safe: bool = False) -> None:
        self.call, self.async_safe = call, async_safe

    def hear(self, event: Event) -> None:
        self.call(event)

    started = fit_began = epoch_began = batch_ended = epoch_ended = new_best = hear
    fit_ended = trained = interrupted = failed = finished = hear


# Which method of a subscriber hears each kind of event.
HANDLERS: dict[type, str] = {
    Started: "started", FitBegan: "fit_began", EpochBegan: "epoch_began",
    BatchEnded: "batch_ended", EpochEnded: "epoch_ended", NewBest: "new_best",
    FitEnded: "fit_ended", Trained: "trained", Interrupted: "interrupted", Failed: "failed",
    Finished: "finished",
}


class Stream:
    """The run's events, fanned out to its subscribers in order."""

    def __init__(self, subscribers: Iterable[Subscriber] = ()) -> None:
        self.subscribers: list[Subscriber] = list(subscribers)

    def subscribe(self, subscriber: Subscriber | Callable[[Event], None]) -> None:
        self.subscribers.append(subscriber if isinstance(subscriber, Subscriber)
                                else Listener(subscriber))

    def emit(self, event: Event) -> None:
        method = HANDLERS[type(event)]
        for subscriber in self.subscribers:
            getattr(subscriber, method)(event)

    @property
    def async_safe(self) -> bool:
        """Whether every subscriber that hears batches may hear them off the training thread."""
        return all(subscriber.async_safe or
                   type(subscriber).batch_ended is Subscriber.batch_ended
                   for subscriber in self.subscribers)
