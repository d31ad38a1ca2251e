"""A checkpoint against the config a resume trains it with: Keras loads last.keras with the model
it holds, whatever config.yaml says, so a config edited together with manifest.json's hash
trained the old model on under a config that described another."""

from __future__ import annotations

from itertools import zip_longest
from pathlib import Path
from typing import Any

from dltrain.config.schema import Config
from dltrain.errors import RunError


def check_architecture(config_path: Path, config: Config, model: Any, checkpoint: Path) -> None:
    """`model` (loaded from `checkpoint`) layer by layer against the model `config` builds: its
    class, weight shapes and settings; a model built rather than loaded (no checkpoint yet)
    passes.

    Raises:
        RunError: naming config.yaml and the first layer that differs.
    """
    if not checkpoint.is_file():
        return
    from dltrain.model.build import build_model

    built = build_model(without_weights(config))
    # mixed_precision auto is the machine's choice: a run resumes in the precision it started in.
    machine = config.training.mixed_precision == "auto"
    wanted = [("the input", None, {"shape": list(built.input_shape)})] + layers(built, machine)
    del built
    found = [("the input", None, {"shape": list(model.input_shape)})] + layers(model, machine)
    for index, (want, have) in enumerate(zip_longest(wanted, found)):
        if want != have:
            where = "the input" if index == 0 else f"layer {index} ({(want or have)[0]})"
            raise RunError(f"{config_path}: its model differs from the one {checkpoint.name} "
                           f"holds, at {where}: {difference(want, have, checkpoint.name)}. A run "
                           "resumes with the model it was trained with: put the run's own "
                           f"{config_path.name} back, or train the change as a new run: dltrain "
                           f"fit {config_path} --run-dir NEW_FOLDER.")


def without_weights(config: Config) -> Config:
    """The config with a backbone's weights left out: they never change the architecture, and
    the checkpoint holds them (the file may have moved since, ImageNet's cache be empty)."""
    from dltrain.config.backbone import BACKBONE_LAYER

    first = config.model.layers[0] if config.model.layers else {}
    if BACKBONE_LAYER not in first:
        return config
    copy = config.model_copy(deep=True)
    copy.model.layers[0][BACKBONE_LAYER]["weights"] = None
    return copy


def layers(model: Any, any_dtype: bool = False) -> list[tuple[str, Any, dict[str, Any]]]:
    """Each layer's class, weight shapes and settings. Not its name (Keras numbers them per
    process) nor whether it trains (fine-tuning unfreezes layers during a run), nor its dtype
    policy with `any_dtype`; a nested model (a backbone) by its class and weights only: its own
    layers' names are in its settings."""
    ignored = ("name", "trainable", "dtype") if any_dtype else ("name", "trainable")
    out = []
    graph = type(model).__name__ != "Sequential"
    position = {id(layer): index for index, layer in enumerate(model.layers)}
    for layer in model.layers:
        shapes = [[int(size) for size in weight.shape] for weight in layer.weights]
        nested = hasattr(layer, "layers")
        settings = {} if nested else {key: value for key, value in layer.get_config().items()
                                      if key not in ignored}
        if graph:  # a graph config's wiring: which layers (by place) each one takes
            settings["inputs"] = inputs_of(layer, position)
        out.append((type(layer).__name__, shapes, settings))
    return out


def inputs_of(layer: Any, position: dict[int, int]) -> list[int]:
    """The places in model.layers of the layers whose outputs `layer` takes in the model."""
    nodes = getattr(layer, "_inbound_nodes", None) or []
    return [position.get(id(tensor._keras_history.operation), -1)
            for tensor in (nodes[0].input_tensors if nodes else [])]


def difference(want: Any, have: Any, checkpoint: str) -> str:
    """The first thing that differs, in words."""
    if want is None:
        return f"config.yaml builds no layer there, {checkpoint} holds a {have[0]}"
    if have is None:
        return f"config.yaml builds a {want[0]}, {checkpoint} holds no layer there"
    if want[0] != have[0]:
        return f"config.yaml builds a {want[0]}, {checkpoint} holds a {have[0]}"
    if want[1] != have[1]:
        return f"config.yaml makes weights of shapes {want[1]}, {checkpoint} holds {have[1]}"
    key = next(key for key in sorted(set(want[2]) | set(have[2]))
               if want[2].get(key) != have[2].get(key))
    return (f"{key} is {_short(want[2].get(key))} in config.yaml, {_short(have[2].get(key))} in "
            f"{checkpoint}")


def _short(value: Any) -> str:
    text = _readable(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _readable(value: Any) -> str:
    """repr; a serialised Keras object by its class and settings, a dtype policy by its name."""
    if isinstance(value, dict) and {"class_name", "config"} <= set(value):
        settings = value["config"]
        if isinstance(settings, dict) and set(settings) == {"name"}:
            return repr(settings["name"])
        return f"{value['class_name']}({settings!r})"
    return repr(value)
