"""The result tables of fit, eval, predict and export at the widths CI logs get, with long
names: each row keeps its name, no number is split, only free text wraps."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from dltrain.report import tables

WIDTHS = [80, 60]
LONG_METRIC = "sparse_top_k_categorical_accuracy_of_the_model"
CLASSES = ["a_very_long_class_name_from_a_folder_of_images_one",
           "a_very_long_class_name_from_a_folder_of_images_two", "Ankle boot"]


def rendered(renderable: Any, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, record=True)
    console.print(renderable)
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines()), text
    assert "…" not in text, text
    return text


def words(text: str) -> set[str]:
    return set(text.replace("│", " ").replace("┃", " ").replace(",", " ").split())


@pytest.mark.parametrize("width", WIDTHS)
def test_the_score_tables_keep_names_and_numbers_whole(width: int) -> None:
    console = Console(file=io.StringIO(), width=width, record=True)
    tables.print_scores(console, "Test results", {
        "test": {LONG_METRIC: 0.912345, "loss": 12345.678},
        "report": {"per_class": [{"class": name, "precision": 0.1234, "recall": 0.5678,
                                  "f1": 0.9012, "support": 123456} for name in CLASSES],
                   "accuracy": 0.8765, "macro_f1": 0.5432}})
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines()) and "…" not in text, text
    found = words(text)
    assert {LONG_METRIC, "0.9123", "12345.6780", *CLASSES[:2], "0.123", "0.568", "0.901",
            "123456"} <= found, text
    assert "accuracy 0.8765, macro F1 0.5432" in " ".join(text.split())
    assert "Ankle boot" in text


@pytest.mark.parametrize("width", WIDTHS)
def test_the_regression_and_values_tables_keep_names_and_numbers_whole(width: int) -> None:
    target = "median_house_value_in_thousands_of_dollars"
    console = Console(file=io.StringIO(), width=width, record=True)
    tables.print_scores(console, "Evaluation", {"test": {"loss": 0.5}, "regression": {
        "per_target": [{"target": target, "mae": 123.456, "rmse": 234.567, "r2": 0.87654,
                        "target_std": 98765.4}]}})
    text = console.export_text()
    assert all(len(line) <= width for line in text.splitlines()) and "…" not in text, text
    assert {target, "123.46", "234.57", "0.8765", "98765.40"} <= words(text), text
    results = [{"input": f"/data/incoming/batch_{n}/houses_to_price.csv:{n + 2}",
                "values": {target: 123456.7 * (n + 1)}, "actual": {target: 99.5}}
               for n in range(2)]
    text = rendered(tables.values_table(results), width)
    assert {"houses_to_price.csv:2", "houses_to_price.csv:3", "1.235e+05",
            "2.469e+05", "99.50"} <= words(text), text


@pytest.mark.parametrize("width", WIDTHS)
def test_the_predict_table_names_each_input_by_its_shortest_unique_path(width: int) -> None:
    results = [{"input": f"/home/someone/pictures/holiday_2026/{folder}/shoe_photo.png",
                "top": [{"class": name, "probability": p} for name, p in
                        zip(CLASSES, [0.9123, 0.0456, 0.0001], strict=True)],
                "actual": CLASSES[0]} for folder in ("first_folder", "second_folder")]
    text = rendered(tables.predictions_table(results, 3), width)
    assert {"first_folder/shoe_photo.png", "second_folder/shoe_photo.png", "0.912", "0.046",
            "0.000", *CLASSES[:2]} <= words(text), text


@pytest.mark.parametrize("width", WIDTHS)
def test_the_export_table_wraps_free_text_and_keeps_the_path_whole(width: int) -> None:
    path = "runs/fashion_mnist_cnn_with_augmentation-20260101-120000/model.onnx"
    entry = {"status": "passed", "format": "onnx", "path": path, "max_abs_diff": 1.2345e-06,
             "tolerance": 1e-05, "test_samples": 10000,
             "accuracy": {"keras": 0.91234, "export": 0.91234}, "predictions_agree": 1.0,
             "input": {"dtype": "float32", "shape": [None, 28, 28, 1],
                       "values": "raw pixel values as decoded from image files (height, width, "
                                 "channels)", "value_range": [0, 255],
                       "included_steps": ["rescale x0.00392157"]},
             "runtime": "onnxruntime 1.20.1", "seconds": {"export": 12.345, "check": 1.5}}
    text = rendered(tables.export_table(entry), width)
    assert path in "".join(line.strip(" │") for line in text.splitlines()), text
    assert {"1.23e-06", "1e-05", "10000", "0.9123", "100.0%", "12.35",
            "1.50"} <= words(text), text
