"""Turn the model, optimizer, loss and metrics sections into a compiled keras.Model."""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from dltrain.backend import keras_module, op_errors, op_message
from dltrain.config import catalog
from dltrain.config.backbone import MANAGED_ARGS, WHERE, check_structure
from dltrain.config.schema import Config
from dltrain.errors import ConfigError
from dltrain.model.arguments import (
    check_kwargs,
    check_nulls,
    check_value_types,
    first_line,
    resolved_argument,
)
from dltrain.model.backbone import application, backbone_layers, set_preprocessing
from dltrain.model.compile import compile_model

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
                              f"{first_line(exc)}{shape_hint(name, shape)}") from None
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
    resolved = {key: resolved_argument(key, value, f"{where}.{key}") for key, value in args.items()}
    try:
        return cls(**resolved)
    except (ValueError, TypeError, AttributeError) as exc:
        check_nulls(cls, args, where)
        raise ConfigError(f"{where}: {first_line(exc)}") from None


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
