"""Hints for a mistyped command line: the command meant (`train` is `fit`), and the exact
`--set KEY=VALUE` line for an option that is a config value (`--lr`, Keras 2's habits)."""

from __future__ import annotations

import shlex
from difflib import get_close_matches
from typing import Any

import typer

# Words users bring from other tools, for the command dltrain has.
COMMAND_WORDS = {"train": "fit", "run": "fit", "start": "fit", "resume": "fit",
                 "evaluate": "eval", "test": "eval", "score": "eval", "validate": "show",
                 "check": "show", "list": "runs", "ls": "runs", "diff": "compare",
                 "infer": "predict", "inference": "predict", "save": "export",
                 "search": "tune", "hpo": "tune", "sweep": "tune", "crossval": "cv",
                 "cross-validate": "cv", "kfold": "cv", "new": "init", "create": "init",
                 "template": "init", "lr_find": "lr-find", "lrfind": "lr-find",
                 "find-lr": "lr-find", "find_lr": "lr-find", "lr-finder": "lr-find",
                 "range-test": "lr-find"}

# Options of Keras 2 scripts and tutorials, for the config key they set.
OPTION_KEYS = {"lr": "optimizer.learning_rate", "learning_rate": "optimizer.learning_rate",
               "epochs": "training.epochs", "nb_epoch": "training.epochs",
               "batch_size": "training.batch_size", "batch": "training.batch_size",
               "optimizer": "optimizer.name", "opt": "optimizer.name", "loss": "loss",
               "metrics": "metrics", "momentum": "optimizer.momentum",
               "patience": "training.early_stopping.patience",
               "validation_split": "dataset.validation_split", "val_split":
               "dataset.validation_split", "seed": "seed", "backend": "backend"}


def improve(exc: typer.TyperException, args: list[str], group: Any) -> None:
    """Rewrite click's message of a usage error in place where a hint helps."""
    message = getattr(exc, "message", None)
    if not isinstance(message, str):
        return
    if message.startswith("No such command"):
        exc.message = _command_hint(args, group) or message  # type: ignore[attr-defined]
    option = getattr(exc, "option_name", None)
    ctx = getattr(exc, "ctx", None)
    if message.startswith("No such option") and option and ctx is not None and any(
            "--set" in getattr(param, "opts", ()) for param in ctx.command.params):
        key = config_key(option)
        if key is not None:
            value = _value_of(option, args)
            own = _shortcut_for(key, ctx.command.params)
            meant = f"{own} {value}" if own else f"--set {key}={value}"
            exc.message = f"No such option: {option}. Did you mean {meant}?"  # type: ignore[attr-defined]
            exc.possibilities = None  # type: ignore[attr-defined]


def _shortcut_for(key: str, params: list[Any]) -> str | None:
    """The command's own option for a config key (fit's --epochs), where it has one."""
    from dltrain.config.load import SHORTCUT_KEYS

    for param in params:
        if SHORTCUT_KEYS.get(getattr(param, "name", "")) == key:
            return next((opt for opt in param.opts if opt.startswith("--")), None)
    return None


def _command_hint(args: list[str], group: Any) -> str | None:
    names = sorted(group.commands)
    at, typed = next(((index, arg) for index, arg in enumerate(args)
                      if not arg.startswith("-")), (None, None))
    if typed is None or at is None:
        return None
    meant = COMMAND_WORDS.get(typed.lower()) or next(
        iter(get_close_matches(typed, names, n=1, cutoff=0.5)), None)
    if meant is None:
        return (f"No such command {typed!r}. The commands are {', '.join(names)}; see "
                "dltrain --help.")
    line = shlex.join(["dltrain", *args[:at], meant, *args[at + 1:]])
    return f"No such command {typed!r}. Did you mean {meant!r}? Run: {line}"


def config_key(option: str) -> str | None:
    """The config key an unknown option names: a Keras 2 habit, a key's path, or a key's
    name found once in the config (`--clipnorm` is optimizer.clipnorm)."""
    name = option.split("=", 1)[0].lstrip("-").replace("-", "_")
    if name in OPTION_KEYS:
        return OPTION_KEYS[name]
    keys = config_keys()
    if name in keys:
        return name
    ending = [key for key in keys if key.rsplit(".", 1)[-1] == name]
    return ending[0] if len(ending) == 1 else None


def config_keys() -> list[str]:
    """Every key path of the config's schema (not into lists)."""
    from dltrain.config.schema import json_schema

    schema = json_schema()
    found: list[str] = []

    def walk(node: Any, path: str) -> None:
        node = _resolved(node, schema)
        for key, value in (node.get("properties") or {}).items():
            here = f"{path}.{key}" if path else key
            found.append(here)
            walk(value, here)
        for option in node.get("anyOf", []):
            walk(option, path)

    walk(schema, "")
    return found


def _resolved(node: Any, schema: dict[str, Any]) -> dict[str, Any]:
    while isinstance(node, dict) and "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[-1]]
    return node if isinstance(node, dict) else {}


def _value_of(option: str, args: list[str]) -> str:
    """The value typed with the option (`--lr 0.1`, `--lr=0.1`), else VALUE."""
    if "=" in option:
        return option.split("=", 1)[1] or "VALUE"
    for index, arg in enumerate(args):
        if arg.startswith(option + "="):
            return arg.split("=", 1)[1] or "VALUE"
        if arg == option and index + 1 < len(args) and not args[index + 1].startswith("--"):
            return args[index + 1]
    return "VALUE"
