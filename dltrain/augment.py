"""ImageDataGenerator's augmentation vocabulary, implemented with Keras preprocessing layers.

| ImageDataGenerator          | Keras 3 layer                                   | difference            |
|-----------------------------|-------------------------------------------------|-----------------------|
| horizontal_flip             | RandomFlip("horizontal")                        | none                  |
| vertical_flip               | RandomFlip("vertical")                          | none                  |
| rotation_range: d (degrees) | RandomRotation(d / 360)                         | none (uniform ±d)     |
| width/height_shift_range: f | RandomTranslation(f_h, f_w)                     | fractions only        |
| zoom_range: z or [lo, hi]   | RandomZoom(lo - 1 .. hi - 1, both axes)         | same scale semantics  |
| fill_mode, cval             | fill_mode, fill_value of the layers above       | none                  |
"""

from __future__ import annotations

from typing import Any

from dltrain.build import keras_module
from dltrain.schema import AugmentationConfig


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


def make_augmenter(cfg: AugmentationConfig, seed: int) -> Any | None:
    """One Sequential of the layers above, or None when the config asks for no augmentation."""
    layers = augmentation_layers(cfg, seed)
    if not layers:
        return None
    return keras_module().Sequential(layers, name="augmentation")
