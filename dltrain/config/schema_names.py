"""Keras's names in the editor's JSON Schema (`dltrain schema`, dltrain.schema.json): layers
with their arguments, and the optimizer, activation, loss, metric, initializer, regularizer,
constraint, schedule and monitor names, from the shipped catalog.

Every name the config accepts passes (the loader's Keras 2 spellings and case forms too), and
each mistake gets one short message: an editor (yaml-language-server) shows a schema's
`errorMessage` instead of listing the 156 layer names.
"""

from __future__ import annotations

from typing import Any

from dltrain.config.graph import INPUTS_KEY, NAME_KEY, REPEAT
from dltrain.config.model_section import BACKBONE_LAYER
from dltrain.config.names import load_catalog, squash

# Arguments the loader moves from the first layer to model.input_shape (config/keras2.py).
KERAS2_LAYER_ARGS = ("input_shape", "input_dim", "batch_input_shape")
# Layer arguments Keras resolves by name, by the end of the argument's name.
RESOLVED_SUFFIXES = {"activation": "activations", "_initializer": "initializers",
                     "_regularizer": "regularizers", "_constraint": "constraints"}
# Names compile() resolves from the loss rather than through keras.metrics.get().
COMPILE_METRIC_ALIASES = ("accuracy", "acc", "crossentropy", "ce")
# A graph's keys (config/graph.py): a layer's name and inputs, and the Repeat entry.
LAYER_NAME = {"type": "string", "minLength": 1, "description": "The layer's name: later "
              "layers' inputs take it (inside a Repeat, copy k's is name_k)."}
REFERENCE = {"anyOf": [{"type": "string", "minLength": 1}, {"type": "integer", "maximum": -1}]}
LAYER_INPUTS = {"anyOf": [REFERENCE, {"type": "array", "minItems": 1, "items": REFERENCE}],
                "description": "The layers this one takes: names (input: the model's input) or "
                "offsets back (-1 the layer before, the default). Merge layers (Add, "
                "Concatenate, ...) take several: [-1, -4]."}
REPEAT_SCHEMA = {"type": "object", "required": ["times", "layers"], "additionalProperties": False,
                 "description": "These layers `times` times in a row; names inside copy k get "
                 "the suffix _k, offsets count back through the copies.",
                 "properties": {"times": {"type": "integer", "minimum": 1},
                                "layers": {"type": "array", "minItems": 1, "items": {"allOf": [
                                    {"$ref": "#/$defs/Layer"},
                                    {"properties": {BACKBONE_LAYER: {
                                        "not": {}, "errorMessage": "A backbone takes the images: "
                                        "the first layer of model.layers, never repeated."}}}]}}}}
UNKNOWN_LAYER = "Not a keras.layers class: check its spelling (dltrain show names the nearest)."


def with_keras_names(schema: dict[str, Any], backbone: dict[str, Any]) -> dict[str, Any]:
    """`schema` (json_schema()'s) with the catalog's names; `backbone` is the Backbone layer's."""
    catalog = load_catalog()
    defs = schema["$defs"]
    defs["LayerName"] = {"type": "string", "if": {"enum": sorted(catalog["layers"])},
                         "then": True, "else": False, "examples": sorted(catalog["layers"]),
                         "errorMessage": UNKNOWN_LAYER}
    defs["Layer"] = layer_item(catalog, backbone)
    defs["LayerInputs"] = LAYER_INPUTS
    defs["ModelConfig"]["properties"]["layers"]["items"] = {"$ref": "#/$defs/Layer"}
    defs.update({f"keras.{kind}": resolved_names(kind, catalog)
                 for kind in RESOLVED_SUFFIXES.values()})
    optimizer = defs["OptimizerConfig"]["properties"]
    optimizer["name"] = {**optimizer["name"], **any_case(sorted(catalog["optimizer_names"]),
                                                         sorted(catalog["optimizers"]))}
    defs["ScheduleConfig"]["properties"]["name"] = {"type": "string",
                                                    "enum": sorted(catalog["schedules"])}
    schema["properties"]["optimizer"]["anyOf"][0].update(optimizer["name"])
    for module, key in (("losses", "loss"), ("metrics", "metrics")):
        names = [*catalog[module], *(COMPILE_METRIC_ALIASES if module == "metrics" else ())]
        named = named_object(names, sorted(catalog[f"{module}_classes"]), module)
        place = schema["properties"][key]
        (place["items"] if key == "metrics" else place)["anyOf"] = [
            {"type": "string", "enum": names, "errorMessage": unknown(module)}, named]
    monitor = monitor_schema(catalog)
    for section in ("EarlyStoppingConfig", "ReduceLROnPlateauConfig", "CheckpointConfig"):
        defs[section]["properties"]["monitor"].update(monitor)
    defs["SearchConfig"]["properties"]["objective"].update(monitor)
    defs["TrainingConfig"]["properties"]["nb_epoch"] = {
        "type": "integer", "exclusiveMinimum": 0, "deprecated": True,
        "description": "Keras 1's name for epochs; read as training.epochs."}
    return schema


def layer_item(catalog: dict[str, Any], backbone: dict[str, Any]) -> dict[str, Any]:
    """`Name` or `{Name: {arguments}}`, told apart by type so that a mistake in either gets
    one message of its own, not every alternative's."""
    layers = catalog["layers"]
    properties = {name: {"type": ["object", "null"], "additionalProperties": False,
                         "properties": {**{arg: argument_schema(arg) for arg in
                                           [*layers[name]["args"], *KERAS2_LAYER_ARGS]},
                                        NAME_KEY: LAYER_NAME,
                                        INPUTS_KEY: {"$ref": "#/$defs/LayerInputs"}}}
                  for name in sorted(layers)}
    return {"if": {"type": "string"},
            "then": {"$ref": "#/$defs/LayerName", "description": "A keras.layers class without "
                     "arguments."},
            "else": {"type": "object", "minProperties": 1, "maxProperties": 1,
                     "description": "{LayerClass: {its keyword arguments}}",
                     "additionalProperties": False,
                     "properties": {**properties, BACKBONE_LAYER: backbone,
                                    REPEAT: REPEAT_SCHEMA}}}


def argument_schema(arg: str) -> dict[str, Any]:
    """A layer argument's value: a name Keras resolves (activation, *_initializer, ...) is
    checked against the catalog (resolved_names); the others when the model builds."""
    kind = next((kind for suffix, kind in RESOLVED_SUFFIXES.items() if arg.endswith(suffix)),
                None)
    return {} if kind is None else {"$ref": f"#/$defs/keras.{kind}"}


def resolved_names(kind: str, catalog: dict[str, Any]) -> dict[str, Any]:
    """A string must be one of the catalog's names; a mapping {class_name, config} one of its
    classes (initializers, regularizers, constraints)."""
    names = {"if": {"type": "string"}, "then": {"enum": sorted(catalog[kind]),
                                               "errorMessage": unknown(kind)}}
    if f"{kind}_classes" not in catalog:
        return names
    classes = sorted(catalog[f"{kind}_classes"])
    return {**names, "else": {"if": {"type": "object"}, "then": {
        "properties": {"class_name": {"enum": classes}, "config": {"type": ["object", "null"]}},
        "required": ["class_name"]}}}


def unknown(module: str) -> str:
    """An editor's message for a name not in keras.<module>: short, not the whole list."""
    return f"Not a keras.{module} name: check its spelling (dltrain show names the nearest)."


def named_object(names: list[str], classes: list[str], module: str) -> dict[str, Any]:
    """{name: ..., arguments}: a name get() accepts, or a class in any spelling (Keras's
    class_for), which the arguments need."""
    return {"type": "object", "required": ["name"], "additionalProperties": True,
            "description": f"A keras.{module} name or class, with its arguments.",
            "properties": {"name": {"type": "string", "anyOf": [
                {"enum": names}, {"pattern": spelling_pattern(classes)}]}}}


def any_case(names: list[str], classes: list[str]) -> dict[str, Any]:
    """Optimizer names: the loader reads them in any case (Adam, adam, ADAM)."""
    return {"anyOf": [{"enum": sorted({*names, *classes})},
                      {"pattern": spelling_pattern(names, underscores=False)}],
            "errorMessage": unknown("optimizers")}


def monitor_schema(catalog: dict[str, Any]) -> dict[str, Any]:
    """What a monitor may name: loss or a metric Keras logs, maybe val_ and numbered (_1),
    in any case or underscores, as the config reads it (names.meant_metrics)."""
    classes = catalog["metrics_classes"]
    logged = [str(spec.get("logged", name)) for name, spec in classes.items()]
    names = ["loss", *catalog["metrics"], *COMPILE_METRIC_ALIASES, *classes, *logged]
    pattern = spelling_pattern(names)
    common = ["loss", "accuracy", "mae", "mse", "auc", "precision", "recall"]
    return {"anyOf": [{"pattern": f"^(val_)?{pattern[1:-1]}(_[0-9]+)?$"}, {"type": "null"}],
            "examples": [*common, *(f"val_{name}" for name in common)]}


def spelling_pattern(names: list[str], underscores: bool = True) -> str:
    """A regular expression (ECMA-262, which has no case flag) for `names` in any case, and
    with any underscores where `underscores`."""
    between = "_?" if underscores else ""
    words = sorted({squash(name) if underscores else name.lower() for name in names})
    return "^(" + "|".join(between.join(f"[{c}{c.upper()}]" if c.isalpha() else c
                                        for c in word) for word in words) + ")$"
