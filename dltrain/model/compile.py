"""Compile a model: the optimizer (and its learning-rate schedule), the loss and the metrics
from the config's sections, each a Keras object found by name with a hint when it is not."""

from __future__ import annotations

import inspect
from typing import Any

from dltrain.backend import keras_module
from dltrain.config import catalog
from dltrain.config.fields import NamedObject
from dltrain.config.names import logged_metric_name
from dltrain.config.schema import Config
from dltrain.config.training_section import OptimizerConfig
from dltrain.errors import ConfigError
from dltrain.model.arguments import check_kwargs, check_value_types, first_line


def compile_model(model: Any, config: Config, optimizer: OptimizerConfig) -> None:
    """Compile with the config's loss and metrics and this optimizer (fine-tuning's is another)."""
    model.compile(optimizer=make_optimizer(optimizer), loss=make_loss(config.loss),
                  metrics=compiled_metrics(config),
                  steps_per_execution=config.steps_per_execution(),
                  jit_compile=config.training.jit_compile)


def compiled_metrics(config: Config) -> list[Any]:
    """The config's metrics as Keras compiles them (a model, and the trainer around it that
    augments in the training step)."""
    return [resolved_metric(m, i, config) or make_metric(m, i)
            for i, m in enumerate(config.metrics)]


def make_optimizer(cfg: OptimizerConfig) -> Any:
    keras = keras_module()
    try:
        cls = type(keras.optimizers.get(cfg.name))
    except (ValueError, KeyError):  # KeyError: MultiOptimizer cannot be made from its name
        known = catalog.load_catalog()["optimizers"]
        raise ConfigError(f"optimizer.name: {catalog.unknown_optimizer(cfg.name, known)}") from None
    check_kwargs(cls, cfg.kwargs, "optimizer", handled=catalog.CLASS_PICKER, also=("schedule",))
    check_value_types(cls, cfg.kwargs, "optimizer")
    clipping = {k: v for k, v in (("clipnorm", cfg.clipnorm), ("clipvalue", cfg.clipvalue)) if v}
    try:
        return cls(learning_rate=make_learning_rate(cfg), **clipping, **cfg.kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"optimizer: {first_line(exc)}") from None


def make_learning_rate(cfg: OptimizerConfig) -> Any:
    if cfg.schedule is None:
        return cfg.learning_rate
    keras = keras_module()
    schedules = keras.optimizers.schedules
    cls = getattr(schedules, cfg.schedule.name, None)
    if not (isinstance(cls, type) and issubclass(cls, schedules.LearningRateSchedule)):
        names = [n for n, c in vars(schedules).items() if isinstance(c, type)
                 and issubclass(c, schedules.LearningRateSchedule) and n != "LearningRateSchedule"]
        raise ConfigError(f"optimizer.schedule.name: {catalog.unknown_schedule(cfg.schedule.name, names)}")
    args = cfg.schedule.kwargs
    check_kwargs(cls, args, "optimizer.schedule", handled=catalog.CLASS_PICKER,
                 given=("initial_learning_rate",))
    if "initial_learning_rate" in inspect.signature(cls).parameters:
        args.setdefault("initial_learning_rate", cfg.learning_rate)
    try:
        return cls(**args)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"optimizer.schedule: {first_line(exc)}") from None


def resolved_metric(metric: str | NamedObject, index: int, config: Config) -> Any:
    """A metric named bare that Keras would not know or would read wrongly, made as Keras 2 did
    or as the loss reads the outputs; None for the others (make_metric's).

    `crossentropy` and `ce` were Keras 2's names for the loss's own crossentropy; Keras 3 knows
    them no more. With a loss given from_logits: true, Keras's accuracy, precision and recall of
    one unit cut at 0.5 and its crossentropy and AUC read probabilities, whatever the loss was
    told."""
    if not isinstance(metric, str):
        return None
    metrics, squashed, kind = keras_module().metrics, _squash(metric), config.task_spec.kind
    if squashed in ("crossentropy", "ce"):
        if kind not in CROSSENTROPY_METRICS:
            raise ConfigError(f"metrics.{index}: {metric} means the loss's own crossentropy (the "
                              f"Keras 2 shorthand), but loss {config.loss_name} is not a "
                              "crossentropy. Name the metric you want, e.g. mae.")
        return getattr(metrics, CROSSENTROPY_METRICS[kind])(from_logits=config.from_logits,
                                                            name=metric)
    if not config.from_logits:
        return None
    if squashed in ("accuracy", "acc") and kind == "binary":
        return metrics.BinaryAccuracy(threshold=0.0, name=metric)  # logit 0 is probability 0.5
    if squashed in ("precision", "recall") and kind == "binary":
        return getattr(metrics, squashed.capitalize())(thresholds=0.0, name=metric)
    if squashed == "auc":
        return metrics.AUC(from_logits=True, name=metric)  # logged as written, as Keras does
    return None


# The crossentropy metric for a loss's kind.
CROSSENTROPY_METRICS = {"binary": "BinaryCrossentropy", "categorical": "CategoricalCrossentropy",
                        "sparse_categorical": "SparseCategoricalCrossentropy"}


def make_loss(loss: str | NamedObject) -> Any:
    return _named_object("losses", loss, "loss")


def make_metric(metric: str | NamedObject, index: int) -> Any:
    return _named_object("metrics", metric, f"metrics.{index}")


def _named_object(module_name: str, spec: str | NamedObject, where: str) -> Any:
    """A name goes to Keras's get(); a name with arguments to the matching class."""
    module = getattr(keras_module(), module_name)
    kind = {"losses": "loss", "metrics": "metric"}[module_name]
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec.name, spec.kwargs)
    if not kwargs and module_name == "metrics" and name in catalog.COMPILE_METRIC_ALIASES:
        return name
    if not kwargs:
        try:
            module.get(name)
        except (ValueError, TypeError):
            raise ConfigError(f"{where}: {_unknown_named_object(module, kind, name)}") from None
        return name
    cls = _class_for(module, name)
    if cls is None:
        public = [n for n, c in vars(module).items() if isinstance(c, type) and n[0] != "_"]
        raise ConfigError(f"{where}: {catalog.no_class_with_arguments(kind, name, public)}")
    check_kwargs(cls, kwargs, where)
    if module_name == "metrics":  # the name monitors may use; unnamed, Keras numbers a second one
        kwargs = {**kwargs, "name": logged_metric_name(name, with_arguments=True)}
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{where}: {first_line(exc)}") from None


def _class_for(module: Any, name: str) -> type | None:
    classes = {_squash(n): c for n, c in vars(module).items() if isinstance(c, type)}
    return classes.get(_squash(name))


def _unknown_named_object(module: Any, kind: str, name: str) -> str:
    cls = _class_for(module, name)
    if cls is not None:
        params = inspect.signature(cls).parameters.values()
        required = [p.name for p in params if p.default is p.empty
                    and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if required:
            return catalog.needs_arguments_form(cls.__name__, required)
    module_name = {"loss": "losses", "metric": "metrics"}[kind]
    aliases = sorted(catalog.COMPILE_METRIC_ALIASES) if kind == "metric" else []
    known = catalog.load_catalog()[module_name] + aliases
    return catalog.unknown_name(module_name, name, known)


def _squash(name: str) -> str:
    return name.replace("_", "").lower()
