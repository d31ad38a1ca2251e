"""The model section: the layers in order, a keras.applications backbone and its fine-tuning."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from dltrain.config.fields import Open, Strict, key_error
from dltrain.config.graph import BACKBONE, GraphError, Node, nodes

# In the schema a layer is `Name` or `{Name: {arguments}}`; validation turns both into the latter.
LayerSpec = Annotated[dict[str, dict[str, Any]], WithJsonSchema({
    "anyOf": [{"type": "string", "description": "A keras.layers class without arguments."},
              {"type": "object", "minProperties": 1, "maxProperties": 1,
               "additionalProperties": {"type": ["object", "null"]},
               "description": "{LayerClass: {its keyword arguments}}"}]})]


class ModelConfig(Strict):
    input_shape: list[int] = Field(min_length=1, description="Shape of one sample, e.g. [28, 28, 1].")
    layers: list[LayerSpec] = Field(min_length=1, description=(
        "Keras layers in order: {Name: {args}}. A layer's `name:` lets later layers take it, "
        "`inputs:` takes names or offsets back (-1 the layer before, the default; merge layers "
        "such as Add take several). `- Repeat: {times: N, layers: [...]}` writes layers N times; "
        "names inside copy k get the suffix _k."))

    @field_validator("input_shape")
    @classmethod
    def _positive_dims(cls, value: list[int]) -> list[int]:
        if any(dim <= 0 for dim in value):
            raise ValueError("every dimension must be a positive integer")
        return value

    @field_validator("layers", mode="before")
    @classmethod
    def _normalise_layers(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_normalise_layer(item, index) for index, item in enumerate(value)]

    @model_validator(mode="after")
    def _graph_resolves(self) -> ModelConfig:
        try:
            nodes(self.layers)
        except GraphError as exc:
            raise key_error(exc.key, exc.message) from None
        return self

    @property
    def nodes(self) -> list[Node]:
        """The layers unrolled (Repeat), each with the layers it takes (config/graph.py)."""
        return nodes(self.layers)


def _normalise_layer(item: Any, index: int) -> Any:
    """Accept `Flatten`, `{Flatten: null}` and `{Flatten: {}}` alike."""
    if isinstance(item, str):
        return {item: {}}
    if isinstance(item, dict) and len(item) != 1:
        names = ", ".join(map(str, item)) or "nothing"
        raise ValueError(
            f"layer {index} must name exactly one layer class, like '- Dense: {{units: 10}}'. "
            f"Received: {names}"
        )
    if isinstance(item, dict):
        ((name, args),) = item.items()
        if args is not None and not isinstance(args, dict):  # Keras's positional Dense(10)
            first = FIRST_ARGUMENT.get(str(name), "argument")
            raise ValueError(f"layer {index}: {name}'s arguments are a mapping, by name: "
                             f"'- {name}: {{{first}: {args!r}}}'. Received: {args!r}")
        return {name: {} if args is None else args}
    return item


# The first positional argument of the common layers, to write `- Dropout: 0.5` by name.
FIRST_ARGUMENT = {"Dense": "units", "Dropout": "rate", "Activation": "activation",
                  "Conv2D": "filters", "Conv1D": "filters", "MaxPooling2D": "pool_size",
                  "Reshape": "target_shape", "SpatialDropout2D": "rate",
                  "GaussianNoise": "stddev", "Embedding": "input_dim", "LSTM": "units",
                  "GRU": "units", "SimpleRNN": "units", "Rescaling": "scale"}


# A model may start with a keras.applications backbone: `- Backbone: {name: MobileNetV2, ...}`.
BACKBONE_LAYER = BACKBONE


class FineTuneConfig(Strict):
    """Unfreeze the backbone's top layers after `at_epoch` epochs, with a lower learning rate."""

    at_epoch: int = Field(gt=0, description="Epochs trained with the backbone frozen; its top "
                          "layers train from the next epoch on.")
    layers: int = Field(gt=0, description="How many of the backbone's last layers to unfreeze "
                        "(BatchNormalization layers stay frozen).")
    learning_rate: float = Field(gt=0, allow_inf_nan=False, description="The learning rate from "
                                 "then on (recompiled, as Keras's transfer-learning guide does).")


class BackboneConfig(Open):
    """A keras.applications model without its classifier; extra keys are its own arguments."""

    name: str = Field(description="A keras.applications name: MobileNetV2, ResNet50, ...")
    weights: str | None = Field("imagenet", description="imagenet (through Keras's cache, "
                                "$KERAS_HOME/models), null (random), or a weights file.")
    trainable: bool = Field(False, description="Train the backbone's weights too (default: "
                            "frozen, the transfer-learning recipe).")
    pooling: Literal["avg", "max"] | None = Field(None, description="Keras's pooling: avg or max "
                                                  "gives one vector per image.")
    input_size: tuple[int, int] | None = Field(None, description="[height, width] the images are "
                                               "resized to; default the backbone's own.")
    fine_tune: FineTuneConfig | None = None

    @model_validator(mode="after")
    def _fine_tune_needs_frozen(self) -> BackboneConfig:
        if self.fine_tune is not None and self.trainable:
            raise ValueError("fine_tune unfreezes a frozen backbone; with trainable: true it is "
                             "all trained from the start. Set trainable: false or drop fine_tune")
        return self
