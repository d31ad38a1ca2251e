"""Keras 2 spellings users copy from old tutorials (`lr`, `input_dim`, flat `input_shape`),
rewritten into Keras 3 ones with a note for each."""

from __future__ import annotations

from typing import Any

from dltrain.errors import ConfigError


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
