"""preprocessing.json read back: every value checked against what fit writes and the model it
describes, so a damaged or tampered file is refused naming its key instead of giving NaN
probabilities (a rescale of NaN), answers at chance that an export's parity check passes (a
rescale of 0) or an internal error (a list for the whole file)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, NoReturn

import numpy as np

from dltrain.data.prepare import Preparation
from dltrain.errors import RunError
from dltrain.runs import records
from dltrain.runs.files import json_type, read_json
from dltrain.runs.records import Preprocessing

REFIT = "The file is not as dltrain fit wrote it; fit the run again to recreate it."


def read_preparation(path: Path, input_shape: list[int] | None = None
                     ) -> tuple[dict[str, Any], Preparation]:
    """preprocessing.json as written and the preparation it describes, for a model that takes
    `input_shape` (checked where given; `check_outputs` checks the rest once the model is
    loaded).

    Raises:
        RunError: naming the file and the first key that fit would not have written.
    """
    saved = read_json(path)
    if not isinstance(saved, dict):
        raise RunError(f"{path}: holds {json_type(saved)}, not the JSON object dltrain fit "
                       f"writes. {REFIT}")
    check = Checker(path, saved)
    check.number("rescale", positive=True)
    shape = check.shape("input_shape") or input_shape
    sample = check.shape("flatten_from") or shape
    check.statistics("mean", "std", [sample] if sample else None)
    targets = check.names("target_names")
    check.statistics("target_mean", "target_std", [[len(targets)]] if targets else None)
    features = check.names("feature_names")
    if features is not None and sample and len(features) != math.prod(sample):
        check.refuse("feature_names", f"{math.prod(sample)} names, one per input value",
                     f"{len(features)} names")
    check.classes()
    # The rest of the keys as the record types them; schema_version says how the file is
    # laid out, not a step (export refuses the steps it does not know).
    saved = records.parse(path, saved, Preprocessing).as_json()
    return saved, Preparation.from_json(saved)


def check_outputs(path: Path, saved: dict[str, Any], outputs: int) -> None:
    """A read preprocessing.json's classes or targets against the model's `outputs` values: a
    single sigmoid unit gives two classes, a regression one value per target."""
    check = Checker(path, saved)
    count, targets = saved.get("num_classes", 0), saved.get("target_names")
    if count and count > max(outputs, 2 if outputs == 1 else 0):
        check.refuse("num_classes", f"at most the model's {outputs} outputs", str(count))
    if not count and targets is not None and len(targets) != outputs:
        check.refuse("target_names", f"{outputs} names, one per model output",
                     f"{len(targets)} names")


class Checker:
    """One preprocessing.json's keys, each checked; `refuse` names the key and the value."""

    def __init__(self, path: Path, saved: dict[str, Any]) -> None:
        self.path, self.saved = path, saved

    def refuse(self, key: str, expected: str, received: str | None = None) -> NoReturn:
        shown = received if received is not None else repr(self.saved.get(key))
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        raise RunError(f"{self.path}: {key} must be {expected}. Received: {shown}. {REFIT}")

    def number(self, key: str, positive: bool = False) -> float:
        value = self.saved.get(key)
        if (isinstance(value, bool) or not isinstance(value, int | float)
                or not math.isfinite(value) or (positive and value <= 0)):
            self.refuse(key, "a positive finite number" if positive else "a finite number")
        return float(value)

    def shape(self, key: str) -> list[int] | None:
        value = self.saved.get(key)
        if value is not None and not (isinstance(value, list) and value and all(
                isinstance(size, int) and not isinstance(size, bool) and size > 0
                for size in value)):
            self.refuse(key, "a list of positive whole numbers (a sample's shape) or null")
        return value

    def names(self, key: str) -> list[str] | None:
        value = self.saved.get(key)
        if value is not None and not (isinstance(value, list)
                                      and all(isinstance(name, str) for name in value)):
            self.refuse(key, "a list of names (strings) or null")
        return value

    def array(self, key: str, shapes: list[list[int]] | None, positive: bool) -> None:
        """A list (of lists) of finite numbers, shaped to broadcast to each of `shapes`."""
        try:
            array = np.asarray(self.saved.get(key), dtype=np.float64)
        except (TypeError, ValueError):
            self.refuse(key, "a list of numbers (nested as the sample's shape) or null")
        if not np.isfinite(array).all() or (positive and (array <= 0).any()):
            self.refuse(key, "positive finite numbers" if positive else "finite numbers")
        for shape in shapes or ():
            try:
                fits = np.broadcast_shapes(array.shape, tuple(shape)) == tuple(shape)
            except ValueError:
                fits = False
            if not fits:
                self.refuse(key, f"numbers in the shape {shape} of what it scales",
                            f"numbers in the shape {list(array.shape)}")

    def statistics(self, mean: str, std: str, shapes: list[list[int]] | None) -> None:
        """A mean and a std, both or neither: the std divides, so it must be positive."""
        given = [self.saved.get(key) is not None for key in (mean, std)]
        if given[0] != given[1]:
            missing, other = (std, mean) if given[0] else (mean, std)
            self.refuse(missing, f"given with {other}", "null")
        if given[0]:
            self.array(mean, shapes, positive=False)
            self.array(std, shapes, positive=True)

    def classes(self) -> None:
        """A classifier's class names and their count, against each other."""
        count = self.saved.get("num_classes", 0)
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            self.refuse("num_classes", "a whole number, 0 or more")
        names = self.names("class_names")
        if names is not None and len(names) != count:
            self.refuse("class_names", f"{count} names (num_classes)", f"{len(names)} names")
