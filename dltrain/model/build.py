"""Turn the model, optimizer, loss and metrics sections into a compiled keras.Model."""

from __future__ import annotations

import difflib
import functools
import inspect
from collections.abc import Collection
from typing import Any

from dltrain.backend import keras_module
from dltrain.config.schema import Config, NamedObject, OptimizerConfig
from dltrain.errors import ConfigError

# Layers a config may not name: they run arbitrary code or wrap other frameworks.
FORBIDDEN_LAYERS = {"Lambda", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper",
                    "Layer", "InputLayer", "InputSpec", "Input"}
# Keras 2 layer names that Keras 3 dropped.
RENAMED_LAYERS = {"Deconvolution2D": "Conv2DTranspose", "Deconvolution3D": "Conv3DTranspose",
                  "CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU", "Merge": "Concatenate or Add"}
# Arguments every Keras layer takes through its base class.
BASE_LAYER_ARGS = {"name", "dtype", "trainable", "activity_regularizer", "autocast"}
RESOLVERS = {"_initializer": "initializers", "_regularizer": "regularizers",
             "_constraint": "constraints"}
# Names that compile() resolves from the loss rather than through keras.metrics.get().
COMPILE_METRIC_ALIASES = {"accuracy", "acc", "crossentropy", "ce"}
# A layer argument above this is a typo or an attack, not a model that fits in memory.
MAX_LAYER_INT = 1_000_000
MAX_PARAMETERS = 1_000_000_000
@functools.cache
def layer_registry() -> dict[str, type]:
    """Every public keras.layers class a config may name."""
    keras = keras_module()
    return {name: cls for name, cls in vars(keras.layers).items()
            if isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
            and name not in FORBIDDEN_LAYERS}


def build_model(config: Config) -> Any:
    """Build and compile the model; every config mistake becomes a ConfigError with its key path."""
    keras = keras_module()
    model = keras.Sequential([keras.Input(shape=tuple(config.model.input_shape))],
                             name=config.name.replace(".", "_").replace("-", "_"))
    for index, spec in enumerate(config.model.layers):
        ((name, args),) = spec.items()
        where = f"model.layers.{index}.{name}"
        layer = make_layer(name, args, where)
        try:
            model.add(layer)
        except (ValueError, TypeError) as exc:
            raise ConfigError(f"{where}: cannot follow the previous layer's output: "
                              f"{_first_line(exc)}") from None
        if model.count_params() > MAX_PARAMETERS:
            raise ConfigError(f"{where}: the model would have {model.count_params():,} "
                              f"parameters, more than {MAX_PARAMETERS:,}; make it smaller.")
    check_loss_fits_output(config, model.output_shape[-1])
    model.compile(optimizer=make_optimizer(config.optimizer), loss=make_loss(config.loss),
                  metrics=[make_metric(m, i) for i, m in enumerate(config.metrics)],
                  steps_per_execution=config.training.steps_per_execution,
                  jit_compile=config.training.jit_compile)
    return model


def make_layer(name: str, args: dict[str, Any], where: str) -> Any:
    registry = layer_registry()
    if name not in registry:
        raise ConfigError(f"{where}: {_unknown_layer(name, registry)}")
    cls = registry[name]
    check_kwargs(cls, args, where, extra=BASE_LAYER_ARGS)
    check_sizes(args, where)
    resolved = {key: _resolve(key, value, f"{where}.{key}") for key, value in args.items()}
    try:
        return cls(**resolved)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {_first_line(exc)}") from None


def check_sizes(args: dict[str, Any], where: str) -> None:
    """Refuse sizes that would exhaust memory while Keras allocates the weights."""
    for key, value in args.items():
        numbers = value if isinstance(value, (list, tuple)) else [value]
        for number in numbers:
            if isinstance(number, int) and not isinstance(number, bool) and (
                    abs(number) > MAX_LAYER_INT):
                raise ConfigError(f"{where}.{key}: must be at most {MAX_LAYER_INT:,}. "
                                  f"Received: {number}.")


def _unknown_layer(name: str, registry: dict[str, type]) -> str:
    if name in FORBIDDEN_LAYERS:
        return f"layer '{name}' is not allowed: configs cannot run code or load other models."
    if name in RENAMED_LAYERS:
        return f"'{name}' is the Keras 2 name; use '{RENAMED_LAYERS[name]}'."
    return f"unknown layer '{name}'.{_did_you_mean(name, list(registry))}"


def _resolve(key: str, value: Any, where: str) -> Any:
    """Initializers, regularizers and constraints by Keras name or {class_name, config}."""
    for suffix, module in RESOLVERS.items():
        if key.endswith(suffix) and value is not None:
            getter = getattr(keras_module(), module).get
            try:
                return getter(value)
            except (ValueError, TypeError) as exc:
                raise ConfigError(f"{where}: {_first_line(exc)}") from None
    return value


def check_kwargs(cls: type, args: dict[str, Any], where: str, extra: Collection[str] = (),
                 handled: Collection[str] = ()) -> None:
    """Reject keyword arguments the Keras class does not take, suggesting the nearest one."""
    params = inspect.signature(cls).parameters
    accepted = {name for name, p in params.items()
                if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)}
    accepted = (accepted | set(extra)) - set(handled)
    for key in args:
        if key not in accepted:
            raise ConfigError(f"{where}: unknown argument '{key}' for {cls.__name__}."
                              f"{_did_you_mean(key, sorted(accepted))} "
                              f"{cls.__name__} takes: {', '.join(sorted(accepted))}.")


def make_optimizer(cfg: OptimizerConfig) -> Any:
    keras = keras_module()
    try:
        cls = type(keras.optimizers.get(cfg.name))
    except ValueError:
        names = [n for n, c in vars(keras.optimizers).items()
                 if isinstance(c, type) and issubclass(c, keras.optimizers.Optimizer)]
        raise ConfigError(f"optimizer.name: unknown optimizer '{cfg.name}'."
                          f"{_did_you_mean(cfg.name, names + [n.lower() for n in names])}") from None
    named = {"learning_rate", "clipnorm", "clipvalue", "name"}
    check_kwargs(cls, cfg.kwargs, "optimizer", handled=named)
    clipping = {k: v for k, v in (("clipnorm", cfg.clipnorm), ("clipvalue", cfg.clipvalue)) if v}
    try:
        return cls(learning_rate=make_learning_rate(cfg), **clipping, **cfg.kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"optimizer: {_first_line(exc)}") from None


def make_learning_rate(cfg: OptimizerConfig) -> Any:
    if cfg.schedule is None:
        return cfg.learning_rate
    keras = keras_module()
    schedules = keras.optimizers.schedules
    cls = getattr(schedules, cfg.schedule.name, None)
    if not (isinstance(cls, type) and issubclass(cls, schedules.LearningRateSchedule)):
        names = [n for n, c in vars(schedules).items() if isinstance(c, type)
                 and issubclass(c, schedules.LearningRateSchedule) and n != "LearningRateSchedule"]
        raise ConfigError(f"optimizer.schedule.name: unknown schedule '{cfg.schedule.name}'."
                          f"{_did_you_mean(cfg.schedule.name, names)} Known: {', '.join(names)}.")
    args = cfg.schedule.kwargs
    check_kwargs(cls, args, "optimizer.schedule")
    if "initial_learning_rate" in inspect.signature(cls).parameters:
        args.setdefault("initial_learning_rate", cfg.learning_rate)
    try:
        return cls(**args)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"optimizer.schedule: {_first_line(exc)}") from None


def make_loss(loss: str | NamedObject) -> Any:
    return _named_object("losses", loss, "loss")


def make_metric(metric: str | NamedObject, index: int) -> Any:
    return _named_object("metrics", metric, f"metrics.{index}")


def _named_object(module_name: str, spec: str | NamedObject, where: str) -> Any:
    """A name goes to Keras's get(); a name with arguments to the matching class."""
    module = getattr(keras_module(), module_name)
    kind = {"losses": "loss", "metrics": "metric"}[module_name]
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec.name, spec.kwargs)
    if not kwargs and module_name == "metrics" and name in COMPILE_METRIC_ALIASES:
        return name
    if not kwargs:
        try:
            module.get(name)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: unknown {kind} '{name}'."
                              f"{_did_you_mean(name, _public_names(module))}") from None
        return name
    classes = {_squash(n): c for n, c in vars(module).items() if isinstance(c, type)}
    cls = classes.get(_squash(name))
    if cls is None:
        raise ConfigError(f"{where}: no {kind} class named '{name}' takes arguments."
                          f"{_did_you_mean(name, _public_names(module))}")
    check_kwargs(cls, kwargs, where)
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {_first_line(exc)}") from None


def check_loss_fits_output(config: Config, units: int) -> None:
    """Catch the classic mismatches between the loss and the last layer before training."""
    if config.loss_kind == "binary" and units != 1:
        raise ConfigError(f"loss: {config.loss_name} expects 1 output unit (sigmoid), but the last "
                          f"layer has {units}. For {units} classes use "
                          "sparse_categorical_crossentropy with a softmax layer.")
    if config.loss_kind in ("categorical", "sparse_categorical") and units == 1:
        raise ConfigError(f"loss: {config.loss_name} needs one output unit per class, but the "
                          "last layer has 1. For two classes use binary_crossentropy with a "
                          "sigmoid unit, or give the last layer 2 units.")


def _public_names(module: Any) -> list[str]:
    return [name for name in dir(module) if not name.startswith("_")]


def _squash(name: str) -> str:
    return name.replace("_", "").lower()


def _did_you_mean(name: str, choices: list[str]) -> str:
    close = difflib.get_close_matches(name, choices, n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
