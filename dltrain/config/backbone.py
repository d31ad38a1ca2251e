"""The Backbone layer checked without Keras: its keys, its place, its name, arguments and sizes.

`- Backbone: {name: MobileNetV2, weights: imagenet, ...}` may only be the first layer: it takes
the images. Its keys are `BackboneConfig`'s plus the application's own arguments (alpha, ...),
which the shipped catalog lists with each application's default and minimum image size.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from dltrain.config.model_section import BACKBONE_LAYER, BackboneConfig
from dltrain.config.schema import Config
from dltrain.errors import ConfigError

WHERE = f"model.layers.0.{BACKBONE_LAYER}"
# Arguments dltrain sets itself (no classifier: the config's own layers follow), or that are
# BackboneConfig's keys. The images always reach the backbone preprocessed, so its own
# preprocessing layer (include_preprocessing) is dltrain's choice too.
MANAGED_ARGS = frozenset({"include_top", "input_tensor", "input_shape", "classes",
                          "classifier_activation", "include_preprocessing", "name", "weights",
                          "pooling"})
IMAGENET = "imagenet"


def backbone_of(config: Config) -> BackboneConfig | None:
    """The first layer's Backbone settings, or None for a model without one.

    Raises:
        ConfigError: a Backbone that is not the first layer, or a bad key, with its key path.
    """
    for index, spec in enumerate(config.model.layers):
        if BACKBONE_LAYER in spec and index:
            raise ConfigError(f"model.layers.{index}.{BACKBONE_LAYER}: a backbone must be the "
                              f"first layer (model.layers.0), where it takes the images; it is "
                              f"layer {index}. Move it to the top of model.layers.")
    ((name, args),) = config.model.layers[0].items()
    if name != BACKBONE_LAYER:
        return None
    try:
        return BackboneConfig.model_validate(args)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join([WHERE, *map(str, error["loc"])])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown key"
        received = "" if error["type"] == "missing" else f" Received: {error['input']!r}."
        raise ConfigError(f"{where}: {message}.{received}") from None


def check_structure(config: Config) -> BackboneConfig | None:
    """What needs neither Keras nor its catalog: the place, the keys, the image shape, the
    weights file, and how the backbone sits with the dataset and training sections."""
    spec = backbone_of(config)
    if spec is None:
        return None
    shape = config.model.input_shape
    if len(shape) != 3 or shape[-1] not in (1, 3):
        raise ConfigError(f"model.input_shape: a backbone takes images [height, width, 1 or 3 "
                          f"channels] (grayscale is repeated to RGB). Received: {shape}.")
    weights = None if spec.weights in (None, IMAGENET) else Path(spec.weights).expanduser()
    if weights is not None and not weights.is_file():
        found = (f"{weights} is not a weights file but "
                 f"{'a folder' if weights.is_dir() else 'a pipe, socket or device'}"
                 if weights.exists() else f"no such weights file: {weights}")
        raise ConfigError(f"{WHERE}.weights: {found}. Give a weights file (.weights.h5 or .h5) "
                          f"that exists, '{IMAGENET}' or null.")
    if config.dataset.standardize:
        raise ConfigError("dataset.standardize: a backbone normalises its inputs itself (its "
                          "preprocess_input) and takes images scaled to [0, 1]; remove "
                          "dataset.standardize.")
    tune = spec.fine_tune
    if tune is not None and tune.at_epoch >= config.training.epochs:
        raise ConfigError(f"{WHERE}.fine_tune.at_epoch: fine-tuning starts after epoch "
                          f"{tune.at_epoch}, but training.epochs is {config.training.epochs}, "
                          f"so it would never start. Set at_epoch below training.epochs.")
    return spec


def image_size(spec: BackboneConfig, default_size: int) -> tuple[int, int]:
    """The size images are resized to for the backbone: input_size, else the backbone's own."""
    return tuple(spec.input_size) if spec.input_size else (default_size, default_size)  # type: ignore[return-value]


def check_size(spec: BackboneConfig, min_size: int, default_size: int) -> None:
    height, width = image_size(spec, default_size)
    if min(height, width) < min_size:
        raise ConfigError(f"{WHERE}.input_size: {spec.name} takes images of at least "
                          f"{min_size}x{min_size}. Received: [{height}, {width}]. Set input_size "
                          f"to [{min_size}, {min_size}] or more (its default is "
                          f"{default_size}x{default_size}).")
