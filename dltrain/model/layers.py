"""One layer of a config made with Keras: its class from keras.layers, its arguments checked,
the weights it would make counted before it makes them, and why Keras refused it."""

from __future__ import annotations

import functools
import math
import re
from typing import Any

from dltrain.backend import keras_module, op_message
from dltrain.config import catalog
from dltrain.config.schema import Config
from dltrain.errors import ConfigError
from dltrain.model.arguments import (
    check_kwargs,
    check_nulls,
    check_value_types,
    first_line,
    resolved_argument,
)

MAX_PARAMETERS = 1_000_000_000


@functools.cache
def layer_registry() -> dict[str, type]:
    """Every public keras.layers class a config may name."""
    keras = keras_module()
    return {name: cls for name, cls in vars(keras.layers).items()
            if isinstance(cls, type) and issubclass(cls, keras.layers.Layer)
            and name not in catalog.FORBIDDEN_LAYERS}


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
    # Without its name too: the probe's own input could have it.
    rest = {key: value for key, value in args.items() if key not in (*given, "name")}
    try:
        keras.Sequential([keras.Input(shape[1:]), make_layer(name, rest, where)])
    except Exception:  # it fails without them too: the previous layer's output, say
        return None
    return "/".join(given)


def model_name(config: Config) -> str:
    return config.name.replace(".", "_").replace("-", "_")


def layer_args(config: Config, last: bool, args: dict[str, Any]) -> dict[str, Any]:
    """A layer's arguments as Keras gets them: the output layer in float32 under mixed precision."""
    if last and keras_module().mixed_precision.global_policy().name != "float32":
        # Keras's advice: the output (a softmax, mostly) in float32, for stable losses and
        # for probabilities that NumPy and scikit-learn read as they are.
        return {"dtype": "float32", **args}
    return args


def layer_failed(exc: BaseException, name: str, args: dict[str, Any], shape: tuple[Any, ...],
                 where: str) -> ConfigError:
    """Keras refused the layer on this input: its initializer, else the input it was given."""
    initializer = failed_initializer(name, args, shape, where)
    if initializer is not None:  # not the previous layer's doing
        return ConfigError(f"{where}.{initializer}: cannot make the layer's weights: "
                           f"{op_message(exc)}")
    return ConfigError(f"{where}: cannot follow the previous layer's output: "
                       f"{first_line(exc)}{shape_hint(name, shape)}")
