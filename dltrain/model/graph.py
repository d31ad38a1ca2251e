"""A graph of layers (config/graph.py's nodes) as a Keras functional model, plain Keras layers
only: the saved .keras file loads with keras.saving.load_model and no custom objects."""

from __future__ import annotations

import math
import re
from typing import Any

from dltrain.backend import keras_module, op_errors, op_message
from dltrain.config.graph import INPUT, MODEL_INPUT, NAME_KEY, Node
from dltrain.config.schema import Config
from dltrain.errors import ConfigError
from dltrain.model.arguments import first_line
from dltrain.model.layers import (
    check_parameters,
    failed_initializer,
    kernel_size,
    layer_args,
    layer_failed,
    make_layer,
    model_name,
)


def functional_model(config: Config, graph: list[Node], first: list[Any]) -> Any:
    """keras.Model(inputs, outputs) over `graph`; `first` (a backbone's layers, in a row) stands
    for its first node. Every mistake is a ConfigError at the node's key."""
    keras = keras_module()
    # Named as configs name it, a name no layer may take: Keras's own (input_layer) could be.
    inputs = keras.Input(shape=tuple(config.model.input_shape), name=INPUT)
    outputs: list[Any] = []
    weights = 0
    names = keras_names(graph, first)
    for index, node in enumerate(graph):
        if index == 0 and first:
            tensor = inputs
            for layer in first:
                tensor = layer(tensor)
            outputs.append(tensor)
            weights += sum(_size(layer) for layer in first)
            continue
        args = layer_args(config, index == len(graph) - 1, {**node.args, NAME_KEY: names[index]})
        layer = make_layer(node.layer, args, node.where)
        taken = [inputs if source == MODEL_INPUT else outputs[source] for source in node.inputs]
        shape = tuple(taken[0].shape)
        check_parameters(weights + kernel_size(layer, shape), node.where)
        try:
            outputs.append(layer(taken if len(taken) > 1 else taken[0]))
        except op_errors() as exc:
            if len(taken) > 1:
                raise merge_failed(exc, node, graph, taken) from None
            raise input_failed(exc, index, graph, args, shape) from None
        weights += _size(layer)
        check_parameters(weights, node.where)
    return keras.Model(inputs, outputs[-1], name=model_name(config))


def keras_names(graph: list[Node], first: list[Any]) -> list[str]:
    """Each node's Keras name: its `name:`, else its class's (dense, dense_1, ... as a fresh
    Keras process names them) where no written name or backbone layer has it. Keras numbers
    the names it makes per process and refuses a model with one name twice, so a written `add_1`
    (Repeat's suffix) beside an unnamed Add failed, or not, by how many models came before.

    Raises:
        ConfigError: at a `name:` that one of the backbone's own layers has.
    """
    reserved = {INPUT, *(layer.name for layer in first)}
    taken = reserved | {node.name for node in graph if node.name}
    counts: dict[str, int] = {}
    names = []
    for node in graph:
        if node.name in reserved:
            raise ConfigError(f"{node.where}.{NAME_KEY}: the backbone's block has a layer named "
                              f"'{node.name}' ({', '.join(layer.name for layer in first)}); "
                              "give this layer another name.")
        name = node.name
        while name is None or (name in taken and not node.name):
            count = counts[node.layer] = counts.get(node.layer, -1) + 1
            name = snake_case(node.layer) + (f"_{count}" if count else "")
        taken.add(name)
        names.append(name)
    return names


def snake_case(name: str) -> str:
    """A class name as Keras names its layers: Conv2D conv2d, BatchNormalization
    batch_normalization (keras.src.utils.naming.to_snake_case)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _size(layer: Any) -> int:
    return sum(math.prod(weight.shape) for weight in layer.weights)


def source_label(graph: list[Node], source: int) -> str:
    return "the model's input" if source == MODEL_INPUT else graph[source].label()


def merge_failed(exc: BaseException, node: Node, graph: list[Node], taken: list[Any]) -> ConfigError:
    """The merge's inputs disagree: both layers and both shapes, and the usual fix."""
    shapes = [tuple(tensor.shape) for tensor in taken]
    other = next((index for index, shape in enumerate(shapes) if shape != shapes[0]), None)
    if other is None:
        return ConfigError(f"{node.where}: cannot merge its inputs ({shapes[0]} each): "
                           f"{first_line(exc)}")
    first, second = node.inputs[0], node.inputs[other]
    return ConfigError(
        f"{node.where}: cannot merge its inputs: {source_label(graph, first)} gives "
        f"{shapes[0]}, {source_label(graph, second)} gives {shapes[other]}; "
        + _merge_rule(node, shapes[0]))


def _merge_rule(node: Node, shape: tuple[Any, ...]) -> str:
    """What the merge layer takes, and the usual fix."""
    if node.layer == "Dot":
        return (f"Dot takes two inputs of the same size along the axes it multiplies (axes: "
                f"{node.args.get('axes')!r}). Set its axes to ones of one size, or make the "
                "sizes agree, e.g. a Dense on one path.")
    kind = ("all but the last axis the same" if node.layer == "Concatenate"
            else "the same shape")
    return (f"{node.layer} takes inputs of {kind}. Make the two paths agree, e.g. a 1x1 Conv2D "
            f"on the shortcut ({{filters: {shape[-1]}, kernel_size: 1}}, with the other path's "
            "strides).")


def input_failed(exc: BaseException, index: int, graph: list[Node], args: dict[str, Any],
                 shape: tuple[Any, ...]) -> ConfigError:
    """Keras refused the layer: its initializer, else the input it takes, named."""
    node = graph[index]
    if node.inputs[0] == index - 1:  # the layer before: said as in a Sequential model
        return layer_failed(exc, node.layer, args, shape, node.where)
    initializer = failed_initializer(node.layer, args, shape, node.where)
    if initializer is not None:
        return ConfigError(f"{node.where}.{initializer}: cannot make the layer's weights: "
                           f"{op_message(exc)}")
    return ConfigError(f"{node.where}: cannot take the output of "
                       f"{source_label(graph, node.inputs[0])}, of shape {shape}: "
                       f"{first_line(exc)}")
