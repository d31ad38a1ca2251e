"""The arguments a config gives a Keras class (a layer, an optimizer, a loss, a metric), checked
against its signature before Keras sees them: unknown names, nulls, values of the wrong kind."""

from __future__ import annotations

import inspect
from collections.abc import Collection
from typing import Any

from dltrain.backend import keras_module
from dltrain.config import catalog
from dltrain.errors import ConfigError

# Required arguments of the common layers, by the kind of value each takes (no default to tell).
REQUIRED_KINDS: dict[str, type] = {"units": int, "filters": int, "rate": float, "stddev": float}


def check_value_types(cls: type, args: dict[str, Any], where: str) -> None:
    """A number, or true/false, where Keras's signature defaults to one: a string or a null
    there ('false', 'None', '0.5') failed deep in Keras, in `show` or in the first step."""
    params = inspect.signature(cls).parameters
    for key, value in args.items():
        default = params[key].default if key in params else inspect.Parameter.empty
        kind = REQUIRED_KINDS.get(key) if default is inspect.Parameter.empty else type(default)
        problem = _wrong_kind(kind, value)
        if problem is None:
            continue
        shown = f"'{value}' (quoted, so text)" if isinstance(value, str) else (
            "null" if value is None else repr(value))
        fix = ("" if default is inspect.Parameter.empty
               else f" Remove it for the default, {default!r}.")
        raise ConfigError(f"{where}.{key}: must be {problem}. Received: {shown}.{fix}")


def _wrong_kind(kind: type | None, value: Any) -> str | None:
    """What the value should be, where it is not of the kind (int, float, bool) it must be."""
    if kind is bool and not isinstance(value, bool):
        return "true or false"
    if kind is int and (isinstance(value, (bool, str, float)) or value is None):
        return "a whole number" + (f"; write {int(value)}" if isinstance(value, float)
                                   and value.is_integer() else "")
    if kind is float and (isinstance(value, (bool, str)) or value is None):
        return "a number"
    return None


def check_nulls(cls: type, args: dict[str, Any], where: str) -> None:
    """A null where Keras needs a value (`padding: null`) fails deep inside Keras; name it."""
    params = inspect.signature(cls).parameters
    for key, value in args.items():
        default = params[key].default if key in params else None
        if value is None and default is not None and default is not inspect.Parameter.empty:
            raise ConfigError(f"{where}.{key}: must not be null. Received: null. Remove it for "
                              f"the default, {default!r}.") from None


def resolved_argument(key: str, value: Any, where: str) -> Any:
    """Initializers, regularizers and constraints by Keras name or {class_name, config};
    activations are left to the layer, once Keras knows the name."""
    kind = catalog.resolved_kind(key)
    if kind is None or value is None:
        return value
    try:
        resolved = getattr(keras_module(), kind).get(value)
    except (ValueError, TypeError, KeyError) as exc:  # KeyError: a config without `value`
        known = catalog.load_catalog()
        if isinstance(value, str):
            raise ConfigError(f"{where}: {catalog.unknown_name(kind, value, known[kind])}") from None
        if isinstance(value, dict) and kind in catalog.CONFIGURED:
            try:
                catalog.check_configured(kind, value, where, known)
            except ConfigError as error:
                raise error from None
        raise ConfigError(f"{where}: {first_line(exc)}") from None
    return value if kind == "activations" else resolved


def check_kwargs(cls: type, args: dict[str, Any], where: str, extra: Collection[str] = (),
                 handled: Collection[str] = (), also: Collection[str] = (),
                 given: Collection[str] = ()) -> None:
    """Reject keyword arguments the Keras class does not take, suggesting the nearest one,
    then required ones that are missing (`given` are filled in by dltrain)."""
    params = inspect.signature(cls).parameters
    named = {name: p for name, p in params.items()
             if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    accepted = (set(named) | set(extra)) - set(handled)
    for key in args:
        if key not in accepted:
            raise ConfigError(f"{where}: {catalog.unknown_argument(cls.__name__, key, accepted, also)}")
    missing = [name for name, p in named.items() if p.default is p.empty
               and name not in (*args, *given, *handled)]
    if missing:
        raise ConfigError(f"{where}: {catalog.missing_arguments(cls.__name__, missing)}")


def first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
