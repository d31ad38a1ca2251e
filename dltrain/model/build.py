"""Turn the model, optimizer, loss and metrics sections into a compiled keras.Model."""

from __future__ import annotations

from typing import Any

from dltrain.backend import dtype_policy, keras_module, op_errors
from dltrain.config import catalog
from dltrain.config.backbone import MANAGED_ARGS, WHERE, check_structure
from dltrain.config.graph import INPUT, NAME_KEY, Node, is_chain
from dltrain.config.model_section import BackboneConfig
from dltrain.config.schema import Config
from dltrain.errors import ConfigError
from dltrain.model.arguments import check_kwargs
from dltrain.model.backbone import application, backbone_layers, set_preprocessing
from dltrain.model.compile import compile_model
from dltrain.model.graph import functional_model, keras_names
from dltrain.model.layers import (
    check_parameters,
    kernel_size,
    layer_args,
    layer_failed,
    make_layer,
    model_name,
    parameters,
)


def build_model(config: Config) -> Any:
    """Build and compile the model; every config mistake becomes a ConfigError with its key path.

    The names and arguments are checked against the shipped catalog first, as `show
    --no-summary` does; the checks below repeat them against the live Keras, with the same
    messages, for a Keras the catalog was not made from. Layers that each take the one before
    make a keras.Sequential model, as before graphs; any other wiring a functional one.
    """
    catalog.check_names(config)
    backbone = check_structure(config)
    keras = keras_module()
    # Layers take the global policy when built: float32 weights, bf16/fp16 compute. Keras wraps
    # the optimizer in a LossScaleOptimizer for mixed_float16 by itself.
    keras.mixed_precision.set_global_policy(dtype_policy(config.training.mixed_precision))
    graph = config.model.nodes
    first = backbone_block(config, backbone)
    make = sequential_model if is_chain(graph) else functional_model
    model = make(config, graph, first)
    if backbone is not None:
        set_preprocessing(model, backbone, config.model.input_shape[-1])
    check_one_vector_per_sample(config, model.output_shape)
    config.task_spec.check_output_units(config.loss_name, model.output_shape[-1])
    compile_model(model, config, config.optimizer)
    return model


def backbone_block(config: Config, backbone: BackboneConfig | None) -> list[Any]:
    """The layers that stand for model.layers.0 when it is a Backbone; none otherwise."""
    if backbone is None:
        return []
    function = application(backbone.name)
    check_kwargs(function, backbone.kwargs, WHERE, handled=MANAGED_ARGS)
    return backbone_layers(config, backbone, function)


def sequential_model(config: Config, graph: list[Node], first: list[Any]) -> Any:
    """A chain of layers (each takes the one before) as keras.Sequential."""
    keras = keras_module()
    # Named as a graph's input is: Keras's own name (input_layer_N) could be a layer's.
    model = keras.Sequential([keras.Input(shape=tuple(config.model.input_shape), name=INPUT)],
                             name=model_name(config))
    for layer in first:
        model.add(layer)
    names = keras_names(graph, first)
    for index, node in enumerate(graph):
        if index == 0 and first:
            continue
        args = layer_args(config, index == len(graph) - 1, {**node.args, NAME_KEY: names[index]})
        layer = make_layer(node.layer, args, node.where)
        shape = model.output_shape if model.layers else (None, *config.model.input_shape)
        check_parameters(parameters(model) + kernel_size(layer, shape), node.where)
        try:
            model.add(layer)
        except op_errors() as exc:
            raise layer_failed(exc, node.layer, args, shape, node.where) from None
        check_parameters(parameters(model), node.where)
    return model


def check_one_vector_per_sample(config: Config, shape: tuple[Any, ...]) -> None:
    """Classifiers and regressions here score one vector per sample: a Dense straight after
    image layers (no Flatten) answers per pixel, and Keras's loss then fails mid-fit."""
    if len(shape) == 2 or not config.task_spec.knows_loss:
        return
    raise ConfigError(f"{config.model.nodes[-1].where}: the model's output has shape "
                      f"{tuple(shape)}, but the loss needs one vector per sample, "
                      f"{(shape[0], shape[-1])}. Add a Flatten (or GlobalAveragePooling2D) layer "
                      "before the last Dense.")
