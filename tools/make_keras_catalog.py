"""Regenerate dltrain/config/keras_catalog.json: what the installed Keras lets a config name.

Usage: python tools/make_keras_catalog.py   (after upgrading Keras; a test fails until you do)

The catalog lets `dltrain show --no-summary` and the first step of `fit` check layer,
optimizer, schedule, loss, metric and activation names and arguments without importing
TensorFlow. Every name listed is one Keras's own `get()` or registry accepts.
"""

from __future__ import annotations

import importlib
import inspect
import json
from pathlib import Path
from typing import Any

from dltrain.backend import keras_module
from dltrain.config.backbone import MANAGED_ARGS
from dltrain.config.catalog import BASE_LAYER_ARGS, CONFIGURED
from dltrain.config.names import CATALOG_FILE
from dltrain.model.layers import layer_registry

# Modules whose get() turns a string into an object; their registry lists every alias.
NAMED = ("losses", "metrics", "activations", "initializers", "regularizers", "constraints")


def arguments(cls: type, extra: frozenset[str] | set[str] = frozenset()) -> dict[str, Any]:
    """The keyword arguments the class accepts and those it requires."""
    params = inspect.signature(cls).parameters.values()
    named = [p for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return {"args": sorted({p.name for p in named} | set(extra)),
            "required": sorted(p.name for p in named if p.default is p.empty)}


# Abstract base classes get() also accepts, which fail only once training starts.
BASES = {"losses": "Loss", "metrics": "Metric", "initializers": "Initializer",
         "regularizers": "Regularizer", "constraints": "Constraint"}


def accepted_names(module_name: str) -> list[str]:
    """The registry keys that `keras.<module>.get(name)` turns into a usable object."""
    module = getattr(keras_module(), module_name)
    registry = importlib.import_module(f"keras.src.{module_name}").ALL_OBJECTS_DICT
    base = getattr(module, BASES.get(module_name, ""), None)
    names = []
    for name, obj in registry.items():
        if base is not None and obj is base:
            continue
        try:
            module.get(name)
        except (ValueError, TypeError, KeyError):
            continue  # a class that needs arguments (Constant, MeanIoU): only by {name, args}
        names.append(name)
    return sorted(names)


def configurable_classes(module_name: str) -> dict[str, Any]:
    """What {class_name: ..., config: {...}} may name, and each class's arguments."""
    module = getattr(keras_module(), module_name)
    registry = importlib.import_module(f"keras.src.{module_name}").ALL_OBJECTS_DICT
    base = getattr(module, BASES[module_name])
    classes = {alias: cls for alias, cls in registry.items()
               if isinstance(cls, type) and cls is not base}
    specs = {}
    for cls in sorted(set(classes.values()), key=lambda cls: cls.__name__):
        specs[cls.__name__] = arguments(cls)
        try:
            module.get({"class_name": cls.__name__, "config": {}})
        except KeyError as exc:  # from_config needs it though __init__ has a default (Constant)
            specs[cls.__name__]["required"] = sorted({*specs[cls.__name__]["required"],
                                                      str(exc.args[0])})
        except (ValueError, TypeError):
            pass
    return {f"{module_name}_classes": {alias: cls.__name__ for alias, cls in sorted(classes.items())},
            f"{module_name}_arguments": specs}


def public_classes(module: Any, base: type | None = None) -> dict[str, type]:
    return {name: cls for name, cls in vars(module).items()
            if not name.startswith("_") and isinstance(cls, type)
            and (base is None or issubclass(cls, base))}


# Applications that check their input size themselves, with what their docstring says.
DOCUMENTED_SIZES = {"mobilenet_v3": {"default_size": 224, "min_size": 32}}


class _Seen(Exception):
    """Stops an application's constructor once its input sizes are known."""


def input_sizes(function: Any) -> dict[str, int]:
    """The default and minimum image size an application passes to Keras's own input check."""
    utils = importlib.import_module("keras.src.applications.imagenet_utils")
    original, seen = utils.obtain_input_shape, {}

    def capture(input_shape: Any, default_size: int, min_size: int, *args: Any,
                **kwargs: Any) -> None:
        seen.update(default_size=default_size, min_size=min_size)
        raise _Seen

    family = function.__module__.rsplit(".", 1)[-1]
    if family in DOCUMENTED_SIZES:
        return DOCUMENTED_SIZES[family]
    utils.obtain_input_shape = capture
    try:
        function(include_top=False, weights=None)
    except _Seen:
        pass
    finally:
        utils.obtain_input_shape = original
    if not seen:
        raise RuntimeError(f"{function.__name__}: no input size check found; add it to "
                           "DOCUMENTED_SIZES")
    return seen


def backbones() -> dict[str, Any]:
    """keras.applications by name: the arguments a config may give and the input sizes."""
    keras = keras_module()
    found = {}
    for name, function in sorted(vars(keras.applications).items()):
        if not (callable(function) and name[:1].isupper()):
            continue
        spec = arguments(function)
        spec["args"] = [arg for arg in spec["args"] if arg not in MANAGED_ARGS]
        found[name] = {**spec, **input_sizes(function)}
    return found


def make_catalog() -> dict[str, Any]:
    """The catalog as a JSON-ready dict, from the Keras installed now."""
    keras = keras_module()
    optimizers = importlib.import_module("keras.src.optimizers").ALL_OBJECTS_DICT
    optimizer_names = {}
    for alias, cls in optimizers.items():
        try:
            keras.optimizers.get(alias)
        except (ValueError, TypeError, KeyError):
            continue  # MultiOptimizer and the like need a configuration a config cannot give
        optimizer_names[alias.lower()] = cls.__name__
    schedules = keras.optimizers.schedules
    catalog: dict[str, Any] = {
        "keras": keras.__version__,
        "layers": {name: arguments(cls, BASE_LAYER_ARGS)
                   for name, cls in sorted(layer_registry().items())},
        "optimizer_names": dict(sorted(optimizer_names.items())),
        "optimizers": {name: arguments(getattr(keras.optimizers, name))
                       for name in sorted(set(optimizer_names.values()))},
        "schedules": {name: arguments(cls) for name, cls in sorted(public_classes(
            schedules, schedules.LearningRateSchedule).items()) if name != "LearningRateSchedule"},
    }
    for module_name in NAMED:
        catalog[module_name] = accepted_names(module_name)
    catalog["backbones"] = backbones()
    for module_name in CONFIGURED:
        catalog.update(configurable_classes(module_name))
    for module_name in ("losses", "metrics"):
        classes = public_classes(getattr(keras, module_name))
        catalog[f"{module_name}_classes"] = {name: arguments(cls)
                                             for name, cls in sorted(classes.items())}
    for name, spec in catalog["metrics_classes"].items():
        spec["logged"] = logged_name(getattr(keras.metrics, name))
    return catalog


def logged_name(cls: type) -> str:
    """The name Keras logs a metric made without a name under: its class's default `name`,
    else (None) what Metric.__init__'s auto_name makes of the class name (Precision: precision;
    LogCoshError's own default is logcosh). Monitors and search objectives must use it."""
    naming = importlib.import_module("keras.src.utils.naming")
    parameter = inspect.signature(cls).parameters.get("name")
    default = None if parameter is None else parameter.default
    return default if isinstance(default, str) else naming.to_snake_case(cls.__name__)


def render(catalog: dict[str, Any]) -> str:
    return json.dumps(catalog, indent=1, sort_keys=False) + "\n"


def main() -> None:
    text = render(make_catalog())
    Path(CATALOG_FILE).write_text(text, encoding="utf-8")
    print(f"{CATALOG_FILE}: {len(text):,} bytes")


if __name__ == "__main__":
    main()
