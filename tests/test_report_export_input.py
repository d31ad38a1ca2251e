"""export.json says what a caller of the exported file must do to an image or a CSV row to
give it what `dltrain predict` gives the model (dltrain/report/export_input.py): the steps it
records, done here with NumPy and Pillow, reproduce predict's input exactly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from dltrain.backend import active_backend
from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.prepare import Preparation
from dltrain.report.export_input import describe_input
from dltrain.report.predict import read_image


def bilinear(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Half-pixel-centre bilinear resizing without antialiasing, in float32, as recorded."""
    values = image.astype(np.float32)
    for axis, (old, new) in enumerate(zip(image.shape[:2], size, strict=True)):
        where = (np.arange(new, dtype=np.float32) + np.float32(0.5)) * np.float32(old / new) \
            - np.float32(0.5)
        low = np.floor(where)
        weight = (where - low).astype(np.float32)
        below = np.clip(low, 0, old - 1).astype(int)
        above = np.clip(low + 1, 0, old - 1).astype(int)
        shape = [1] * values.ndim
        shape[axis] = new
        weight = weight.reshape(shape)
        first, second = np.take(values, below, axis), np.take(values, above, axis)
        values = first + (second - first) * weight
    return np.clip(np.round(values), 0, 255).astype(np.uint8)  # round half to even


def grey(rgb: np.ndarray, recipe: str) -> np.ndarray:
    """The grey conversion a recipe names, done with integers."""
    r, g, b = (rgb[..., index].astype(np.int64) for index in range(3))
    if "(9797*R + 19234*G + 3737*B) >> 15" in recipe:
        return ((9797 * r + 19234 * g + 3737 * b) >> 15).astype(np.uint8)
    assert "(19595*R + 38470*G + 7471*B + 32768) >> 16" in recipe, recipe
    return ((19595 * r + 38470 * g + 7471 * b + 32768) >> 16).astype(np.uint8)


def colour_png(path: Path, mode: str = "RGB") -> np.ndarray:
    pixels = np.random.default_rng(7).integers(0, 256, (21, 30, len(mode)), dtype=np.uint8)
    Image.fromarray(pixels, mode).save(path)
    return pixels


def image_steps(shape: list[int]) -> dict:
    raw = np.zeros((2, *shape), np.uint8)
    described = describe_input(Preparation(rescale=1 / 255), shape, raw, DatasetConfig(
        name="image_folder", path=Path("photos"), image_size=shape[:2]), active_backend())
    return described["image"]


@pytest.mark.parametrize("suffix", ["png", "bmp"])
def test_the_recorded_grey_steps_reproduce_predicts_input(tmp_path: Path, suffix: str) -> None:
    steps = image_steps([12, 16, 1])
    assert steps["channels"] == "L (one grey channel)" and steps["layout"] == "NHWC"
    assert steps["resize"] == {
        "when": "the image is not 12x16 (height x width)", "method": "bilinear", "size": [12, 16],
        "half_pixel_centers": True, "antialias": False, "computed_in": "float32",
        "then": "round half to even, clip to 0..255, uint8",
        "not": "Pillow's Image.resize, which antialiases when it shrinks"}
    path = tmp_path / f"colour.{suffix}"
    pixels = colour_png(path)
    recipe = next(text for formats, text in steps["grey_from_colour"].items() if suffix in formats)
    expected = bilinear(grey(pixels, recipe)[..., None], (12, 16))[..., 0]
    np.testing.assert_array_equal(read_image(path, [12, 16, 1]), expected)


def test_the_recorded_colour_steps_reproduce_predicts_input(tmp_path: Path) -> None:
    steps = image_steps([12, 16, 3])
    assert steps["channels"] == "RGB, in that order; alpha dropped, not composited; grey repeated"
    path = tmp_path / "colour.png"
    pixels = colour_png(path, "RGBA")
    expected = bilinear(pixels[..., :3], (12, 16))
    np.testing.assert_array_equal(read_image(path, [12, 16, 3]), expected)
    assert steps["dtype"] == "float32" and steps["value_range"] == [0, 255]


def test_a_csv_models_columns_and_target_are_recorded() -> None:
    preparation = Preparation(rescale=1.0, mean=np.zeros(3, np.float32),
                              std=np.ones(3, np.float32), feature_names=["glucose", "bmi", "age"])
    dataset = DatasetConfig(name="csv", path=Path("pima.csv"), label_column="diabetic",
                            feature_columns=["glucose", "bmi", "age"])
    described = describe_input(preparation, [3], np.ones((4, 3), np.float32), dataset,
                               active_backend())
    assert described["columns"] == {
        "features": ["glucose", "bmi", "age"], "target": ["diabetic"],
        "row": "each row's feature values by column name, in this order, as float32 numbers, "
               "unscaled: the export standardises them itself"}
    assert "image" not in described


def test_a_csv_model_trained_unstandardised_is_fed_its_values_as_they_are() -> None:
    preparation = Preparation(rescale=1.0, feature_names=["glucose", "bmi"])  # no standardize
    dataset = DatasetConfig(name="csv", path=Path("pima.csv"), label_column="diabetic",
                            feature_columns=["glucose", "bmi"])
    described = describe_input(preparation, [2], np.ones((4, 2), np.float32), dataset,
                               active_backend())
    assert described["columns"]["row"] == (
        "each row's feature values by column name, in this order, as float32 numbers, as they "
        "are in the CSV: the model was trained on them unscaled")
