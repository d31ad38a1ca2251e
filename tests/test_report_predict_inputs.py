"""What predict takes as inputs beyond plain files: a folder, standard input ('-' or
/dev/stdin), and what it refuses promptly by name: pipes and devices, decompression bombs."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from test_data_hostile import gif, png, text_bomb

from conftest import ROOT, copy_run, run_cli
from dltrain.config.dataset_section import DatasetConfig
from dltrain.errors import DataError
from dltrain.report.predict import read_inputs

IMAGE_RUN = DatasetConfig(name="fashion_mnist_mini")
CSV_RUN = DatasetConfig(name="csv", path=Path("train.csv"), label_column="label")
SHAPE = [8, 8, 1]


class Stdin(io.TextIOWrapper):
    """Standard input holding `data`; a terminal when asked to be."""

    def __init__(self, data: bytes, terminal: bool = False) -> None:
        super().__init__(io.BytesIO(data))
        self.terminal = terminal

    def isatty(self) -> bool:
        return self.terminal


def refusal(path: Path, shape: list[int] = SHAPE, dataset: DatasetConfig = IMAGE_RUN) -> str:
    started = time.monotonic()
    with pytest.raises(DataError) as caught:
        read_inputs(path, shape, dataset)
    assert time.monotonic() - started < 5  # promptly: nothing read that it should not
    return str(caught.value)


def test_a_folder_gives_its_images_and_csvs_sorted(tmp_path: Path) -> None:
    # It said "no such file" for a folder that exists.
    for name in ("b.png", "a.PNG", "c.png"):
        (tmp_path / name).write_bytes(png(8, 8))
    (tmp_path / "notes.txt").write_text("not an input")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.png").write_bytes(png(8, 8))
    entries = read_inputs(tmp_path, SHAPE, IMAGE_RUN)
    assert [entry.name for entry in entries] == [
        str(tmp_path / name) for name in ("a.PNG", "b.png", "c.png")]
    rows = tmp_path / "rows"
    rows.mkdir()
    (rows / "x.csv").write_text("a,b\n1,2\n3,4\n")
    assert [entry.name for entry in read_inputs(rows, [2], CSV_RUN)] == [
        f"{rows / 'x.csv'}:2", f"{rows / 'x.csv'}:3"]


@pytest.mark.parametrize(("files", "said"), [
    ([], "is a folder without images (.bmp, .gif, .jpeg, .jpg, .png) or .csv files."),
    (["notes.txt"], "is a folder without images (.bmp, .gif, .jpeg, .jpg, .png) or .csv files."),
    (["cats/a.png"], "is a folder without images (.bmp, .gif, .jpeg, .jpg, .png) or .csv "
     "files. predict reads the files directly inside a folder, not its sub-folders (cats); "
     "name them: dltrain predict RUN"),
])
def test_a_folder_without_inputs_says_so(tmp_path: Path, files: list[str], said: str) -> None:
    folder = tmp_path / "inputs"
    folder.mkdir()
    for name in files:
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(png(8, 8))
    assert refusal(folder).startswith(f"{folder}: {said}")


@pytest.mark.parametrize("name", ["-", "/dev/stdin"])
def test_standard_input_holds_an_image_or_csv_rows(name: str,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", Stdin(png(8, 8)))
    [entry] = read_inputs(Path(name), SHAPE, IMAGE_RUN)
    assert entry.name == "stdin" and entry.values.shape == (8, 8)
    monkeypatch.setattr(sys, "stdin", Stdin(b"b,label,a\n2,0,1\n4,1,3\n"))
    rows = read_inputs(Path(name), [2], CSV_RUN)
    assert [(row.name, row.values.tolist()) for row in rows] == [
        ("stdin:2", [2.0, 1.0]), ("stdin:3", [4.0, 3.0])]


@pytest.mark.parametrize(("data", "terminal", "said"), [
    (b"", True, "standard input is a terminal; pipe an image or CSV rows into it"),
    (b"", False, "standard input is empty; pipe an image or CSV rows into it"),
    (b"\x89PNG\r\n\x1a\nbroken", False, "stdin: not a readable image"),
    (b"a,a\n1,2\n", False, "stdin: column 'a' appears twice in the header"),
])
def test_standard_input_that_is_no_input_is_refused(data: bytes, terminal: bool, said: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", Stdin(data, terminal))
    shape, dataset = (SHAPE, IMAGE_RUN) if data.startswith(b"\x89") else ([2], CSV_RUN)
    assert said in refusal(Path("-"), shape, dataset)


def test_standard_input_is_read_once_and_may_be_closed(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    # The second '-' read nothing and said standard input was empty.
    from dltrain.report.predict import check_stdin_once

    with pytest.raises(DataError) as caught:
        check_stdin_once([Path("-"), tmp_path, Path("/dev/stdin")])
    assert str(caught.value) == ("predict: standard input is given twice (- and /dev/stdin); it "
                                 "can be read once.")
    monkeypatch.setattr(sys, "stdin", None)  # started with <&-
    assert "standard input is closed; pipe an image" in refusal(Path("-"))


def test_a_text_chunk_bomb_is_named_where_pillow_decodes(tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from dltrain.backend.images import _decode_with_pillow

    monkeypatch.setattr("dltrain.report.predict.decode_image", _decode_with_pillow)
    (tmp_path / "note.png").write_bytes(text_bomb())
    assert refusal(tmp_path / "note.png") == (
        f"{tmp_path / 'note.png'}: not a readable image (Decompressed data too large for "
        "PngImagePlugin.MAX_TEXT_CHUNK).")


def test_a_pipe_or_device_is_refused_without_reading_it(tmp_path: Path) -> None:
    # Opening a FIFO with no writer waits for one; /dev/zero never ends.
    fifo = tmp_path / "rows.csv"
    os.mkfifo(fifo)
    assert refusal(fifo) == (f"{fifo}: not a regular file (a pipe, socket or device). predict "
                             "reads image and CSV files, folders of them, or standard input "
                             "given as '-'.")
    assert refusal(Path("/dev/zero")).startswith("/dev/zero: not a regular file")


@pytest.mark.parametrize(("name", "data", "size"), [
    ("big.png", png(30000, 30000), "30000x30000"), ("wide.png", png(13400, 13400), "13400x13400"),
    ("huge.gif", gif(65535, 65535), "65535x65535")])
def test_a_decompression_bomb_is_refused_by_name_and_size(tmp_path: Path, name: str,
                                                          data: bytes, size: str) -> None:
    (tmp_path / name).write_bytes(data)
    assert refusal(tmp_path / name).startswith(f"{tmp_path / name}: an image of {size} pixels")


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory, shared_smoke_run: Path) -> Path:
    """One quickstart --smoke run (28x28 grey images), shared by the CLI tests below."""
    return copy_run(shared_smoke_run, tmp_path_factory.mktemp("predict") / "run")


def item_pngs(folder: Path) -> list[Path]:
    import tensorflow as tf

    images = np.load(ROOT / "dltrain" / "data" / "shipped" / "fashion_mnist_mini.npz")["x_test"]
    folder.mkdir()
    paths = [folder / f"item{index}.png" for index in range(3)]
    for path, image in zip(paths, images, strict=False):
        path.write_bytes(tf.io.encode_png(image[..., None]).numpy())
    return paths


@pytest.mark.slow
def test_predict_of_a_folder_and_of_stdin_answers_as_for_the_files(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    paths = item_pngs(tmp_path / "items")
    code, out, err = run_cli(capsys, "predict", smoke_run, *paths, "--json")
    assert code == 0, err
    by_file = json.loads(out)
    code, out, err = run_cli(capsys, "predict", smoke_run, tmp_path / "items", "--json")
    assert code == 0, err
    assert json.loads(out) == by_file
    monkeypatch.setattr(sys, "stdin", Stdin(paths[1].read_bytes()))
    code, out, err = run_cli(capsys, "predict", smoke_run, "-", "--json")
    assert code == 0, err
    [alone] = json.loads(out)  # one image in its own batch: the same to float precision
    assert alone["input"] == "stdin"
    assert [top["class"] for top in alone["top"]] == [top["class"] for top in by_file[1]["top"]]
    assert [top["probability"] for top in alone["top"]] == pytest.approx(
        [top["probability"] for top in by_file[1]["top"]], abs=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize(("stdin", "said"), [
    (subprocess.DEVNULL, "standard input is empty"),
    (b"\x89PNG\r\n\x1a\n" + png(30000, 30000)[8:], "stdin: an image of 30000x30000 pixels"),
])
def test_predict_from_stdin_in_a_real_process_ends_promptly(
        smoke_run: Path, tmp_path: Path, stdin: int | bytes, said: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "dltrain", "predict", str(smoke_run), "-"], cwd=tmp_path,
        input=stdin if isinstance(stdin, bytes) else None,
        stdin=None if isinstance(stdin, bytes) else stdin, capture_output=True, timeout=300,
        env={**os.environ, "COLUMNS": "300"})
    err = done.stderr.decode()
    assert done.returncode == 2, err
    assert said in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written


@pytest.mark.slow
def test_a_bad_input_is_refused_before_the_model_loads(
        smoke_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Loading the model took seconds before a missing file or a bomb was named."""
    def loaded(*args: object) -> None:
        raise AssertionError("the model was loaded before the inputs were read")

    monkeypatch.setattr("dltrain.report.predict.load_model", loaded)
    (tmp_path / "bomb.png").write_bytes(png(30000, 30000))
    code, _, err = run_cli(capsys, "predict", smoke_run, tmp_path / "bomb.png")
    assert code == 2, err
    assert f"{tmp_path / 'bomb.png'}: an image of 30000x30000 pixels" in " ".join(err.split())
