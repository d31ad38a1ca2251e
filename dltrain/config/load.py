"""Read a YAML config, apply overrides and Keras 2 spellings, and validate it into a `Config`."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from dltrain.config.backbone import IMAGENET
from dltrain.config.keras2 import rewrite_keras2
from dltrain.config.messages import blame, describe
from dltrain.config.model_section import BACKBONE_LAYER
from dltrain.config.overrides import apply_override, keras2_override
from dltrain.config.schema import Config
from dltrain.config.task import task_notes
from dltrain.config.yaml_file import Key, read_yaml
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


# The command-line shortcuts (by their parameter's name) and the config key each sets.
SHORTCUT_KEYS = {"epochs": "training.epochs", "batch_size": "training.batch_size", "seed": "seed",
                 "backend": "backend"}


def shortcut_overrides(**values: int | str | None) -> list[str]:
    """--epochs/--batch-size/--seed/--backend as the --set overrides they stand for."""
    return [f"{SHORTCUT_KEYS[name]}={value}" for name, value in values.items()
            if value is not None]


def shrink_for_smoke(raw: dict[str, Any], origins: dict[Key, str]) -> None:
    """1 epoch on a stratified subset, one step a call; written into the config so `eval`
    sees the same data.

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
    # One step a call: a smoke run's few steps never pay back what several cost on TensorFlow
    # (its loop of steps is traced twice: the whole train step again). A number written in the
    # config, or given with --set, is kept: the user chose it.
    training = raw["training"]
    if training.get("steps_per_execution", "auto") == "auto" and blame(
            ("training", "steps_per_execution"), {}, origins)[1] is None:
        training["steps_per_execution"] = 1
    tune = (_backbone_section(raw) or {}).get("fine_tune")
    if isinstance(tune, dict) and raw["training"]["epochs"] == 1 and blame(
            ("training", "epochs"), {}, origins)[1] is None:
        # Two epochs, fine-tuning in the second: the smoke run goes through both phases.
        raw["training"]["epochs"], tune["at_epoch"] = 2, 1


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


def config_diff(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """(key path, old value, new value) for every leaf that differs between two configs.

    Lists of sections (model.layers) are followed item by item, so a changed filter count is
    `model.layers.0.Conv2D.filters`, and an item added or dropped is the item, against None.
    Two sections with no key in common (another layer) and lists of plain values
    (input_shape) are one value each.
    """
    if isinstance(old, dict) and isinstance(new, dict) and (
            not prefix or set(old) & set(new) or not old or not new):
        return [change for key in sorted(set(old) | set(new), key=str)
                for change in config_diff(old.get(key), new.get(key), f"{prefix}{key}.")]
    if isinstance(old, list) and isinstance(new, list) and _has_sections(old + new):
        return [change for index in range(max(len(old), len(new)))
                for change in config_diff(_item(old, index), _item(new, index),
                                          f"{prefix}{index}.")]
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _has_sections(items: list[Any]) -> bool:
    return any(isinstance(item, dict | list) for item in items)


def _item(items: list[Any], index: int) -> Any:
    return items[index] if index < len(items) else None


def dump(config: Config) -> str:
    """The resolved config as YAML, the form saved in every run directory."""
    data = copy.deepcopy(config.model_dump(mode="json"))
    return yaml.safe_dump(data, sort_keys=False)
