"""A keras.applications backbone as the model's first block, with its input preparation inside.

The model takes the run's images as they are prepared (scaled to [0, 1]) and does the rest
itself, as layers saved with it: `backbone_resize` (Resizing to the backbone's image size) and
`backbone_preprocess`, a frozen 1x1 linear map (Dense on the channel axis) equal to the
backbone's own `preprocess_input` on 0-255 pixels, which also repeats a grayscale channel to
RGB. Every application's preprocess_input is such a per-channel affine map ('tf', 'torch' and
'caffe' modes, or none); it is read off the function itself, so it cannot drift from Keras's.
Being in the model, the same steps run in fit, eval, predict and any export.
"""

from __future__ import annotations

import contextlib
import re
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from dltrain.backend import keras_module
from dltrain.config.backbone import WHERE, backbone_of, image_size
from dltrain.config.catalog import unknown_backbone
from dltrain.config.model_section import BackboneConfig
from dltrain.config.names import load_catalog
from dltrain.config.schema import Config
from dltrain.data.download import fetch, file_hash_matches, keras_cache_dir, mirrored
from dltrain.data.prepare import Splits
from dltrain.errors import ConfigError, DataError

RESIZE_LAYER = "backbone_resize"
PREPROCESS_LAYER = "backbone_preprocess"
PIXEL_MAX = 255.0  # the model's inputs are in [0, 1]; preprocess_input expects 0-255 pixels
OFFLINE_HINT = ("Put the file there (download it where there is a network, or set "
                "DLTRAIN_DOWNLOAD_URL to a mirror holding it), or set the backbone's weights to "
                "a weights file or null.")


def applications() -> dict[str, Any]:
    """Every keras.applications constructor by its Keras name."""
    return {name: function for name, function in vars(keras_module().applications).items()
            if callable(function) and name[:1].isupper()}


def application(name: str) -> Any:
    """The keras.applications constructor of that name, or a ConfigError with the nearest."""
    known = applications()
    if name not in known:
        raise ConfigError(f"{WHERE}.name: {unknown_backbone(name, known)}")
    return known[name]


def backbone_layers(config: Config, spec: BackboneConfig, function: Any) -> list[Any]:
    """Resizing (when the size changes), the preprocessing map and the backbone, ready to add.

    The preprocessing layer's weights are set once the model is built (`set_preprocessing`).
    """
    keras = keras_module()
    height, width = image_size(spec, default_size(spec.name))
    layers = []
    if resizes(config, spec):
        layers.append(keras.layers.Resizing(height, width, name=RESIZE_LAYER, dtype="float32"))
    layers.append(keras.layers.Dense(3, name=PREPROCESS_LAYER, trainable=False, dtype="float32"))
    layers.append(make_application(function, spec, (height, width, 3)))
    return layers


def resizes(config: Config, spec: BackboneConfig) -> bool:
    return tuple(config.model.input_shape[:2]) != image_size(spec, default_size(spec.name))


def default_size(name: str) -> int:
    """The application's own image size, from the catalog (224 for one it does not list)."""
    return int(load_catalog().get("backbones", {}).get(name, {}).get("default_size", 224))


def make_application(function: Any, spec: BackboneConfig, shape: tuple[int, int, int]) -> Any:
    """The application without its classifier; imagenet weights through dltrain's download."""
    with keras_cache_downloads(), warnings.catch_warnings():
        # MobileNet's "weights for input shape (224, 224) will be loaded": expected, since the
        # convolutions' weights fit any image size.
        warnings.simplefilter("ignore", UserWarning)
        try:
            model = function(include_top=False, weights=spec.weights, input_shape=shape,
                             pooling=spec.pooling, **spec.kwargs)
        except (ValueError, TypeError) as exc:
            mismatch = weights_mismatch(str(exc)) if _a_file(spec.weights) else None
            if mismatch is not None:
                raise ConfigError(f"{WHERE}.weights: {spec.weights} holds the weights of another "
                                  f"model than {described(spec)}: {mismatch} Give a weights file "
                                  f"saved from this backbone with the same arguments, or weights: "
                                  f"imagenet or null.") from None
            raise ConfigError(f"{WHERE}: {_first_line(exc)}") from None
        except OSError as exc:  # h5py's, of a file that is no weights file (an internal error)
            if not _a_file(spec.weights):
                raise
            raise ConfigError(f"{WHERE}.weights: {spec.weights} is not a weights file Keras can "
                              f"read ({_first_line(exc)}); give a .weights.h5 file saved from "
                              f"this application.") from None
    model.trainable = spec.trainable
    if spec.fine_tune is not None:
        check_fine_tune_layers(model, spec.name, spec.fine_tune.layers)
    return model


# What Keras says when a weights file's arrays do not fit the model: the Keras 3 format
# (.weights.h5) names a layer and the two shapes, then prints the whole variable (kilobytes of
# numbers); the legacy .h5 format says it in one sentence.
_KERAS3_MISMATCH = re.compile(
    r"A total of (?P<count>\d+) objects could not be loaded\..*?object <\w+ name=(?P<layer>[^,>]+)"
    r".*?variable\.shape=(?P<expected>\([^)]*\)), Received: value\.shape=(?P<found>\([^)]*\))",
    re.DOTALL)
_LEGACY_MISMATCH = re.compile(
    r"layer #\d+ \(named (?P<layer>[^)]+)\)\s*for weight (?P<weight>\S+)\. Weight expects shape "
    r"(?P<expected>\([^)]*\))\. Received saved weight with shape (?P<found>\([^)]*\))")
_MISSING = re.compile(r"Layer '(?P<layer>[^']+)' expected (?P<expected>\d+) variables, but "
                      r"received (?P<found>\d+) variables")


def weights_mismatch(text: str) -> str | None:
    """Which layer's weights do not fit, and their shapes, from Keras's error; None when the
    error is about something else."""
    found = _KERAS3_MISMATCH.search(text) or _LEGACY_MISMATCH.search(text)
    if found is not None:
        fields = found.groupdict()
        more = int(fields.get("count") or 1) - 1
        return (f"layer '{fields['layer']}' expects a weight of shape {fields['expected']}, the "
                f"file has {fields['found']}"
                + (f" ({more} more do not fit either)." if more else "."))
    missing = _MISSING.search(text)
    if missing is not None:
        return (f"layer '{missing['layer']}' expects {missing['expected']} weight arrays, the "
                f"file has {missing['found']}.")
    return None


def described(spec: BackboneConfig) -> str:
    """'MobileNetV2 (alpha=0.35)': the application and the arguments that shape its weights."""
    arguments = ", ".join(f"{key}={value!r}" for key, value in sorted(spec.kwargs.items()))
    return f"{spec.name} ({arguments})" if arguments else spec.name


def _a_file(weights: object) -> bool:
    return isinstance(weights, str) and weights != "imagenet"


def check_fine_tune_layers(model: Any, name: str, count: int) -> None:
    """fine_tune.layers must reach weights that can train (not only pooling or BatchNorm)."""
    where = f"{WHERE}.fine_tune.layers"
    if count > len(model.layers):
        raise ConfigError(f"{where}: {name} has {len(model.layers)} layers. Received: {count}. "
                          f"Unfreeze at most that many.")
    batch_norm = keras_module().layers.BatchNormalization
    if not any(layer.weights and not isinstance(layer, batch_norm)
               for layer in model.layers[-count:]):
        raise ConfigError(f"{where}: the last {count} layer(s) of {name} hold no weights that "
                          f"fine-tuning would train (pooling, activations and BatchNormalization "
                          f"stay as they are). Received: {count}. Unfreeze more layers.")


@contextlib.contextmanager
def keras_cache_downloads() -> Iterator[None]:
    """Route the applications' `get_file` calls (imagenet weights) through dltrain's download.

    Keras reads KERAS_HOME once, at import; this reads it now, mirrors through
    DLTRAIN_DOWNLOAD_URL, downloads atomically with the published checksum, and fails with the
    file's name, URL and cache folder. The applications look get_file up on the module that
    defines keras.utils.get_file at each call, so that is where it is replaced, for the build.
    """
    module: Any = sys.modules[keras_module().utils.get_file.__module__]
    original = module.get_file

    def get_file(fname: str, origin: str, cache_subdir: str = "datasets",
                 file_hash: str | None = None, **_: Any) -> str:
        target = keras_cache_dir(cache_subdir) / fname
        if not (target.is_file() and file_hash_matches(target, file_hash)):
            fetch(mirrored(origin, fname), target, file_hash, OFFLINE_HINT)
        return str(target)

    module.get_file = get_file
    try:
        yield
    finally:
        module.get_file = original


def preprocess_function(name: str) -> tuple[str, Any]:
    """The application's preprocess_input and its public name."""
    family = applications()[name].__module__.rsplit(".", 1)[-1]
    return (f"keras.applications.{family}.preprocess_input",
            getattr(keras_module().applications, family).preprocess_input)


def channel_map(name: str, channels: int) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of the Dense that turns [0, 1] images of `channels` channels into what the
    backbone's preprocess_input makes of their 0-255 pixels (RGB; grayscale repeated)."""
    public, preprocess = preprocess_function(name)

    def apply(pixels: np.ndarray) -> np.ndarray:  # it may work in place: give it a copy
        return np.asarray(preprocess(pixels.reshape(-1, 1, 1, 3).astype(np.float32).copy()),
                          dtype=np.float64).reshape(-1, 3)

    bias = apply(np.zeros(3))[0]
    matrix = apply(np.eye(3)) - bias
    probe = np.random.default_rng(0).uniform(0, PIXEL_MAX, size=(8, 3))
    if not np.allclose(apply(probe), probe @ matrix + bias, atol=1e-3):
        raise ConfigError(f"{WHERE}.name: {public} is not a per-channel linear map, so dltrain "
                          f"cannot make it a layer of the model; choose another backbone.")
    if channels == 1:
        matrix = matrix.sum(axis=0, keepdims=True)
    return (matrix * PIXEL_MAX).astype(np.float32), bias.astype(np.float32)


def set_preprocessing(model: Any, spec: BackboneConfig, channels: int) -> None:
    model.get_layer(PREPROCESS_LAYER).set_weights(list(channel_map(spec.name, channels)))


def backbone_preprocessing(config: Config) -> dict[str, Any]:
    """What preprocessing.json says about the backbone (nothing without one): every step is
    inside the model."""
    spec = backbone_of(config)
    if spec is None:
        return {}
    channels = config.model.input_shape[-1]
    public, _ = preprocess_function(spec.name)
    kernel, bias = channel_map(spec.name, channels)
    return {"backbone": {
        "name": spec.name, "weights": spec.weights, "input_range": [0.0, 1.0],
        "image_size": list(image_size(spec, default_size(spec.name))),
        "in_model": [RESIZE_LAYER] * resizes(config, spec) + [PREPROCESS_LAYER],
        "preprocess_input": public,
        "input_channels": channels, "grayscale_repeated_to_rgb": channels == 1,
        "kernel": kernel.tolist(), "bias": bias.tolist(),
        "note": ("the saved model resizes and preprocesses images itself: feed it images "
                 "scaled to [0, 1] at model.input_shape, as fit, eval and predict do")}}


def check_backbone_inputs(config: Config, splits: Splits) -> None:
    """The backbone block expects [0, 1] images; anything else would be scaled wrongly."""
    if backbone_of(config) is None:
        return
    low = float(splits.x_train.min(initial=0.0))
    high = float(splits.x_train.max(initial=0.0))
    if low < -1e-3 or high > 1 + 1e-3:
        raise DataError(f"a backbone takes images scaled to [0, 1] (it turns them into the pixel "
                        f"values its preprocess_input expects), but the prepared training images "
                        f"range over [{low:g}, {high:g}]. Set dataset.rescale so that they do, "
                        f"e.g. {1 / 255!r} for 0-255 pixels.")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
