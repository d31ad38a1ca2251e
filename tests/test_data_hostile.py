"""Hostile data files through the real `fit`: each is refused at once with exit 2, a message
naming the file (and the array, column, label or link), no traceback, and nothing written."""

from __future__ import annotations

import io
import os
import struct
import time
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy_format

from conftest import run_cli, write_yaml

NPZ_CONFIG = """\
name: hostile
dataset: {name: npz, path: data.npz}
model: {input_shape: [4, 4, 1], layers: [Flatten, {Dense: {units: 2, activation: softmax}}]}
loss: %s
training: {epochs: 1, batch_size: 4}
"""
CSV_CONFIG = """\
name: hostile
dataset: {name: csv, path: data.csv, label_column: label}
model: {input_shape: [2], layers: [{Dense: {units: 2, activation: softmax}}]}
loss: sparse_categorical_crossentropy
training: {epochs: 1, batch_size: 4}
"""
IMAGE_CONFIG = """\
name: hostile
dataset: {name: image_folder, path: photos, image_size: [8, 8], test_split: 0.25}
model: {input_shape: [8, 8, 3], layers: [Flatten, {Dense: {units: 2, activation: softmax}}]}
loss: sparse_categorical_crossentropy
training: {epochs: 1, batch_size: 4}
"""


def good_arrays() -> dict[str, np.ndarray]:
    return {"x_train": np.zeros((10, 4, 4), np.uint8), "y_train": np.arange(10) % 2,
            "x_test": np.zeros((4, 4, 4), np.uint8), "y_test": np.arange(4) % 2}


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def npy_header(shape: tuple[int, ...], descr: str) -> bytes:
    """A .npy header alone: what a file claims, without the data it would need."""
    buffer = io.BytesIO()
    npy_format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False,
                                               "shape": shape})
    return buffer.getvalue()


def write_npz(path: Path, **members: bytes | np.ndarray) -> None:
    arrays = {**{k: npy(v) for k, v in good_arrays().items()}, **{
        k: v if isinstance(v, bytes) else npy(v) for k, v in members.items()}}
    with zipfile.ZipFile(path, "w") as archive:
        for key, data in arrays.items():
            archive.writestr(f"{key}.npy", data)


def claimed_size(path: Path, member: str, size: int) -> None:
    """Make the zip's directory claim `size` uncompressed bytes for a stored member."""
    data = bytearray(path.read_bytes())
    entry = data.rindex(b"PK\x01\x02", 0, data.rindex(member.encode()))
    struct.pack_into("<I", data, entry + 24, size)
    path.write_bytes(bytes(data))


# Each case writes its files into the folder and returns (config text, what the message says).
Case = Callable[[Path], tuple[str, list[str]]]


def absurd_images(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", x_train=npy_header((10**12, 28, 28), "|u1") + bytes(100))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: array x_train", "(1000000000000, 28, 28)", "784,000,000,000,000 bytes"]


def absurd_labels(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_train=npy_header((10**12,), "<i8"))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: array y_train", "(1000000000000,)"]


def absurd_floats(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", x_test=npy_header((2**40, 4, 4), "<f4") + bytes(64))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: array x_test", f"({2**40}, 4, 4)"]


def absurd_declared_size(folder: Path) -> tuple[str, list[str]]:
    # The header agrees with the size the zip claims; the member holds a few bytes.
    claimed = 0xFFFF_FF00
    header = npy_header((claimed - 128,), "|u1")
    assert len(header) == 128
    write_npz(folder / "data.npz", x_train=header + bytes(16))
    claimed_size(folder / "data.npz", "x_train.npy", claimed)
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: member x_train.npy claims 4,294,967,040 bytes", "holds 144"]


def zero_d_images(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", x_train=np.array(5))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: x_train is a single value (5), not an array"]


def zero_d_labels(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_test=np.array(1))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: y_test is a single value (1), not an array"]


def zero_d_text(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_train=np.array("cat"))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: y_train is a single value ('cat'), not an array"]


def labels_not_utf8(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_train=np.array([b"cat"] * 9 + [b"\xff\xfe"]),
              y_test=np.array([b"cat", b"dog"] * 2))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: y_train row 9 holds bytes that are not UTF-8 text (b'\\xff\\xfe')"]


def labels_of_test_not_utf8(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_train=np.array([b"cat", b"dog"] * 5),
              y_test=np.array([b"\xe9t\xe9", b"cat", b"dog", b"cat"]))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: y_test row 0 holds bytes that are not UTF-8 text (b'\\xe9t\\xe9')"]


def huge_label(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_train=np.array([0] * 9 + [10**9]))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: label 1000000000 (y_train row 9)", "0..K-1"]


def huge_label_one_hot(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_test=np.array([0, 1, 2**40, 1]))
    return NPZ_CONFIG % "categorical_crossentropy", [
        f"data.npz: label {2**40} (y_test row 2)", "0..K-1"]


def negative_label(folder: Path) -> tuple[str, list[str]]:
    write_npz(folder / "data.npz", y_test=np.array([0, 1, 0, -7]))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: class ids count from 0, but the labels hold -7 (y_test row 3)"]


def float_label_past_int64(folder: Path) -> tuple[str, list[str]]:
    # Cast to int64 it became -9223372036854775808, and was refused as a negative label.
    write_npz(folder / "data.npz", y_train=np.array([0.0] * 9 + [1e300]))
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: label 1e+300 (y_train row 9)", "0..K-1"]


def csv_label_past_int64(folder: Path) -> tuple[str, list[str]]:
    rows = [f"{i},{i + 1},{i % 2}" for i in range(11)] + ["3,4,99999999999999999999999"]
    (folder / "data.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return CSV_CONFIG, ["data.csv: label 1e+23 (column 'label')", "0..K-1"]


def huge_csv_label(folder: Path) -> tuple[str, list[str]]:
    rows = [f"{i},{i + 1},{i % 2}" for i in range(11)] + ["3,4,1000000000"]
    (folder / "data.csv").write_text("a,b,label\n" + "\n".join(rows) + "\n")
    return CSV_CONFIG, ["data.csv: label 1000000000 (column 'label')", "0..K-1"]


def duplicate_feature(folder: Path) -> tuple[str, list[str]]:
    (folder / "data.csv").write_text("a,a,label\n1,2,0\n3,4,1\n5,6,0\n7,8,1\n")
    return CSV_CONFIG, ["data.csv: column 'a' appears twice in the header (columns 1 and 2)"]


def duplicate_label(folder: Path) -> tuple[str, list[str]]:
    (folder / "data.csv").write_text("a,label,b,label\n1,0,2,1\n3,1,4,0\n5,0,6,1\n7,1,8,0\n")
    return CSV_CONFIG, ["data.csv: column 'label' appears twice in the header (columns 2 and 4)"]


def duplicate_after_spaces(folder: Path) -> tuple[str, list[str]]:
    (folder / "data.csv").write_text("a, b ,b,label\n1,2,3,0\n3,4,5,1\n5,6,7,0\n7,8,9,1\n")
    return CSV_CONFIG, ["data.csv: column 'b' appears twice in the header (columns 2 and 3)"]


def png(width: int, height: int) -> bytes:
    """A grey PNG of width x height pixels; one that claims more than 8 rows holds only 8."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (struct.pack(">I", len(body)) + kind + body
                + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
            + chunk(b"IDAT", zlib.compress(bytes((width + 1) * min(height, 8)))) + chunk(b"IEND", b""))


def gif(width: int, height: int) -> bytes:
    """A GIF whose screen and image claim width x height pixels."""
    return (b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
            + b"," + struct.pack("<HHHHB", 0, 0, width, height, 0) + b"\x02\x02\x4c\x01\x00;")


def photos(folder: Path) -> Path:
    root = folder / "photos"
    for name in ("cats", "dogs"):
        (root / name).mkdir(parents=True)
        for index in range(4):
            (root / name / f"{index}.png").write_bytes(png(8, 8))
    return root


def bmp(width: int, height: int) -> bytes:
    """A 24-bit BMP whose header claims width x height pixels; it holds none."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    return b"BM" + struct.pack("<IHHI", 14 + len(info), 0, 0, 14 + len(info)) + info


def jpeg(width: int, height: int) -> bytes:
    """A JPEG's start: an APP0 segment, then a frame header claiming width x height pixels."""
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    frame = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + frame + b"\xff\xd9"


def png_bomb(folder: Path) -> tuple[str, list[str]]:
    (photos(folder) / "dogs" / "big.png").write_bytes(png(30000, 30000))
    return IMAGE_CONFIG, ["photos/dogs/big.png: an image of 30000x30000 pixels"]


def png_just_over(folder: Path) -> tuple[str, list[str]]:
    # Just over twice Pillow's MAX_IMAGE_PIXELS, where its DecompressionBombError begins.
    (photos(folder) / "cats" / "wide.png").write_bytes(png(13400, 13400))
    return IMAGE_CONFIG, ["photos/cats/wide.png: an image of 13400x13400 pixels"]


def gif_bomb(folder: Path) -> tuple[str, list[str]]:
    (photos(folder) / "cats" / "huge.gif").write_bytes(gif(65535, 65535))
    return IMAGE_CONFIG, ["photos/cats/huge.gif: an image of 65535x65535 pixels"]


def bmp_bomb(folder: Path) -> tuple[str, list[str]]:
    (photos(folder) / "dogs" / "scan.bmp").write_bytes(bmp(50000, -40000))
    return IMAGE_CONFIG, ["photos/dogs/scan.bmp: an image of 50000x40000 pixels"]


def jpeg_bomb(folder: Path) -> tuple[str, list[str]]:
    (photos(folder) / "cats" / "photo.jpg").write_bytes(jpeg(65000, 65000))
    return IMAGE_CONFIG, ["photos/cats/photo.jpg: an image of 65000x65000 pixels"]


def fifo_image(folder: Path) -> tuple[str, list[str]]:
    # Keras's loader opened it and waited for a writer forever.
    os.mkfifo(photos(folder) / "cats" / "pipe.png")
    return IMAGE_CONFIG, ["photos/cats/pipe.png: not a regular file (a pipe, socket or device)"]


def fifo_csv(folder: Path) -> tuple[str, list[str]]:
    os.mkfifo(folder / "data.csv")
    return CSV_CONFIG, ["data.csv: not a regular file (a pipe, socket or device)"]


def fifo_npz(folder: Path) -> tuple[str, list[str]]:
    os.mkfifo(folder / "data.npz")
    return NPZ_CONFIG % "sparse_categorical_crossentropy", [
        "data.npz: not a regular file (a pipe, socket or device)"]


def link_loop(folder: Path) -> tuple[str, list[str]]:
    os.symlink("birds", photos(folder) / "birds")
    return IMAGE_CONFIG, ["photos/birds: a symbolic link that loops or leads nowhere"]


def image_link_loop(folder: Path) -> tuple[str, list[str]]:
    os.symlink("loop.png", photos(folder) / "cats" / "loop.png")
    return IMAGE_CONFIG, ["photos/cats/loop.png: a symbolic link that loops or leads nowhere"]


def link_to_the_data_folder(folder: Path) -> tuple[str, list[str]]:
    os.symlink(".", photos(folder) / "all")
    return IMAGE_CONFIG, ["photos/all: a symbolic link to", "the data folder itself"]


def link_to_another_class(folder: Path) -> tuple[str, list[str]]:
    os.symlink("cats", photos(folder) / "kittens")
    return IMAGE_CONFIG, ["photos/kittens: a symbolic link to", "the class folder 'cats'"]


def link_into_another_class(folder: Path) -> tuple[str, list[str]]:
    root = photos(folder)
    (root / "cats" / "tabby").mkdir()
    (root / "cats" / "tabby" / "0.png").write_bytes(png(8, 8))
    os.symlink("cats/tabby", root / "tabbies")
    return IMAGE_CONFIG, ["photos/tabbies: a symbolic link to", "inside class folder 'cats'"]


def link_to_the_parent(folder: Path) -> tuple[str, list[str]]:
    os.symlink("..", photos(folder) / "up")
    return IMAGE_CONFIG, ["photos/up: a symbolic link to", "a folder holding the data folder"]


CASES: dict[str, Case] = {
    "npz images of 10^12 samples": absurd_images, "npz labels of 10^12": absurd_labels,
    "npz floats of 2^40 samples": absurd_floats, "npz member size 4 GB": absurd_declared_size,
    "0-d images": zero_d_images, "0-d labels": zero_d_labels, "0-d text labels": zero_d_text,
    "label bytes not utf-8": labels_not_utf8, "test label bytes not utf-8": labels_of_test_not_utf8,
    "label 10^9": huge_label, "label 2^40 one-hot": huge_label_one_hot,
    "label -7": negative_label, "label 1e300": float_label_past_int64,
    "csv label 10^23": csv_label_past_int64, "csv label 10^9": huge_csv_label,
    "csv duplicate feature": duplicate_feature, "csv duplicate label": duplicate_label,
    "csv duplicate after spaces": duplicate_after_spaces,
    "png bomb": png_bomb, "png over pillow's limit": png_just_over, "gif bomb": gif_bomb,
    "bmp bomb": bmp_bomb, "jpeg bomb": jpeg_bomb, "fifo image": fifo_image,
    "fifo csv": fifo_csv, "fifo npz": fifo_npz,
    "link loop": link_loop, "image link loop": image_link_loop,
    "link to the data folder": link_to_the_data_folder,
    "link to another class": link_to_another_class, "link into a class": link_into_another_class,
    "link to the parent": link_to_the_parent,
}


def listing(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=str)
def test_hostile_data_is_refused_promptly_and_named(
        case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    config, expected = CASES[case](tmp_path)
    write_yaml(tmp_path / "hostile.yaml", config)
    before = listing(tmp_path)
    started = time.monotonic()
    code, out, err = run_cli(capsys, "fit", "hostile.yaml")
    elapsed = time.monotonic() - started
    print(err)  # the message, for the record (pytest -s)
    assert code == 2, out + err
    message = " ".join(err.split())  # rich wraps long lines
    for part in expected:
        assert part in message, message
    assert "Traceback" not in err and "internal error" not in err
    assert listing(tmp_path) == before  # no run directory, nothing else written
    assert elapsed < 60, f"{elapsed:.0f} s to refuse"


def text_bomb() -> bytes:
    """An 8x8 PNG with a text chunk of 4 MB, deflated to a few kilobytes."""
    body = b"Comment\x00\x00" + zlib.compress(b"a" * (4 << 20))
    chunk = (struct.pack(">I", len(body)) + b"zTXt" + body
             + struct.pack(">I", zlib.crc32(b"zTXt" + body) & 0xFFFFFFFF))
    return png(8, 8)[:33] + chunk + png(8, 8)[33:]


def test_a_text_chunk_bomb_is_named_where_pillow_decodes(tmp_path: Path) -> None:
    # Pillow's ValueError (past MAX_TEXT_CHUNK) went through as an internal error on JAX and
    # torch, where Pillow decodes the image folder.
    from dltrain.backend.images import _decode_with_pillow
    from dltrain.config.dataset_section import DatasetConfig
    from dltrain.data.images import image_files, read_files
    from dltrain.errors import DataError

    root = photos(tmp_path)
    (root / "cats" / "note.png").write_bytes(text_bomb())
    cfg = DatasetConfig(name="image_folder", path=root, image_size=[8, 8])
    with pytest.raises(DataError) as caught:
        read_files(image_files(root, ["cats", "dogs"]), cfg, _decode_with_pillow)
    assert str(caught.value) == (f"{root / 'cats' / 'note.png'}: not a readable image "
                                 "(Decompressed data too large for PngImagePlugin.MAX_TEXT_CHUNK).")


def test_a_large_photo_pillow_only_warns_about_is_no_bomb() -> None:
    """A 12000x8000 aerial photo (96 MP) is over Pillow's MAX_IMAGE_PIXELS, where Pillow only
    warns; it decodes, so only past twice that (Pillow's error) is an image refused."""
    from dltrain.data.image_size import check_pixels
    from dltrain.errors import DataError

    check_pixels(io.BytesIO(png(12000, 8000)), "wide.png")
    with pytest.raises(DataError, match="wide.png: an image of 13400x13400 pixels"):
        check_pixels(io.BytesIO(png(13400, 13400)), "wide.png")


def test_links_to_files_beside_the_class_folders_are_no_classes(tmp_path: Path) -> None:
    """A README or sample image linked beside the class folders stopped the run with an error
    about class folders: only a link that is or may be a folder is one."""
    from dltrain.data.images import class_folders

    root = photos(tmp_path)
    (root / "sample.png").symlink_to(root / "cats" / "0.png")
    (root / "README").symlink_to(tmp_path / "notes.md")
    (tmp_path / "notes.md").write_text("where the photos came from")
    assert sorted(path.name for path in class_folders(root)) == ["cats", "dogs"]
