"""Turn the model, optimizer, loss and metrics sections into a compiled keras.Model."""

from __future__ import annotations

from typing import Any

from dltrain.backend import keras_module, op_errors, op_message
from dltrain.config import catalog
from dltrain.config.backbone import MANAGED_ARGS, WHERE, check_structure
from dltrain.config.schema import Config
from dltrain.errors import ConfigError
from dltrain.model.arguments import check_kwargs, first_line
from dltrain.model.backbone import application, backbone_layers, set_preprocessing
from dltrain.model.compile import compile_model
from dltrain.model.layers import (
    check_parameters,
    failed_initializer,
    kernel_size,
    make_layer,
    parameters,
    shape_hint,
)

MIXED_PRECISION = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}


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
