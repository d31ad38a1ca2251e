"""A pydantic error as one line a user can act on: the key path, the file's line or the --set
option that wrote it, what was expected and received, and where a misplaced key belongs."""

from __future__ import annotations

import difflib
import re
from typing import Any, get_args, get_origin

from pydantic import BaseModel

from dltrain.config.fields import KEY_ERROR
from dltrain.config.schema import Config
from dltrain.config.yaml_file import Key
from dltrain.console import clipped, shown

NO_RECEIVED = ("missing", "key_not_read")  # errors whose message says all there is to say
EPOCH = " An epoch here is one pass over the training data; dataset.train_limit makes it shorter."
# Keys users bring from Keras's fit() and Keras 2, at the section they wrote them in: where
# they belong, or why there is none (the nearest allowed name misleads: steps_per_execution).
ELSEWHERE = {
    ("epochs",): " It belongs in the training section: training.epochs.",
    ("batch_size",): " It belongs in the training section: training.batch_size.",
    ("validation_split",): " It belongs in the dataset section: dataset.validation_split.",
    ("training", "validation_split"): " It belongs in the dataset section: "
    "dataset.validation_split.",
    ("training", "validation_data"): " Validation data comes from dataset.validation_split (a "
    "fraction, or test).",
    ("training", "steps_per_epoch"): " dltrain has no steps_per_epoch." + EPOCH,
    ("training", "samples_per_epoch"): " samples_per_epoch is Keras 1's;" + EPOCH,
    ("training", "class_weight"): " Class weights are not supported yet.",
    ("training", "verbose"): " dltrain prints one line per epoch; fit --json prints one JSON "
    "document instead.",
    ("training", "reduce_lr_on_plateau", "epsilon"): " 'epsilon' is the Keras 2 name; use "
    "'min_delta'.",
}


def describe(error: Any, raw: Any, lines: dict[Key, int],
             origins: dict[Key, str] | None = None) -> tuple[str | None, str]:
    """One line for one pydantic error: key path, line, what was expected and received.

    Returns the --set option the failing key came from (None: from the file) and the line.
    """
    if error["type"] == KEY_ERROR:  # a rule on the whole config, broken at this key
        return at_key(error, raw, lines, origins or {})
    loc = key_path(error["loc"], raw, keep_last=error["type"] == "missing")
    where = ".".join(map(str, loc)) or "top level"
    layer = re.match(r"(?:Value error, )?layer (\d+)", error["msg"])
    # The layers' validator speaks of one layer: its own line, not the list's.
    line, override = blame((*loc, int(layer.group(1))) if layer and loc[-1:] == ("layers",)
                           else loc, lines, origins or {})
    at = f" (line {line})" if line else ""
    if error["type"] == "extra_forbidden":
        parent = ".".join(map(str, loc[:-1])) or "top level"
        hint = ELSEWHERE.get(tuple(map(str, loc))) or _suggest(str(loc[-1]), allowed_keys(loc[:-1]))
        return override, f"unknown key {shown(str(loc[-1]))} at {parent}{at}.{hint}"
    message = error["msg"].removeprefix("Value error, ")
    received = ("" if error["type"] in NO_RECEIVED or "Received: " in message
                else f" Received: {_short(error['input'])}.")
    return override, f"{where}{at}: {message}.{received}"


def at_key(error: Any, raw: Any, lines: dict[Key, int],
           origins: dict[Key, str]) -> tuple[str | None, str]:
    """`describe` for schema.key_error: the key its context names, at the line of that key or
    of the nearest section written (a default monitor: its section's line)."""
    key = error["ctx"]["key"]
    loc = tuple(int(part) if part.isdigit() else part for part in key.split("."))
    line, override = blame(key_path(loc, raw, keep_last=False), lines, origins)
    return override, f"{key}{f' (line {line})' if line else ''}: {error['ctx']['message']}"


def key_path(loc: Key, raw: Any, keep_last: bool) -> Key:
    """The error's location as keys of the user's document.

    pydantic adds the name of the union member it tried ("str", "NamedObject") to locations;
    those are not keys of the document, so they are dropped. A missing key is kept.
    """
    path: list[str | int] = []
    node = raw
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif not (keep_last and index == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def blame(loc: Key, lines: dict[Key, int], origins: dict[Key, str]) -> tuple[int | None, str | None]:
    """Where the key at `loc` (or its nearest enclosing key) was written: (line, None) in the
    file, (None, "key=value") by a --set option, (None, None) nowhere (a default)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in origins:
            return None, origins[loc[:end]]
        if loc[:end] in lines:
            return lines[loc[:end]], None
    return None, None


def _short(value: Any) -> str:
    return clipped(repr(value))


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f" Did you mean '{close[0]}'?"
    return f" Allowed keys: {', '.join(allowed)}." if allowed else ""


def allowed_keys(loc: Key) -> list[str]:
    """The field names of the schema section at `loc`, for suggestions."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        model = _section_model(model.model_fields[part].annotation) if part in getattr(
            model, "model_fields", {}) else None
        if model is None:
            return []
    return list(model.model_fields)


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) else ():
        found = _section_model(arg)
        if found is not None:
            return found
    return None
