"""model.layers as a graph (dltrain/config/graph.py): `name:` and `inputs:`, Repeat unrolled with
suffixed names, and each reference mistake named at its key and line, without Keras."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, write_yaml
from dltrain.config.graph import MODEL_INPUT, described, graph_lines, is_chain, nodes
from dltrain.config.load import load_config
from dltrain.errors import ConfigError

HEAD = """\
name: tiny
dataset: {name: fashion_mnist_mini}
loss: sparse_categorical_crossentropy
model:
  input_shape: [8, 8, 1]
  layers:
"""
RESIDUAL = HEAD + """\
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: stem}
    - Repeat:
        times: 2
        layers:
          - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: conv}
          - BatchNormalization: {}
          - Add: {inputs: [-1, -3], name: sum}
          - Activation: {activation: relu}
    - GlobalAveragePooling2D: {}
    - Dense: {units: 10, activation: softmax, inputs: -1}
"""


def graph_of(tmp_path: Path, text: str) -> list:
    return load_config(write_yaml(tmp_path / "graph.yaml", text)).config.model.nodes


def error(tmp_path: Path, layers: str) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write_yaml(tmp_path / "bad.yaml", HEAD + layers))
    return str(caught.value)


def test_a_residual_config_unrolls_with_each_layers_inputs(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, RESIDUAL)
    assert [(node.name, node.layer, node.inputs) for node in graph] == [
        ("stem", "Conv2D", (MODEL_INPUT,)),
        ("conv_1", "Conv2D", (0,)), (None, "BatchNormalization", (1,)),
        ("sum_1", "Add", (2, 0)), (None, "Activation", (3,)),  # -3: the block's input
        ("conv_2", "Conv2D", (4,)), (None, "BatchNormalization", (5,)),
        ("sum_2", "Add", (6, 4)), (None, "Activation", (7,)),
        (None, "GlobalAveragePooling2D", (8,)), (None, "Dense", (9,))]
    assert graph[5].where == "model.layers.1.Repeat.layers.0.Conv2D"
    assert graph[5].copy == "copy 2 of 2" and "inputs" not in graph[10].args
    assert not is_chain(graph)
    assert described(graph)[3]["inputs"] == ["#2", "stem"]
    assert graph_lines(graph)[3].split()[:5] == ["#3", "sum_1", "Add", "<-", "#2,"]


def test_names_resolve_to_the_copys_own_layer_first_then_outside(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, HEAD + """\
    - Dense: {units: 4, name: a}
    - Repeat:
        times: 2
        layers:
          - Dense: {units: 4, name: a}
          - Dense: {units: 4, name: b}
          - Concatenate: {inputs: [a, b, input]}
          - Repeat: {times: 2, layers: [{Dense: {units: 4, name: c}}, {Add: {inputs: [c, b]}}]}
    - Dense: {units: 3, inputs: -1}
""")
    named = {node.name: index for index, node in enumerate(graph) if node.name}
    assert set(named) == {"a", "a_1", "b_1", "c_1_1", "c_1_2", "a_2", "b_2", "c_2_1", "c_2_2"}
    concat = [node for node in graph if node.layer == "Concatenate"]
    assert concat[1].inputs == (named["a_2"], named["b_2"], MODEL_INPUT)
    # the nested copy's own c, and b of the copy around it
    assert graph[named["c_2_2"] + 1].inputs == (named["c_2_2"], named["b_2"])


def test_a_name_in_a_repeat_never_takes_an_outside_layer_that_ends_like_a_suffix(
        tmp_path: Path) -> None:
    graph = graph_of(tmp_path, HEAD + """\
    - Dense: {units: 4, name: x}
    - Dense: {units: 4, name: x_1}
    - Dense: {units: 4, name: stage_1, inputs: x}
    - Dense: {units: 4, name: stage_2, inputs: stage_1}
    - Dense: {units: 4, name: stage, inputs: [x_1]}
    - Concatenate: {inputs: [stage, stage_2]}
    - Repeat:
        times: 2
        layers:
          - Dense: {units: 4}
          - Add: {inputs: [x, -1]}
          - Concatenate: {inputs: [stage, -1]}
    - Dense: {units: 3}
""")
    named = {node.name: index for index, node in enumerate(graph) if node.name}
    adds = [node for node in graph if node.layer == "Add"]
    assert [node.inputs[0] for node in adds] == [named["x"], named["x"]]  # x, in each copy
    joins = [node for node in graph if node.layer == "Concatenate"][1:]
    assert [node.inputs[0] for node in joins] == [named["stage"], named["stage"]]


def test_a_model_without_inputs_or_repeat_is_the_same_chain() -> None:
    for path in sorted(CONFIGS.glob("*.yaml")):
        layers = yaml.safe_load(path.read_text())["model"]["layers"]
        graph = nodes(layers)
        if path.stem == "fashion_mnist_resnet":
            assert not is_chain(graph)
            assert sum(node.layer == "Add" for node in graph) == 6  # six residual blocks
            continue
        assert is_chain(graph), path.name
        assert [node.layer for node in graph] == [next(iter(
            {spec: {}} if isinstance(spec, str) else spec)) for spec in layers]


def test_a_chain_written_as_a_repeat_stays_sequential(tmp_path: Path) -> None:
    graph = graph_of(tmp_path, HEAD + """\
    - Flatten
    - Repeat: {times: 3, layers: [{Dense: {units: 8, name: hidden}}, Dropout: {rate: 0.1}]}
    - Dense: {units: 10, inputs: [-1]}
""".replace("Dropout: {rate: 0.1}", "{Dropout: {rate: 0.1}}"))
    assert is_chain(graph) and len(graph) == 8
    assert [node.name for node in graph if node.name] == ["hidden_1", "hidden_2", "hidden_3"]


@pytest.mark.parametrize(("layers", "expected"), [
    ("    - Dense: {units: 4, inputs: [nope]}\n",
     "model.layers.0.Dense.inputs (line 7): no layer is named 'nope'. No layer has a name yet"),
    ("    - Dense: {units: 4, name: first}\n    - Dense: {units: 4, inputs: frist}\n",
     "model.layers.1.Dense.inputs (line 8): no layer is named 'frist'. Did you mean 'first'?"),
    ("    - Dense: {units: 4, name: a}\n    - Dense: {units: 4, inputs: c}\n"
     "    - Dense: {units: 4, name: c, inputs: a}\n",
     "model.layers.1.Dense.inputs (line 8): 'c' is written after this layer "
     "(model.layers.2.Dense); a layer takes earlier layers' outputs only. Move 'c' above"),
    ("    - Dense: {units: 4, name: a, inputs: b}\n    - Dense: {units: 4, name: b, inputs: a}\n"
     "    - Dense: {units: 4}\n",
     "model.layers.0.Dense.inputs (line 7): a cycle: 'a' takes 'b', which takes 'a' (a layer "
     "without inputs: takes the one before)."),
    ("    - Dense: {units: 4, name: me, inputs: me}\n",
     "model.layers.0.Dense.inputs (line 7): a cycle: 'me' takes 'me' ("),
    ("    - Dense: {units: 4, name: a}\n    - Dense: {units: 4, name: a}\n",
     "model.layers.1.Dense.name (line 8): the name 'a' is used twice: also by "
     "model.layers.0.Dense. Give each layer its own name."),
    ("    - Dense: {units: 4, name: input}\n",
     "model.layers.0.Dense.name (line 7): 'input' names the model's input"),
    ("    - Repeat: {times: 2, layers: [{Dense: {units: 4, name: a}}]}\n"
     "    - Dense: {units: 4, inputs: a}\n",
     "model.layers.1.Dense.inputs (line 8): no layer is named 'a'. Inside a Repeat names get a "
     "suffix per copy: a_1, a_2."),
    ("    - Dense: {units: 4}\n    - Dense: {units: 4, inputs: -3}\n",
     "model.layers.1.Dense.inputs (line 8): offset -3 reaches before the model's input: this is "
     "layer 2 of the unrolled model, so -2 is the input. Received: -3."),
    ("    - Dense: {units: 4}\n    - Dense: {units: 4, inputs: '-1'}\n",
     "model.layers.1.Dense.inputs (line 8): no layer is named '-1'. An offset is a number, "
     "without quotes: inputs: -1."),
    ("    - Dense: {units: 4, inputs: 1}\n",
     "model.layers.0.Dense.inputs (line 7): an offset counts back from this layer"),
    ("    - Dense: {units: 4}\n    - Add: {inputs: -1}\n",
     "model.layers.1.Add.inputs (line 8): Add merges two or more inputs, e.g. inputs: [-1, -3]. "
     "Received: 1."),
    ("    - Dense: {units: 4}\n    - Dense: {units: 4}\n    - Subtract: {inputs: [-1, -2, input]}\n",
     "model.layers.2.Subtract.inputs (line 9): Subtract merges exactly 2 inputs"),
    ("    - Dense: {units: 4}\n    - Dense: {units: 4, inputs: [-1, -2]}\n",
     "model.layers.1.Dense.inputs (line 8): Dense takes one input; merge several first with Add "
     "or Concatenate. Received: 2."),
    ("    - Dense: {units: 4}\n    - Dense: {units: 4, inputs: input}\n",
     "model.layers.0.Dense (line 7): nothing takes this layer's output; the model's output is "
     "the last layer (model.layers.1.Dense)."),
    ("    - Repeat: {times: 0, layers: [Dense]}\n",
     "model.layers.0.Repeat.times (line 7): how many copies, a positive integer. Received: 0."),
    ("    - Repeat: {times: 2, layer: [Dense]}\n",
     "model.layers.0.Repeat.layer (line 7): unknown key; a Repeat takes times and layers"),
    ("    - Repeat: {times: 2, layers: []}\n",
     "model.layers.0.Repeat.layers (line 7): the layers to repeat, a non-empty list"),
    ("    - Repeat:\n        times: 2\n        layers:\n          - Dense: 4\n",
     "model.layers.0.Repeat.layers.0.Dense (line 10): Dense's arguments are a mapping, by name."),
    ("    - Dense: {units: 4}\n    - Repeat: {times: 2, layers: [{Backbone: {name: ResNet50}}]}\n",
     "model.layers.1.Repeat.layers.0.Backbone (line 8): a backbone takes the images"),
    ("    - Repeat: {times: 100000, layers: [Dense]}\n",
     "model.layers.0.Repeat.layers.0 (line 7): the model unrolls to more than 2,000 layers"),
])
def test_each_graph_mistake_is_named_at_its_key_and_line(tmp_path: Path, layers: str,
                                                         expected: str) -> None:
    message = error(tmp_path, layers)
    assert message.startswith("bad.yaml: ") or "bad.yaml: " in message
    assert expected in message, message


def test_a_layer_class_that_is_no_name_is_refused_in_a_repeat(tmp_path: Path) -> None:
    assert ("model.layers.0.Repeat.layers.0 (line 7): a layer is named by its keras.layers class, "
            "like Dense. Received: 5.") in error(tmp_path, "    - Repeat: {times: 2, layers: "
                                                 "[{5: {}}]}\n")
