"""What Keras lets a config name, read from a shipped JSON catalog instead of importing Keras.

`tools/make_keras_catalog.py` writes the catalog from the installed Keras; a test fails when it
goes stale. The messages for unknown names and arguments are made here, for the catalog's
checks and for `model.build`'s alike, so both say the same thing.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable
from importlib import metadata
from typing import TYPE_CHECKING, Any

from dltrain.config.backbone import WHERE as BACKBONE_WHERE
from dltrain.config.backbone import check_size, check_structure
from dltrain.config.fields import NamedObject
from dltrain.config.model_section import BackboneConfig
from dltrain.config.names import class_for, did_you_mean, load_catalog, same_style
from dltrain.config.schema import Config
from dltrain.config.schema_names import COMPILE_METRIC_ALIASES, RESOLVED_SUFFIXES
from dltrain.config.task import check_task
from dltrain.config.training_section import OptimizerConfig
from dltrain.errors import ConfigError

if TYPE_CHECKING:
    from dltrain.config.load import Loaded

# Layers a config may not name: they run arbitrary code or wrap other frameworks.
FORBIDDEN_LAYERS = frozenset({"Lambda", "TFSMLayer", "JaxLayer", "FlaxLayer", "TorchModuleWrapper",
                              "Layer", "InputLayer", "InputSpec", "Input"})
# Keras 2 layer names that Keras 3 dropped.
RENAMED_LAYERS = {"Deconvolution2D": "Conv2DTranspose", "Deconvolution3D": "Conv3DTranspose",
                  "CuDNNLSTM": "LSTM", "CuDNNGRU": "GRU", "Merge": "Concatenate or Add"}
# Keras 1 and 2 argument names with today's, each hinted where its owner takes today's.
RENAMED_ARGUMENTS = {
    "border_mode": "padding", "output_dim": "units", "nb_filter": "filters",
    "init": "kernel_initializer", "subsample": "strides", "subsample_length": "strides",
    "W_regularizer": "kernel_regularizer", "b_regularizer": "bias_regularizer",
    "W_constraint": "kernel_constraint", "b_constraint": "bias_constraint",
    "nb_row": "kernel_size", "nb_col": "kernel_size", "filter_length": "kernel_size",
    "pool_length": "pool_size", "stride": "strides", "dim_ordering": "data_format",
    "p": "rate", "sigma": "stddev", "alpha": "negative_slope", "inner_init": "recurrent_initializer",
    "U_regularizer": "recurrent_regularizer", "dropout_W": "dropout", "dropout_U":
    "recurrent_dropout", "consume_less": "implementation",
}
# What else a renamed argument's value needs, where it is not just the name.
RENAMED_VALUES = {
    "border_mode": " (same or valid)", "nb_row": " (kernel_size: [rows, columns])",
    "nb_col": " (kernel_size: [rows, columns])", "dim_ordering": " ('tf' is channels_last, 'th' "
    "channels_first)",
}
# An optimizer's Keras 2 `decay` (lr / (1 + decay * step)) is a schedule in Keras 3.
DECAY_HINT = ("'decay' is Keras 2's learning-rate decay, gone from Keras 3's optimizers (its "
              "weight_decay is another thing); write it as optimizer.schedule: {name: "
              "InverseTimeDecay, decay_steps: 1, decay_rate: DECAY}, the same lr / (1 + DECAY * "
              "step).")
# Arguments every Keras layer takes through its base class.
BASE_LAYER_ARGS = frozenset({"name", "dtype", "trainable", "activity_regularizer", "autocast"})
# Those that may also be given as {class_name: ..., config: {...}}, with an example class.
CONFIGURED = {"initializers": "GlorotUniform", "regularizers": "L2", "constraints": "MaxNorm"}
# A layer argument above this is a typo or an attack, not a model that fits in memory.
MAX_LAYER_INT = 1_000_000
# The optimizer's and the schedule's `name` picks the class; it is not Keras's name argument.
CLASS_PICKER = frozenset({"name"})


@functools.cache  # read once: 1.4 ms a call, once per value when checking a search space
def installed_keras() -> str | None:
    try:
        return metadata.version("keras")
    except metadata.PackageNotFoundError:
        return None


def with_layer_names(schema: dict[str, Any]) -> dict[str, Any]:
    """The config's JSON Schema with the catalog's layers and their arguments, and Keras's
    other names (config/schema_names.py), so that editors complete and check them."""
    from dltrain.config.schema_names import with_keras_names

    return with_keras_names(schema, backbone_schema(schema))


def backbone_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """`Backbone`'s keys: BackboneConfig's, with the catalog's names, and the applications'."""
    backbones = load_catalog()["backbones"]
    backbone = BackboneConfig.model_json_schema(ref_template="#/$defs/{model}")
    schema["$defs"].update(backbone.pop("$defs", {}))
    backbone["properties"]["name"]["enum"] = sorted(backbones)
    backbone["properties"].update({arg: {} for arg in sorted(
        {arg for spec in backbones.values() for arg in spec["args"]})})
    return {**backbone, "additionalProperties": False}


def check_loaded(loaded: Loaded) -> str | None:
    """`check_names` with the error located at the config file's line."""
    try:
        return check_names(loaded.config)
    except ConfigError as exc:
        raise loaded.locate(exc) from None


def checked_scope(keras_version: str | None) -> str:
    """What `check_loaded` checked, so that `show --no-summary`'s 'ok' promises no more."""
    built = ("argument values and shapes are checked when the model is built: run "
             "without --no-summary")
    if keras_version is None:
        return (f"keys and values checked; layer/optimizer/loss/metric names and arguments not "
                f"checked: the catalog is for Keras {load_catalog()['keras']}, not the installed "
                f"{installed_keras() or 'none'}; they, {built}")
    return (f"keys, values, layer/optimizer/loss/metric names and arguments checked against "
            f"Keras {keras_version}; {built}")


def check_names(config: Config) -> str | None:
    """Reject the names and arguments Keras would reject, without importing it.

    Returns:
        The Keras version checked against, or None when the catalog was made for another
        version (then building the model is the check).

    Raises:
        ConfigError: at the first unknown name or argument, with its key path.
    """
    backbone = check_structure(config)
    check_task(config)  # the task's agreement needs no Keras either
    catalog = load_catalog()
    if catalog["keras"] != installed_keras():
        return None
    if backbone is not None:
        check_backbone(backbone, catalog)
    for index, node in enumerate(config.model.nodes):
        if index or backbone is None:
            check_layer(node.layer, node.args, node.where, catalog)
    check_optimizer(config.optimizer, catalog)
    check_named_object("loss", config.loss, "loss", catalog)
    for index, metric in enumerate(config.metrics):
        check_named_object("metric", metric, f"metrics.{index}", catalog)
    return str(catalog["keras"])


def check_layer(name: str, args: dict[str, Any], where: str, catalog: dict[str, Any]) -> None:
    layers = catalog["layers"]
    if name not in layers:
        raise ConfigError(f"{where}: {unknown_layer(name, layers)}")
    check_arguments(name, args, layers[name], where)
    check_sizes(args, where)
    for key, value in args.items():
        kind = resolved_kind(key)
        if kind is not None and isinstance(value, str) and value not in catalog[kind]:
            raise ConfigError(f"{where}.{key}: {unknown_name(kind, value, catalog[kind])}")
        if kind in CONFIGURED and isinstance(value, dict):
            check_configured(kind, value, f"{where}.{key}", catalog)


def check_backbone(spec: BackboneConfig, catalog: dict[str, Any]) -> None:
    """A keras.applications name, its own arguments and the image size it is given."""
    known = catalog["backbones"]
    if spec.name not in known:
        raise ConfigError(f"{BACKBONE_WHERE}.name: {unknown_backbone(spec.name, known)}")
    own = known[spec.name]  # the application's arguments, and dltrain's keys beside them
    check_arguments(spec.name, spec.kwargs, {**own, "args": [*own["args"], *BackboneConfig.model_fields]},
                    BACKBONE_WHERE)
    check_size(spec, known[spec.name]["min_size"], known[spec.name]["default_size"])


def check_configured(kind: str, value: dict[str, Any], where: str,
                     catalog: dict[str, Any]) -> None:
    """An initializer, regularizer or constraint given as {class_name: ..., config: {...}}."""
    noun = KINDS[kind]
    if "class_name" not in value:
        raise ConfigError(f"{where}: {'an' if noun[0] in 'aeiou' else 'a'} {noun} given as a "
                          f"mapping needs class_name, e.g. {{class_name: {CONFIGURED[kind]}, "
                          f"config: {{...}}}}. Received: {value!r}.")
    aliases = catalog[f"{kind}_classes"]
    name = value["class_name"]
    if not isinstance(name, str) or name not in aliases:
        known = sorted(set(aliases.values()))
        raise ConfigError(f"{where}: unknown {noun} class '{name}'."
                          f"{did_you_mean(str(name), known)} Known: {', '.join(known)}.")
    config = value.get("config") or {}
    if not isinstance(config, dict):
        raise ConfigError(f"{where}.config: must be a mapping of {aliases[name]}'s arguments. "
                          f"Received: {config!r}.")
    check_arguments(aliases[name], config, catalog[f"{kind}_arguments"][aliases[name]], where)


def check_optimizer(cfg: OptimizerConfig, catalog: dict[str, Any]) -> None:
    cls = catalog["optimizer_names"].get(cfg.name.lower())
    if cls is None:
        raise ConfigError(f"optimizer.name: {unknown_optimizer(cfg.name, catalog['optimizers'])}")
    check_arguments(cls, cfg.kwargs, catalog["optimizers"][cls], "optimizer",
                    handled=CLASS_PICKER, also=("schedule",))
    if cfg.schedule is None:
        return
    schedules = catalog["schedules"]
    if cfg.schedule.name not in schedules:
        raise ConfigError(f"optimizer.schedule.name: {unknown_schedule(cfg.schedule.name, schedules)}")
    check_arguments(cfg.schedule.name, cfg.schedule.kwargs, schedules[cfg.schedule.name],
                    "optimizer.schedule", handled=CLASS_PICKER,
                    given=("initial_learning_rate",))  # defaults to optimizer.learning_rate


def check_named_object(kind: str, spec: str | NamedObject, where: str,
                       catalog: dict[str, Any]) -> None:
    """A loss or metric: a name Keras's get() accepts, or a class with its arguments."""
    module = {"loss": "losses", "metric": "metrics"}[kind]
    name, kwargs = (spec, {}) if isinstance(spec, str) else (spec.name, spec.kwargs)
    names = catalog[module] + (sorted(COMPILE_METRIC_ALIASES) if kind == "metric" else [])
    classes = catalog[f"{module}_classes"]
    cls = class_for(name, classes)
    if not kwargs:
        if name in names:
            return
        if cls is not None and classes[cls]["required"]:
            raise ConfigError(f"{where}: {needs_arguments_form(cls, classes[cls]['required'])}")
        raise ConfigError(f"{where}: {unknown_name(module, name, names)}")
    if cls is None:
        raise ConfigError(f"{where}: {no_class_with_arguments(kind, name, list(classes))}")
    check_arguments(cls, kwargs, classes[cls], where)


def check_arguments(owner: str, args: Iterable[str], spec: dict[str, list[str]], where: str,
                    handled: Collection[str] = (), also: Collection[str] = (),
                    given: Collection[str] = ()) -> None:
    """Unknown keyword arguments, then missing required ones, as Python would refuse them."""
    accepted = sorted(set(spec["args"]) - set(handled))
    args = list(args)
    for key in args:
        if key not in accepted:
            raise ConfigError(f"{where}: {unknown_argument(owner, key, accepted, also)}")
    missing = [name for name in spec["required"] if name not in (*args, *given, *handled)]
    if missing:
        raise ConfigError(f"{where}: {missing_arguments(owner, missing)}")


def check_sizes(args: dict[str, Any], where: str) -> None:
    """Refuse sizes that would exhaust memory while Keras allocates the weights."""
    for key, value in args.items():
        numbers = value if isinstance(value, (list, tuple)) else [value]
        for number in numbers:
            if isinstance(number, int) and not isinstance(number, bool) and (
                    abs(number) > MAX_LAYER_INT):
                raise ConfigError(f"{where}.{key}: must be at most {MAX_LAYER_INT:,}. "
                                  f"Received: {number}.")


def resolved_kind(key: str) -> str | None:
    """Which Keras registry resolves this layer argument by name (activations, ...), if any."""
    return next((kind for suffix, kind in RESOLVED_SUFFIXES.items() if key.endswith(suffix)),
                None)


# The messages: each made once, for the catalog's checks and model.build's alike.

def unknown_layer(name: str, known: Iterable[str]) -> str:
    if name in FORBIDDEN_LAYERS:
        return f"layer '{name}' is not allowed: configs cannot run code or load other models."
    if name in RENAMED_LAYERS:
        return f"'{name}' is the Keras 2 name; use '{RENAMED_LAYERS[name]}'."
    return f"unknown layer '{name}'.{did_you_mean(name, known)}"


def unknown_backbone(name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    return (f"unknown backbone '{name}'.{did_you_mean(name, known)} Known "
            f"(keras.applications): {', '.join(known)}.")


def unknown_argument(owner: str, key: str, accepted: Collection[str],
                     also: Collection[str] = ()) -> str:
    listed = ", ".join(sorted(accepted))
    return f"unknown argument '{key}' for {owner}.{_hint(key, accepted, also)} {owner} takes: {listed}."


def _hint(key: str, accepted: Collection[str], also: Collection[str]) -> str:
    """Today's name for a Keras 2 argument the owner takes under it, else the nearest name."""
    if key == "decay" and "weight_decay" in accepted:
        return f" {DECAY_HINT}"
    today = RENAMED_ARGUMENTS.get(key)
    if today in accepted:
        return f" '{key}' is the Keras 2 name; use '{today}'{RENAMED_VALUES.get(key, '')}."
    return did_you_mean(key, [*accepted, *also])


def missing_arguments(owner: str, missing: list[str]) -> str:
    names = ", ".join(f"'{name}'" for name in missing)
    noun = "argument" if len(missing) == 1 else "arguments"
    return f"{owner} needs the {noun} {names}; add {'it' if len(missing) == 1 else 'them'}."


def needs_arguments_form(cls: str, required: list[str]) -> str:
    """A loss or metric class named without the arguments it cannot do without."""
    noun = "argument" if len(required) == 1 else "arguments"
    example = ", ".join(f"{name}: ..." for name in required)
    return (f"{cls} needs the {noun} {', '.join(repr(name) for name in required)}; write it as "
            f"{{name: {cls}, {example}}}.")


KINDS = {"activations": "activation", "initializers": "initializer",
         "regularizers": "regularizer", "constraints": "constraint", "losses": "loss",
         "metrics": "metric"}


def unknown_name(module: str, name: str, known: Collection[str]) -> str:
    """`unknown activation 'relu6x'. Did you mean 'relu6'? Known: ...` (in the user's case)."""
    text = f"unknown {KINDS[module]} '{name}'.{did_you_mean(name, known)}"
    if module in ("losses", "metrics"):  # dozens of each: the suggestion is enough
        return text
    return f"{text} Known: {', '.join(sorted(same_style(name, known)))}."


def unknown_optimizer(name: str, classes: Iterable[str]) -> str:
    classes = sorted(classes)
    lower = sorted(cls.lower() for cls in classes)
    return (f"unknown optimizer '{name}'.{did_you_mean(name, classes + lower)} "
            f"Known: {', '.join(lower)}.")


def unknown_schedule(name: str, known: Iterable[str]) -> str:
    known = sorted(known)
    return f"unknown schedule '{name}'.{did_you_mean(name, known)} Known: {', '.join(known)}."


def no_class_with_arguments(kind: str, name: str, classes: list[str]) -> str:
    return f"no {kind} class named '{name}' takes arguments.{did_you_mean(name, classes)}"
