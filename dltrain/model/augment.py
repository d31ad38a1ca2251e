"""ImageDataGenerator's augmentation vocabulary, implemented with Keras preprocessing layers.

| ImageDataGenerator          | Keras 3 layer                                   | difference            |
|-----------------------------|-------------------------------------------------|-----------------------|
| horizontal_flip             | RandomFlip("horizontal")                        | none                  |
| vertical_flip               | RandomFlip("vertical")                          | none                  |
| rotation_range: d (degrees) | RandomRotation(d / 360)                         | none (uniform ±d)     |
| width/height_shift_range: f | RandomTranslation(f_h, f_w)                     | fractions only        |
| zoom_range: z or [lo, hi]   | RandomZoom(lo - 1 .. hi - 1, both axes)         | same scale semantics  |
| fill_mode, cval             | fill_mode, fill_value of the layers above       | none                  |
| brightness_range: [lo, hi]  | multiply by U(lo, hi) per image, clip to range  | none (backend op)     |
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from dltrain.backend import brightness_seed, keras_module, random_brightness
from dltrain.config.schema import AugmentationConfig


def augmentation_layers(cfg: AugmentationConfig, seed: int) -> list[Any]:
    """The preprocessing layers for the training split, in ImageDataGenerator's order."""
    layers = keras_module().layers
    fill = {"fill_mode": cfg.fill_mode, "fill_value": cfg.cval, "seed": seed}
    out: list[Any] = []
    if cfg.rotation_range:
        out.append(layers.RandomRotation(cfg.rotation_range / 360, **fill))
    if cfg.width_shift_range or cfg.height_shift_range:
        out.append(layers.RandomTranslation(cfg.height_shift_range, cfg.width_shift_range, **fill))
    if cfg.zoom_range:
        low, high = _zoom_bounds(cfg.zoom_range)
        # ImageDataGenerator's zoom scales the sampling grid, as RandomZoom's factor + 1 does.
        out.append(layers.RandomZoom((low - 1, high - 1), (low - 1, high - 1), **fill))
    flip = {(True, False): "horizontal", (False, True): "vertical",
            (True, True): "horizontal_and_vertical"}.get((cfg.horizontal_flip, cfg.vertical_flip))
    if flip:
        out.append(layers.RandomFlip(flip, seed=seed))
    return out


def _zoom_bounds(zoom: float | tuple[float, float]) -> tuple[float, float]:
    if isinstance(zoom, (int, float)):
        return 1 - zoom, 1 + zoom
    return zoom


def make_augmenter(cfg: AugmentationConfig, seed: int,
                   value_max: float = 1.0) -> Callable[[Any], Any] | None:
    """A function from a batch of images to an augmented batch; None when nothing is asked."""
    layers = augmentation_layers(cfg, seed)
    if not layers and cfg.brightness_range is None:
        return None
    brightness = brightness_seed(seed)

    def augment(images: Any) -> Any:
        for layer in layers:
            images = layer(images, training=True)
        if cfg.brightness_range is not None:
            images = scale_brightness(images, cfg.brightness_range, value_max, brightness)
        return images

    return augment


def scale_brightness(images: Any, bounds: tuple[float, float], value_max: float, seed: Any) -> Any:
    """ImageDataGenerator's brightness_range: each image times one factor, kept in range."""
    return random_brightness(images, bounds, value_max, seed)
