"""predict's CSV reader: rows as the run's features, with messages that name the line."""

from __future__ import annotations

from pathlib import Path

import pytest

from dltrain.config.dataset_section import DatasetConfig
from dltrain.errors import DataError
from dltrain.report.predict import read_inputs, read_rows
from dltrain.tasks.classification import actual_class
from dltrain.tasks.regression import actual_values

DATASET = DatasetConfig(name="csv", path=Path("train.csv"), label_column="label")


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def test_rows_are_the_features_named_by_their_line_blank_lines_counted(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "b,label,a\n2,0,1\n\n4,1,3\n")
    rows = read_rows(path, DATASET)
    assert [(row.name, row.values.tolist(), row.actual) for row in rows] == [
        (f"{path}:2", [2.0, 1.0], {"label": "0"}), (f"{path}:4", [4.0, 3.0], {"label": "1"})]


def test_rows_are_read_by_the_trained_column_names_in_the_trained_order(tmp_path: Path) -> None:
    # The file's own order was taken: swapped columns gave other answers, renamed ones some.
    trained = ["a", "b"]
    path = write(tmp_path / "rows.csv", "b,label,a\n2,0,1\n")
    [row] = read_rows(path, DATASET, feature_names=trained)
    assert row.values.tolist() == [1.0, 2.0]
    renamed = write(tmp_path / "renamed.csv", "x,label,y\n2,0,1\n")
    with pytest.raises(DataError) as caught:
        read_rows(renamed, DATASET, feature_names=trained)
    assert str(caught.value) == (f"{renamed}: missing feature column(s) a, b; the model takes "
                                 "a, b (in any order).")


@pytest.mark.parametrize("value", ["nan", "inf", "-Infinity"])
def test_a_feature_that_is_not_finite_is_refused_at_its_line(tmp_path: Path, value: str) -> None:
    # Training refuses such values; predict answered for them (class 1 at 1.000).
    path = write(tmp_path / "rows.csv", f"a,b\n1,2\n3,{value}\n")
    with pytest.raises(DataError) as caught:
        read_rows(path, DATASET)
    assert str(caught.value) == (f"{path}, line 3: a feature value is not a finite number (NaN or "
                                 "infinite).")


def test_a_byte_order_mark_does_not_hide_the_first_column(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "a,b\n1,2\n", encoding="utf-8-sig")
    named = DATASET.model_copy(update={"feature_columns": ["a", "b"]})
    [row] = read_rows(path, named)
    assert row.values.tolist() == [1.0, 2.0] and row.actual is None  # no label column


def test_rows_that_are_not_utf8_name_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "a,b\n1,2\n3,4 # größer\n", encoding="latin-1")
    with pytest.raises(DataError) as caught:
        read_rows(path, DATASET)
    assert str(caught.value) == (f"{path}, line 3: not UTF-8 text (byte 0xf6); save the file as "
                                 "UTF-8 (a spreadsheet's 'CSV UTF-8').")


def test_a_field_over_the_csv_modules_limit_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", 'a,b\n"' + "1" * 200_000 + '",2\n')
    with pytest.raises(DataError) as caught:
        read_rows(path, DATASET)
    assert str(caught.value).startswith(f"{path}, line 2: not a readable CSV (field larger")


def test_rows_of_another_width_than_the_model_takes_are_refused(tmp_path: Path) -> None:
    path = write(tmp_path / "rows.csv", "a,b\n1,2\n3,4\n")
    image_run = DatasetConfig(name="fashion_mnist_mini")
    with pytest.raises(DataError) as caught:
        read_inputs(path, [28, 28, 1], image_run)
    assert str(caught.value) == (f"{path}: 2 feature values per row (a, b), but the model takes "
                                 "784 (input shape [28, 28, 1]).")
    assert [row.values.tolist() for row in read_inputs(path, [2], DATASET)] == [[1, 2], [3, 4]]


def test_a_rows_own_label_is_named_as_the_run_names_its_classes() -> None:
    names = ["tested_negative", "tested_positive"]
    assert actual_class({"label": "tested_positive"}, names, None) == "tested_positive"
    assert actual_class({"label": "1"}, names, None) == "tested_positive"  # an id: its name
    assert actual_class({"label": "1.0"}, ["0", "1"], None) == "1"
    assert actual_class({"label": "7"}, ["even", "odd"], {7: 1, 8: 0}) == "odd"  # label_map
    assert actual_class({"label": "9"}, ["0", "1"], {7: 1, 8: 0}) == "9"  # not in the map
    assert actual_class({"label": "cat"}, ["0", "1"], None) == "cat"
    for text in ("1.5", "inf", "nan", "-1"):  # no class id: shown as written
        assert actual_class({"label": text}, ["0", "1"], None) == text


def test_a_rows_own_targets_are_numbers_or_none() -> None:
    assert actual_values({"y": "3.5", "z": "n/a"}) == {"y": 3.5, "z": None}


@pytest.mark.parametrize(("header", "name", "columns"), [
    ("a,a,label", "a", "1 and 2"), ("a,label, label", "label", "2 and 3")])
def test_a_column_named_twice_is_refused(tmp_path: Path, header: str, name: str,
                                         columns: str) -> None:
    # The row's values were matched to one of the two silently.
    path = write(tmp_path / "rows.csv", f"{header}\n1,2,0\n")
    with pytest.raises(DataError) as caught:
        read_rows(path, DATASET)
    assert str(caught.value) == (f"{path}: column '{name}' appears twice in the header (columns "
                                 f"{columns}); every column needs its own name. Rename or remove "
                                 "one.")
