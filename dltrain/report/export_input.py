"""What export.json tells a caller of an exported model to feed it: the shape, dtype and
values, and for an image exactly how `dltrain predict` turns a file into those values (colour
conversion, resizing, channel order), for a CSV model its columns in order and its target."""

from __future__ import annotations

from typing import Any

import numpy as np

from dltrain.backend.images import grey_conversion
from dltrain.data.prepare import Preparation

CHANNELS = {1: "L (one grey channel)",
            3: "RGB, in that order; alpha dropped, not composited; grey repeated",
            4: "RGBA, in that order; an image without alpha gets 255"}


def describe_input(preparation: Preparation, raw_shape: list[int], raw: np.ndarray,
                   dataset: Any, backend: str) -> dict[str, Any]:
    """What a caller must feed the export: shape, dtype, the values it expects, and how
    predict (on `backend`) makes them from an image file or a CSV row."""
    steps = [f"rescale x{preparation.rescale:.6g}"]
    if preparation.mean is not None:
        steps.append("standardize with the training mean and std")
    if preparation.flatten_from is not None:
        steps.append(f"flatten {'x'.join(map(str, raw_shape))} to {int(np.prod(raw_shape))}")
    image = len(raw_shape) == 3
    low, high = (float(raw.min()), float(raw.max())) if raw.size else (0.0, 0.0)
    described: dict[str, Any] = {
        "shape": [None, *raw_shape], "dtype": "float32",
        "values": ("raw pixel values as decoded from image files (height, width, channels)"
                   if image else "raw feature values, unscaled, in the training columns' order"),
        "value_range": [0, 255] if image and low >= 0 and high <= 255 else [low, high],
        "included_steps": steps}
    if image:
        described["image"] = image_steps(raw_shape, backend)
    elif dataset.label_columns or preparation.feature_names:
        described["columns"] = csv_columns(preparation, dataset)
    return described


def image_steps(raw_shape: list[int], backend: str) -> dict[str, Any]:
    """How predict reads an image file into one sample, step by step."""
    height, width, channels = raw_shape
    steps: dict[str, Any] = {
        "decode": "the file's first frame, 8 bits per channel (PNG, JPEG, BMP, GIF)",
        "channels": CHANNELS.get(channels, f"{channels} channels"),
        "resize": {"when": f"the image is not {height}x{width} (height x width)",
                   "method": "bilinear", "size": [height, width], "half_pixel_centers": True,
                   "antialias": False, "computed_in": "float32",
                   "then": "round half to even, clip to 0..255, uint8",
                   "not": "Pillow's Image.resize, which antialiases when it shrinks"},
        "layout": "NHWC", "dtype": "float32", "value_range": [0, 255],
        "predict_backend": backend}
    if channels == 1:
        steps["grey_from_colour"] = grey_conversion(backend)
    return steps


def csv_columns(preparation: Preparation, dataset: Any) -> dict[str, Any]:
    """A CSV model's feature columns in the order the input takes them, and its target."""
    return {"features": list(preparation.feature_names or dataset.feature_columns or []),
            "target": list(dataset.label_columns),
            "row": "each row's feature values by column name, in this order, as float32 "
                   "numbers, " + ("unscaled: the export standardises them itself"
                                  if preparation.mean is not None else
                                  "as they are in the CSV: the model was trained on them "
                                  "unscaled")}
