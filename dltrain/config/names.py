"""The shipped Keras catalog and the names in it: which class a name stands for, the nearest
known name. Apart from catalog.py's checks so that the schema can ask it too."""

from __future__ import annotations

import difflib
import functools
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CATALOG_FILE = Path(__file__).with_name("keras_catalog.json")


@functools.cache
def load_catalog() -> dict[str, Any]:
    """The shipped catalog: layer, optimizer, schedule, loss, metric and activation names."""
    return json.loads(CATALOG_FILE.read_text(encoding="utf-8"))


def class_for(name: str, classes: Iterable[str]) -> str | None:
    """The class a loss or metric name stands for, in any spelling (label_smoothing-style)."""
    return next((cls for cls in classes if squash(cls) == squash(name)), None)


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """The nearest choice, preferring those spelt like the user's (lower case or CamelCase)."""
    choices = list(choices)
    for choice in choices:
        if choice.lower() == name.lower() and choice != name:
            return f" Did you mean '{choice}'?"
    for pool in (same_style(name, choices), choices):
        close = difflib.get_close_matches(name, pool, n=1, cutoff=0.6)
        if close:
            return f" Did you mean '{close[0]}'?"
    return ""


def same_style(name: str, choices: Iterable[str]) -> list[str]:
    """The choices written like `name` (all lower case, or not), else all of them."""
    lower = name == name.lower()
    return [choice for choice in choices if (choice == choice.lower()) == lower] or list(choices)


def squash(name: str) -> str:
    return name.replace("_", "").lower()


def logged_metric_name(name: str, with_arguments: bool) -> str:
    """The name Keras logs a config's metric under, so that monitors can name it.

    Keras's compile logs a metric given by name under that name as written (Precision, acc);
    model.build makes one given with arguments with its class's default name, which the
    catalog records (Precision: precision, LogCoshError: logcosh). A class the catalog does not
    know keeps the name as written: building the model refuses it.
    """
    if not with_arguments:
        return name
    classes = load_catalog()["metrics_classes"]
    cls = class_for(name, classes)
    return name if cls is None else str(classes[cls].get("logged", name))


def meant_metrics(received: str, known: list[str], metrics: list[tuple[str, str]]) -> list[str]:
    """The logged names a monitor names in another spelling: the metric as the config writes
    it or by its Keras class's own name (val_precision for metrics: [Precision], which Keras's
    compile logs as written), in any case or underscores.

    Args:
        received: the monitor as written, e.g. val_precision.
        known: every name Keras logs for the config.
        metrics: each metric as the config writes it, with the name Keras logs it under.
    """
    prefix = "val_" if received.startswith("val_") else ""
    meant = squash(received.removeprefix(prefix))
    classes = load_catalog()["metrics_classes"]
    found = []
    for written, logged in metrics:
        cls = class_for(written, classes)
        own = str(classes[cls].get("logged", written)) if cls is not None else written
        if meant in (squash(written), squash(logged), squash(own)) and prefix + logged in known:
            found.append(prefix + logged)
    return list(dict.fromkeys(found))


def numbered(names: list[str]) -> list[str]:
    """The names as Keras's CompileMetrics reports them: a name given again is numbered from
    _1 (precision, precision_1), in the order of the metrics."""
    seen: dict[str, int] = {}
    reported = []
    for name in names:
        reported.append(f"{name}_{seen[name]}" if name in seen else name)
        seen[name] = seen.get(name, 0) + 1
    return reported
