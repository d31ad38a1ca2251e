"""Turn the model, optimizer, loss and metrics sections into a compiled keras.Model."""

from __future__ import annotations

import functools
import inspect
import math
import re
from collections.abc import Collection
from typing import Any

from dltrain.backend import keras_module, op_errors, op_message
from dltrain.config import catalog
from dltrain.config.backbone import MANAGED_ARGS, WHERE, check_structure
from dltrain.config.names import logged_metric_name
from dltrain.config.schema import Config, NamedObject, OptimizerConfig
from dltrain.errors import ConfigError
from dltrain.model.backbone import application, backbone_layers, set_preprocessing

MAX_PARAMETERS = 1_000_000_000
MIXED_PRECISION = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


@functools.cache
def layer_registry() -> dict[str, type]:
    """Every public keras.layers class a config may name."""
    keras = keras_module()
    return {name: cls for name, cls in vars(keras.layers).items()
            if isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
            and name not in catalog.FORBIDDEN_LAYERS}


def build_model(config: Config) -> Any:
    """Build and compile the model; every config mistake becomes a ConfigError with its key path.

    The names and arguments are checked against the shipped catalog first, as `show
    --no-summary` does; the checks below repeat them against the live Keras, with the same
    messages, for a Keras the catalog was not made from.
    """
    catalog.check_names(config)
    backbone = check_structure(config)
    keras = keras_module()
    # Layers take the global policy when built: float32 weights, bf16/fp16 compute. Keras wraps
    # the optimizer in a LossScaleOptimizer for mixed_float16 by itself.
    keras.mixed_precision.set_global_policy(MIXED_PRECISION[config.training.mixed_precision])
    model = keras.Sequential([keras.Input(shape=tuple(config.model.input_shape))],
                             name=config.name.replace(".", "_").replace("-", "_"))
    if backbone is not None:
        function = application(backbone.name)
        check_kwargs(function, backbone.kwargs, WHERE, handled=MANAGED_ARGS)
        for layer in backbone_layers(config, backbone, function):
            model.add(layer)
    for index, spec in enumerate(config.model.layers):
        if index == 0 and backbone is not None:
            continue
        ((name, args),) = spec.items()
        where = f"model.layers.{index}.{name}"
        if index == len(config.model.layers) - 1 and config.training.mixed_precision != "none":
            # Keras's advice: the output (a softmax, mostly) in float32, for stable losses and
            # for probabilities that NumPy and scikit-learn read as they are.
            args = {"dtype": "float32", **args}
        layer = make_layer(name, args, where)
        shape = model.output_shape if model.layers else (None, *config.model.input_shape)
        check_parameters(parameters(model) + kernel_size(layer, shape), where)
        try:
            model.add(layer)
        except op_errors() as exc:
            initializer = failed_initializer(name, args, shape, where)
            if initializer is not None:  # not the previous layer's doing
                raise ConfigError(f"{where}.{initializer}: cannot make the layer's weights: "
                                  f"{op_message(exc)}") from None
            raise ConfigError(f"{where}: cannot follow the previous layer's output: "
                              f"{_first_line(exc)}{shape_hint(name, shape)}") from None
        check_parameters(parameters(model), where)
    if backbone is not None:
        set_preprocessing(model, backbone, config.model.input_shape[-1])
    check_one_vector_per_sample(config, model.output_shape)
    config.task_spec.check_output_units(config.loss_name, model.output_shape[-1])
    compile_model(model, config, config.optimizer)
    return model


def check_one_vector_per_sample(config: Config, shape: tuple[Any, ...]) -> None:
    """Classifiers and regressions here score one vector per sample: a Dense straight after
    image layers (no Flatten) answers per pixel, and Keras's loss then fails mid-fit."""
    if len(shape) == 2 or not config.task_spec.knows_loss:
        return
    index = len(config.model.layers) - 1
    ((name, _),) = config.model.layers[index].items()
    raise ConfigError(f"model.layers.{index}.{name}: the model's output has shape "
                      f"{tuple(shape)}, but the loss needs one vector per sample, "
                      f"{(shape[0], shape[-1])}. Add a Flatten (or GlobalAveragePooling2D) layer "
                      "before the last Dense.")


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


def parameters(model: Any) -> int:
    """model.count_params(), also before the first layer (Keras refuses an unbuilt model)."""
    return sum(math.prod(weight.shape) for weight in model.weights)


def check_parameters(count: int, where: str) -> None:
    if count > MAX_PARAMETERS:
        raise ConfigError(f"{where}: the model would have {count:,} parameters, more than "
                          f"{MAX_PARAMETERS:,}; make it smaller.")


def kernel_size(layer: Any, input_shape: tuple[Any, ...]) -> int:
    """The weights a Dense or convolution layer will make for this input, before it makes
    them: adding the layer allocates and initialises them, so a kernel of billions of numbers
    (an input shape or a unit count off by a few digits) exhausted memory before the count
    above could refuse it, and `dltrain show` died with "internal error" or was killed."""
    channels = input_shape[-1] if getattr(layer, "data_format", None) != "channels_first" \
        else input_shape[1]
    if not isinstance(channels, int):
        return 0
    if hasattr(layer, "depth_multiplier"):  # depthwise, then (separable) pointwise
        depthwise = math.prod(layer.kernel_size) * channels * layer.depth_multiplier
        outputs = getattr(layer, "filters", None) or channels * layer.depth_multiplier
        pointwise = channels * layer.depth_multiplier * outputs if hasattr(layer, "filters") else 0
        return depthwise + pointwise + layer.use_bias * outputs
    if hasattr(layer, "filters") and hasattr(layer, "kernel_size"):
        inputs = math.prod(layer.kernel_size) * channels // getattr(layer, "groups", 1)
        return (inputs + layer.use_bias) * layer.filters
    if isinstance(layer, keras_module().layers.Dense):
        return (channels + layer.use_bias) * layer.units
    return 0


def make_layer(name: str, args: dict[str, Any], where: str) -> Any:
    registry = layer_registry()
    if name not in registry:
        raise ConfigError(f"{where}: {catalog.unknown_layer(name, registry)}")
    cls = registry[name]
    check_kwargs(cls, args, where, extra=catalog.BASE_LAYER_ARGS)
    check_value_types(cls, args, where)
    catalog.check_sizes(args, where)
    resolved = {key: _resolve(key, value, f"{where}.{key}") for key, value in args.items()}
    try:
        return cls(**resolved)
    except (ValueError, TypeError, AttributeError) as exc:
        check_nulls(cls, args, where)
        raise ConfigError(f"{where}: {_first_line(exc)}") from None


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


SAMPLE_SHAPES = {1: "[steps, channels], e.g. [100, 1]",
                 2: "[height, width, channels], e.g. [28, 28, 1]",
                 3: "[depth, height, width, channels]"}


def shape_hint(name: str, shape: tuple[Any, ...]) -> str:
    """What a 1D/2D/3D layer takes, where the shape it was given is of another rank (flat
    MNIST rows into Conv2D) or looks channels first (Theano's [1, 28, 28])."""
    found = re.search(r"([123])D", name)
    if found is None:
        return ""
    spatial, sample = int(found.group(1)), list(shape[1:])
    if len(sample) != spatial + 1:
        return (f" {name} takes samples of shape {SAMPLE_SHAPES[spatial]}, channels last; "
                f"this one is {sample}. Set model.input_shape so, or put a Reshape: "
                "{target_shape: [...]} layer before it.")
    if spatial == 2 and sample[0] in (1, 3) and isinstance(sample[-1], int) and sample[-1] > 4:
        return (f" {sample} looks channels first; Keras takes channels last: "
                f"[{sample[1]}, {sample[2]}, {sample[0]}].")
    return ""


def check_nulls(cls: type, args: dict[str, Any], where: str) -> None:
    """A null where Keras needs a value (`padding: null`) fails deep inside Keras; name it."""
    params = inspect.signature(cls).parameters
    for key, value in args.items():
        default = params[key].default if key in params else None
        if value is None and default is not None and default is not inspect.Parameter.empty:
            raise ConfigError(f"{where}.{key}: must not be null. Received: null. Remove it for "
                              f"the default, {default!r}.") from None


def _resolve(key: str, value: Any, where: str) -> Any:
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
        raise ConfigError(f"{where}: {_first_line(exc)}") from None
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
        raise ConfigError(f"optimizer.schedule.name: {catalog.unknown_schedule(cfg.schedule.name, names)}")
    args = cfg.schedule.kwargs
    check_kwargs(cls, args, "optimizer.schedule", handled=catalog.CLASS_PICKER,
                 given=("initial_learning_rate",))
    if "initial_learning_rate" in inspect.signature(cls).parameters:
        args.setdefault("initial_learning_rate", cfg.learning_rate)
    try:
        return cls(**args)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"optimizer.schedule: {_first_line(exc)}") from None


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
        raise ConfigError(f"{where}: {_first_line(exc)}") from None


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


def failed_initializer(name: str, args: dict[str, Any], shape: tuple[Any, ...],
                       where: str) -> str | None:
    """The layer's initializer argument(s) when the layer builds without them after failing with
    them (a Constant value of another shape, a gain that is not a number); None otherwise."""
    given = [key for key in args if key.endswith("_initializer")]
    if not given:
        return None
    keras = keras_module()
    rest = {key: value for key, value in args.items() if key not in given}
    try:
        keras.Sequential([keras.Input(shape[1:]), make_layer(name, rest, where)])
    except Exception:  # it fails without them too: the previous layer's output, say
        return None
    return "/".join(given)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
