"""Read a YAML config, apply overrides and Keras 2 spellings, and validate it into a `Config`."""

from __future__ import annotations

import copy
import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, get_args, get_origin

import yaml
from pydantic import BaseModel, ValidationError

from dltrain.config.backbone import IMAGENET
from dltrain.config.schema import BACKBONE_LAYER, KEY_ERROR, Config
from dltrain.config.task import task_notes
from dltrain.config.yaml_file import Key, read_value, read_yaml
from dltrain.console import clipped, shown
from dltrain.errors import ConfigError


@dataclass
class Loaded:
    """A validated config with the notes (deprecations) collected while reading it."""

    config: Config
    source: str
    notes: list[str] = field(default_factory=list)
    lines: dict[Key, int] = field(default_factory=dict)
    origins: dict[Key, str] = field(default_factory=dict)

    def locate(self, error: ConfigError) -> ConfigError:
        """Prefix a later stage's error ('model.layers.1.Dense: ...') with where its key came
        from: the file and line, or the --set option that wrote it."""
        where, sep, rest = str(error).partition(": ")
        key = tuple(int(p) if p.isdigit() else p for p in where.split("."))
        line, override = blame(key, self.lines, self.origins) if sep else (None, None)
        for path, text in self.origins.items():  # "optimizer: unknown argument 'x'" set by --set
            if (sep and len(path) > len(key) and path[:len(key)] == key
                    and names_argument(rest, path[len(key)])):
                line, override = None, text
        if override is not None:
            return ConfigError(f"--set {override}: {where}{sep}{rest}")
        at = f" (line {line})" if line else ""
        return ConfigError(f"{self.source}: {where}{at}{sep}{rest}")


def names_argument(message: str, argument: object) -> bool:
    """Whether an error names this argument: 'x' (dltrain's), `x` or x=... (Keras's)."""
    return any(form in message for form in (f"'{argument}'", f"`{argument}`", f"{argument}="))


SMOKE_TRAIN, SMOKE_TEST = 256, 128


def load_config(path: Path, overrides: list[str] | None = None, smoke: bool = False) -> Loaded:
    """Read, override and validate a config file; `smoke` shrinks it to a seconds-long run.

    Raises:
        ConfigError: with the file name, every failing key path and a fix where one is known.
    """
    source = str(path)
    raw, lines = read_yaml(path)
    # The file's Keras 2 spellings first, so --set can name today's keys (optimizer.learning_rate
    # over a file's lr); then those an override brings (an input_dim).
    notes = rewrite_keras2(raw, source)
    origins: dict[Key, str] = {}
    for override in overrides or []:
        apply_override(raw, keras2_override(override, notes), source, lines, origins)
    notes += rewrite_keras2(raw, source)
    resolve_paths(raw, path.parent, origins)
    config = validate(raw, source, lines, origins)
    if smoke:  # checked as written first: a smoke run must not pass a config that cannot run
        shrink_for_smoke(raw, origins)
        config = validate(raw, source, lines, origins)
    notes += task_notes(config)
    if config.dataset.validation_split == "test":
        notes.append("validating on the test split (dataset.validation_split: test): choices made "
                     "on validation metrics then also fit the test data.")
    return Loaded(config, source, notes, lines, origins)


def validate(raw: Any, source: str, lines: dict[Key, int] | None = None,
             origins: dict[Key, str] | None = None) -> Config:
    """The `Config`, or a ConfigError listing every failing key: the file's keys with their
    line first, then those written by --set, each naming its option."""
    if not isinstance(raw, dict):
        kind = "an empty file" if raw is None else f"a {type(raw).__name__}"
        raise ConfigError(f"{source}: a config must be a mapping of sections. Received: {kind}.")
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = [describe(error, raw, lines or {}, origins or {}) for error in exc.errors()]
        in_file = [text for override, text in problems if override is None]
        from_set = [f"--set {override}: {text}" for override, text in problems if override]
        message = "\n".join(([f"{source}: " + "\n".join(in_file)] if in_file else []) + from_set)
        raise ConfigError(message) from None


def apply_override(raw: Any, override: str, source: str, lines: dict[Key, int] | None = None,
                   origins: dict[Key, str] | None = None) -> None:
    """Apply one `--set key.path=value`; the value is parsed as YAML (numbers, lists, ...).

    The keys it writes are recorded in `origins` (and forgotten in `lines`), so an error about
    them names the option instead of a line of the file.
    """
    path, sep, text = override.partition("=")
    override = clipped(override)  # as messages show it
    if not sep or not path.strip():
        raise ConfigError(f"--set {override}: expected key.path=value, e.g. training.epochs=2.")
    value = read_value(text, f"--set {override}")
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: a config must be a mapping before --set can change it.")
    lines = {} if lines is None else lines
    origins = {} if origins is None else origins
    parts = path.strip().split(".")
    target: Any = raw
    key: Key = ()
    for depth, part in enumerate(parts[:-1]):
        target, step = _step(target, part, parts[: depth + 1], override)
        key = (*key, step)
        if key not in lines and key not in origins:  # a section this option created
            origins[key] = override
    key = (*key, _assign(target, parts[-1], value, override))
    for known in (lines, origins):
        for old in [old for old in known if old[:len(key)] == key]:
            del known[old]
    origins[key] = override


# Sections that may be a bare name (`optimizer: adam`): the long form is {name: adam, ...}.
NAMED: set[tuple[Any, ...]] = {("optimizer",), ("loss",), ("metrics", int)}


def _step(target: Any, part: str, walked: list[str], override: str) -> tuple[Any, str | int]:
    if isinstance(target, list):
        index: str | int = _index(target, part, override)
    elif isinstance(target, dict):
        index = part
        if target.get(part) is None:
            target[part] = {}
    else:
        raise ConfigError(f"--set {override}: '{'.'.join(walked[:-1])}' is not a section.")
    shape = tuple(int if isinstance(step, int) else step for step in (*walked[:-1], index))
    if isinstance(target[index], str) and shape in NAMED:
        target[index] = {"name": target[index]}  # --set optimizer.learning_rate over `adam`
    return target[index], index


def _assign(target: Any, part: str, value: Any, override: str) -> str | int:
    if isinstance(target, list):
        index = _index(target, part, override)
        target[index] = value
        return index
    if isinstance(target, dict):
        target[part] = value
        return part
    raise ConfigError(f"--set {override}: the parent of '{part}' is not a section.")


def _index(items: list[Any], part: str, override: str) -> int:
    if not part.isdigit() or int(part) >= len(items):
        raise ConfigError(
            f"--set {override}: '{part}' must be an index below {len(items)} into that list."
        )
    return int(part)


KERAS2_KEYS = {"optimizer.lr": "optimizer.learning_rate", "training.nb_epoch": "training.epochs"}


def keras2_override(override: str, notes: list[str]) -> str:
    """`--set optimizer.lr=...` as `optimizer.learning_rate=...`, with a note, as in a file."""
    path, sep, value = override.partition("=")
    today = KERAS2_KEYS.get(path.strip())
    if not sep or today is None:
        return override
    notes.append(f"--set {path.strip()}: the Keras 2 name; read as {today}.")
    return f"{today}={value}"


def shortcut_overrides(**values: int | str | None) -> list[str]:
    """--epochs/--batch-size/--seed/--backend as the --set overrides they stand for."""
    keys = {"epochs": "training.epochs", "batch_size": "training.batch_size", "seed": "seed",
            "backend": "backend"}
    return [f"{keys[name]}={value}" for name, value in values.items() if value is not None]


def shrink_for_smoke(raw: dict[str, Any], origins: dict[Key, str]) -> None:
    """1 epoch on a stratified subset; written into the config so `eval` sees the same data.

    Runs on a config already validated as written. A value given with --set (or --epochs)
    is kept: the user chose it for this run.
    """
    for section, key, limit in (("training", "epochs", 1), ("dataset", "train_limit", SMOKE_TRAIN),
                                ("dataset", "test_limit", SMOKE_TEST)):
        values = raw.setdefault(section, {})
        current = values.get(key)
        if current is not None and blame((section, key), {}, origins)[1] is not None:
            continue
        values[key] = min(current, limit) if isinstance(current, int) else limit
    tune = (_backbone_section(raw) or {}).get("fine_tune")
    if isinstance(tune, dict) and raw["training"]["epochs"] == 1 and blame(
            ("training", "epochs"), {}, origins)[1] is None:
        # Two epochs, fine-tuning in the second: the smoke run goes through both phases.
        raw["training"]["epochs"], tune["at_epoch"] = 2, 1


def rewrite_keras2(raw: Any, source: str) -> list[str]:
    """Translate Keras 2 spellings users copy from old tutorials, with a note for each."""
    notes: list[str] = []
    if not isinstance(raw, dict):
        return notes
    optimizer = raw.get("optimizer")
    if isinstance(optimizer, dict) and "lr" in optimizer:
        if "learning_rate" in optimizer:
            raise ConfigError(f"{source}: optimizer has both 'lr' and 'learning_rate'; keep "
                              "'learning_rate' ('lr' is the Keras 2 name).")
        optimizer["learning_rate"] = optimizer.pop("lr")
        notes.append("optimizer.lr is the Keras 2 name; read as optimizer.learning_rate.")
    training = raw.get("training")
    if isinstance(training, dict) and "nb_epoch" in training and "epochs" not in training:
        training["epochs"] = training.pop("nb_epoch")
        notes.append("training.nb_epoch is the Keras 1 name; read as training.epochs.")
    notes += _move_input_shape(raw, source)
    return notes


def _move_input_shape(raw: dict[str, Any], source: str) -> list[str]:
    model = raw.get("model")
    layers = model.get("layers") if isinstance(model, dict) else None
    if not isinstance(layers, list):
        return []
    notes = []
    for index, layer in enumerate(layers):
        args = next(iter(layer.values()), None) if isinstance(layer, dict) and layer else None
        if not isinstance(args, dict):
            continue
        for key in ("input_shape", "input_dim", "batch_input_shape"):
            if key not in args:
                continue
            where = f"model.layers.{index}.{next(iter(layer))}.{key}"
            if index > 0:
                raise ConfigError(f"{source}: {where}: only the model has an input shape; "
                                  "remove it from this layer.")
            shape = _legacy_shape(args.pop(key), key)
            if model.get("input_shape") not in (None, shape):  # type: ignore[union-attr]
                raise ConfigError(f"{source}: {where} ({shape}) disagrees with model.input_shape "
                                  f"({model['input_shape']}); keep only model.input_shape.")  # type: ignore[index]
            model["input_shape"] = shape  # type: ignore[index]
            notes.append(f"{where} is the Keras 2 way; read as model.input_shape: {shape}.")
    return notes


def _legacy_shape(value: Any, key: str) -> Any:
    if key == "input_dim":
        return [value]
    if key == "batch_input_shape" and isinstance(value, list):
        return value[1:]
    return list(value) if isinstance(value, (list, tuple)) else value


def resolve_paths(raw: Any, base: Path, origins: dict[Key, str] | None = None) -> None:
    """Make dataset paths and a backbone's weights file absolute: the file's relative to its
    folder, those given with --set relative to the working directory, where they were typed."""
    dataset = raw.get("dataset") if isinstance(raw, dict) else None
    if isinstance(dataset, dict):
        for key in ("data_dir", "path", "test_path"):
            _resolve_path(dataset, key, ("dataset", key), base, origins or {})
    backbone = _backbone_section(raw)
    if backbone is not None and backbone.get("weights") != IMAGENET:
        _resolve_path(backbone, "weights", ("model", "layers", 0, BACKBONE_LAYER, "weights"), base,
                      origins or {})


def _resolve_path(section: dict[str, Any], key: str, loc: Key, base: Path,
                  origins: dict[Key, str]) -> None:
    value = section.get(key)
    typed = blame(loc, {}, origins)[1] is not None
    if isinstance(value, str) and value:
        section[key] = str(((Path.cwd() if typed else base) / Path(value).expanduser()).resolve())


def _backbone_section(raw: Any) -> dict[str, Any] | None:
    model = raw.get("model") if isinstance(raw, dict) else None
    layers = model.get("layers") if isinstance(model, dict) else None
    first = layers[0] if isinstance(layers, list) and layers else None
    section = first.get(BACKBONE_LAYER) if isinstance(first, dict) else None
    return section if isinstance(section, dict) else None


NO_RECEIVED = ("missing", "key_not_read")  # errors whose message says all there is to say
EPOCH = " An epoch here is one pass over the training data; dataset.train_limit makes it shorter."
# Keys users bring from Keras's fit() and Keras 2, at the section they wrote them in: where
# they belong, or why there is none (the nearest allowed name misleads: steps_per_execution).
ELSEWHERE = {
    ("epochs",): " It belongs in the training section: training.epochs.",
    ("batch_size",): " It belongs in the training section: training.batch_size.",
    ("validation_split",): " It belongs in the dataset section: dataset.validation_split.",
    ("training", "validation_split"): " It belongs in the dataset section: "
    "dataset.validation_split.",
    ("training", "validation_data"): " Validation data comes from dataset.validation_split (a "
    "fraction, or test).",
    ("training", "steps_per_epoch"): " dltrain has no steps_per_epoch." + EPOCH,
    ("training", "samples_per_epoch"): " samples_per_epoch is Keras 1's;" + EPOCH,
    ("training", "class_weight"): " Class weights are not supported yet.",
    ("training", "verbose"): " dltrain prints one line per epoch; fit --json prints one JSON "
    "document instead.",
    ("training", "reduce_lr_on_plateau", "epsilon"): " 'epsilon' is the Keras 2 name; use "
    "'min_delta'.",
}


def describe(error: Any, raw: Any, lines: dict[Key, int],
             origins: dict[Key, str] | None = None) -> tuple[str | None, str]:
    """One line for one pydantic error: key path, line, what was expected and received.

    Returns the --set option the failing key came from (None: from the file) and the line.
    """
    if error["type"] == KEY_ERROR:  # a rule on the whole config, broken at this key
        return at_key(error, raw, lines, origins or {})
    loc = key_path(error["loc"], raw, keep_last=error["type"] == "missing")
    where = ".".join(map(str, loc)) or "top level"
    layer = re.match(r"(?:Value error, )?layer (\d+)", error["msg"])
    # The layers' validator speaks of one layer: its own line, not the list's.
    line, override = blame((*loc, int(layer.group(1))) if layer and loc[-1:] == ("layers",)
                           else loc, lines, origins or {})
    at = f" (line {line})" if line else ""
    if error["type"] == "extra_forbidden":
        parent = ".".join(map(str, loc[:-1])) or "top level"
        hint = ELSEWHERE.get(tuple(map(str, loc))) or _suggest(str(loc[-1]), allowed_keys(loc[:-1]))
        return override, f"unknown key {shown(str(loc[-1]))} at {parent}{at}.{hint}"
    message = error["msg"].removeprefix("Value error, ")
    received = ("" if error["type"] in NO_RECEIVED or "Received: " in message
                else f" Received: {_short(error['input'])}.")
    return override, f"{where}{at}: {message}.{received}"


def at_key(error: Any, raw: Any, lines: dict[Key, int],
           origins: dict[Key, str]) -> tuple[str | None, str]:
    """`describe` for schema.key_error: the key its context names, at the line of that key or
    of the nearest section written (a default monitor: its section's line)."""
    key = error["ctx"]["key"]
    loc = tuple(int(part) if part.isdigit() else part for part in key.split("."))
    line, override = blame(key_path(loc, raw, keep_last=False), lines, origins)
    return override, f"{key}{f' (line {line})' if line else ''}: {error['ctx']['message']}"


def key_path(loc: Key, raw: Any, keep_last: bool) -> Key:
    """The error's location as keys of the user's document.

    pydantic adds the name of the union member it tried ("str", "NamedObject") to locations;
    those are not keys of the document, so they are dropped. A missing key is kept.
    """
    path: list[str | int] = []
    node = raw
    for index, part in enumerate(loc):
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        elif not (keep_last and index == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def blame(loc: Key, lines: dict[Key, int], origins: dict[Key, str]) -> tuple[int | None, str | None]:
    """Where the key at `loc` (or its nearest enclosing key) was written: (line, None) in the
    file, (None, "key=value") by a --set option, (None, None) nowhere (a default)."""
    for end in range(len(loc), 0, -1):
        if loc[:end] in origins:
            return None, origins[loc[:end]]
        if loc[:end] in lines:
            return lines[loc[:end]], None
    return None, None


def _short(value: Any) -> str:
    return clipped(repr(value))


def _suggest(key: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(key, allowed, n=1, cutoff=0.6)
    if close:
        return f" Did you mean '{close[0]}'?"
    return f" Allowed keys: {', '.join(allowed)}." if allowed else ""


def allowed_keys(loc: Key) -> list[str]:
    """The field names of the schema section at `loc`, for suggestions."""
    model: Any = Config
    for part in loc:
        if isinstance(part, int):
            continue
        model = _section_model(model.model_fields[part].annotation) if part in getattr(
            model, "model_fields", {}) else None
        if model is None:
            return []
    return list(model.model_fields)


def _section_model(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in get_args(annotation) if get_origin(annotation) else ():
        found = _section_model(arg)
        if found is not None:
            return found
    return None


def config_diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(key path, old value, new value) for every leaf that differs between two configs."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [change for key in sorted(set(old) | set(new), key=str)
                for change in config_diff(old.get(key), new.get(key), f"{prefix}{key}.")]
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def dump(config: Config) -> str:
    """The resolved config as YAML, the form saved in every run directory."""
    data = copy.deepcopy(config.model_dump(mode="json"))
    return yaml.safe_dump(data, sort_keys=False)
