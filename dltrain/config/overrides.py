"""`--set key.path=value`: one override applied to the raw YAML, parsed as YAML, with the keys it
wrote remembered so that an error about them names the option, not a line of the file."""

from __future__ import annotations

from typing import Any

from dltrain.config.yaml_file import Key, read_value
from dltrain.console import clipped
from dltrain.errors import ConfigError
from dltrain.urls import shown


def apply_override(raw: Any, override: str, source: str, lines: dict[Key, int] | None = None,
                   origins: dict[Key, str] | None = None) -> None:
    """Apply one `--set key.path=value`; the value is parsed as YAML (numbers, lists, ...).

    The keys it writes are recorded in `origins` (and forgotten in `lines`), so an error about
    them names the option instead of a line of the file.
    """
    path, sep, text = override.partition("=")
    # As messages show it: never a URL's password.
    override = clipped(f"{path}={shown(text)}" if sep else override)
    if not sep or not path.strip():
        raise ConfigError(f"--set {override}: expected key.path=value, e.g. training.epochs=2.")
    value = read_value(text, f"--set {override}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a mapping before --set can change it.")
    lines = {} if lines is None else lines
    origins = {} if origins is None else origins
    parts = path.strip().split(".")
    target: Any = raw
    key: Key = ()
    for depth, part in enumerate(parts[:-1]):
        target, step = _step(target, part, parts[: depth + 1], override)
        key = (*key, step)
        if key not in lines and key not in origins:  # a section this option created
            origins[key] = override
    key = (*key, _assign(target, parts[-1], value, override))
    for known in (lines, origins):
        for old in [old for old in known if old[:len(key)] == key]:
            del known[old]
    origins[key] = override


# Sections that may be a bare name (`optimizer: adam`): the long form is {name: adam, ...}.
NAMED: set[tuple[Any, ...]] = {("optimizer",), ("loss",), ("metrics", int)}


def _step(target: Any, part: str, walked: list[str], override: str) -> tuple[Any, str | int]:
    if isinstance(target, list):
        index: str | int = _index(target, part, override)
    elif isinstance(target, dict):
        index = part
        if target.get(part) is None:
            target[part] = {}
    else:
        raise ConfigError(f"--set {override}: '{'.'.join(walked[:-1])}' is not a section.")
    shape = tuple(int if isinstance(step, int) else step for step in (*walked[:-1], index))
    if isinstance(target[index], str) and shape in NAMED:
        target[index] = {"name": target[index]}  # --set optimizer.learning_rate over `adam`
    return target[index], index


def _assign(target: Any, part: str, value: Any, override: str) -> str | int:
    if isinstance(target, list):
        index = _index(target, part, override)
        target[index] = value
        return index
    if isinstance(target, dict):
        target[part] = value
        return part
    raise ConfigError(f"--set {override}: the parent of '{part}' is not a section.")


def _index(items: list[Any], part: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(
            f"--set {override}: '{part}' must be an index below {len(items)} into that list."
        )
    return int(part)


KERAS2_KEYS = {"optimizer.lr": "optimizer.learning_rate", "training.nb_epoch": "training.epochs"}


def keras2_override(override: str, notes: list[str]) -> str:
    """`--set optimizer.lr=...` as `optimizer.learning_rate=...`, with a note, as in a file."""
    path, sep, value = override.partition("=")
    today = KERAS2_KEYS.get(path.strip())
    if not sep or today is None:
        return override
    notes.append(f"--set {path.strip()}: the Keras 2 name; read as {today}.")
    return f"{today}={value}"
