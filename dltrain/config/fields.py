"""The building blocks of the config's sections: strict and open sections, objects named with
arguments, and the error of a rule on the whole config that one key breaks."""

from __future__ import annotations

import math
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
)
from pydantic_core import PydanticCustomError


class Strict(BaseModel):
    """A section whose unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A section whose extra keys are keyword arguments of a Keras class, checked at build time."""

    model_config = ConfigDict(extra="allow")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def finite_or_none(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class NamedObject(Open):
    """A loss or metric given with arguments: {name: categorical_crossentropy, label_smoothing: 0.1}."""

    name: str


# The type of a cross-field rule's error that belongs to one key (its context names the key).
KEY_ERROR = "at_key"


def key_error(key: str, message: str) -> PydanticCustomError:
    """An error of a rule on the whole config that one key breaks: messages.describe shows it at
    that key's line, as the message says it (what was received included)."""
    return PydanticCustomError(KEY_ERROR, "{message}", {"key": key, "message": message})
