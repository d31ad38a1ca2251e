"""The editor's JSON Schema knows Keras's names (dltrain/config/schema_names.py): a typo in an
optimizer, activation, loss, metric, initializer or monitor name fails in the editor, every
config dltrain accepts passes, and an unknown layer gets one short message."""

from __future__ import annotations

import copy
import json
from typing import Any

import jsonschema
import pytest
import yaml

from conftest import CONFIGS, ROOT
from dltrain.config.starter import TEMPLATES, template_text
from dltrain.config.starter import editor_schema as make_schema

QUICKSTART = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return make_schema()


def problems(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    validator = jsonschema.Draft202012Validator(schema)
    return [error.message for error in validator.iter_errors(document)]


def changed(path: str, value: Any, base: dict[str, Any] = QUICKSTART) -> dict[str, Any]:
    document = copy.deepcopy(base)
    *parents, last = path.split(".")
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target.setdefault(part, {})
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
    return document


def test_the_shipped_file_is_what_dltrain_schema_prints(schema: dict[str, Any]) -> None:
    assert json.loads((ROOT / "dltrain.schema.json").read_text()) == schema


def test_every_shipped_config_and_template_passes(schema: dict[str, Any]) -> None:
    for path in sorted(CONFIGS.glob("*.yaml")):
        assert problems(yaml.safe_load(path.read_text()), schema) == [], path.name
    for template in TEMPLATES:
        assert problems(yaml.safe_load(template_text(template)), schema) == [], template


@pytest.mark.parametrize(("path", "value"), [
    ("optimizer", {"name": "adamm"}), ("optimizer", "adamm"),
    ("model.layers.3", {"Dense": {"units": 10, "activation": "softmaks"}}),
    ("model.layers.3", {"Dense": {"units": 10, "kernel_initializer": "glorot_unifrom"}}),
    ("model.layers.3", {"Dense": {"units": 10, "kernel_initializer": {"class_name": "Glorot"}}}),
    ("loss", "categorical_crossentropyy"), ("loss", {"name": "Hubber", "delta": 1.0}),
    ("metrics", ["acuracy"]), ("metrics", [{"name": "Precission"}]),
    ("training.early_stopping", {"monitor": "val_acuracy"}),
    ("training.checkpoint", {"monitor": "val_los"}),
    ("optimizer", {"name": "adam", "schedule": {"name": "CosineDecayy", "decay_steps": 10}}),
])
def test_a_misspelt_keras_name_fails(path: str, value: Any, schema: dict[str, Any]) -> None:
    assert problems(changed(path, value), schema)


@pytest.mark.parametrize(("path", "value"), [
    # case forms and Keras 2 spellings the loader accepts or rewrites
    ("optimizer", {"name": "Adam", "lr": 0.01}), ("optimizer", "RMSprop"), ("optimizer", "SGD"),
    ("optimizer", {"name": "adamw", "weight_decay": 0.01}),
    ("training.nb_epoch", 2),
    ("model.layers.1", {"Dense": {"units": 8, "input_dim": 784}}),
    ("loss", "MeanSquaredError"), ("loss", {"name": "huber", "delta": 2.0}),
    ("loss", {"name": "categorical_crossentropy", "label_smoothing": 0.1}),
    ("metrics", ["acc", "Precision", {"name": "AUC"}, {"name": "recall", "thresholds": 0.4}]),
    ("training.early_stopping", {"monitor": "val_Precision"}),
    ("training.reduce_lr_on_plateau", {"monitor": "val_acc"}),
    ("training.checkpoint", {"monitor": "precision_1"}),
    ("model.layers.3", {"Dense": {"units": 10, "activation": "softmax",
                                  "kernel_initializer": {"class_name": "GlorotUniform",
                                                         "config": {"seed": 1}},
                                  "kernel_regularizer": "l2", "bias_constraint": None}}),
    ("model.layers.3", {"Dense": {"units": 10, "kernel_initializer": "he_normal"}}),
])
def test_what_the_config_accepts_passes(path: str, value: Any, schema: dict[str, Any]) -> None:
    assert problems(changed(path, value), schema) == []


@pytest.mark.parametrize("layer", [{"Dens": {"units": 10}}, "Dens", {"Dens": None}])
def test_an_unknown_layer_gets_one_short_message(layer: Any, schema: dict[str, Any]) -> None:
    document = changed("model.layers.3", layer)
    best = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(document))
    assert best is not None and "Dens" in best.message
    assert len(best.message) < 300, best.message
    # yaml-language-server shows the schema's own errorMessage where one is given
    assert all(len(message) < 300 for message in find_key(schema, "errorMessage"))


def find_key(node: Any, key: str) -> list[Any]:
    if isinstance(node, dict):
        return ([node[key]] if key in node else []) + [v for value in node.values()
                                               for v in find_key(value, key)]
    if isinstance(node, list):
        return [v for value in node for v in find_key(value, key)]
    return []


GRAPH_LAYERS = [
    {"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "name": "stem"}},
    {"Repeat": {"times": 2, "layers": [
        {"Conv2D": {"filters": 4, "kernel_size": 3, "padding": "same", "name": "conv"}},
        "BatchNormalization", {"Add": {"inputs": [-1, "stem"]}}]}},
    {"Concatenate": {"inputs": ["conv_2", "input"]}},
    {"GlobalAveragePooling2D": {"inputs": -1}}, {"Dense": {"units": 10}}]


def test_a_graph_config_passes_and_its_keys_are_described(schema: dict[str, Any]) -> None:
    assert problems(changed("model.layers", GRAPH_LAYERS), schema) == []
    dense = schema["$defs"]["Layer"]["else"]["properties"]["Dense"]["properties"]
    assert "offsets back" in schema["$defs"]["LayerInputs"]["description"]
    assert dense["inputs"] == {"$ref": "#/$defs/LayerInputs"} and "name" in dense
    assert "suffix" in schema["$defs"]["Layer"]["else"]["properties"]["Repeat"]["description"]


@pytest.mark.parametrize("layer", [
    {"Dense": {"units": 10, "inputs": 1.5}}, {"Dense": {"units": 10, "inputs": [0]}},
    {"Dense": {"units": 10, "inputs": []}}, {"Repeat": {"layers": ["Flatten"]}},
    {"Repeat": {"times": 0, "layers": ["Flatten"]}}, {"Repeat": {"times": 2, "layers": ["Dens"]}},
    {"Repeat": {"times": 2, "layers": [{"Dense": {"unit": 3}}]}},
    {"Repeat": {"times": 2, "layers": [{"Backbone": {"name": "MobileNetV2"}}]}},
])
def test_a_graph_mistake_fails_in_the_editor(layer: Any, schema: dict[str, Any]) -> None:
    assert problems(changed("model.layers.3", layer), schema)
