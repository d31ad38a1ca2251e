"""The image_folder source: class sub-folders of PNG files, read with Keras's loader."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import run_cli, write_yaml
from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.images import read_image_folder
from dltrain.errors import DataError


def write_pngs(folder: Path, classes: dict[str, int], size: int = 12) -> None:
    """`count` PNGs per class; class i's images have every pixel equal to 40 * (i + 1)."""
    import tensorflow as tf

    for index, (name, count) in enumerate(classes.items()):
        (folder / name).mkdir(parents=True)
        for n in range(count):
            pixels = np.full((size, size, 3), 40 * (index + 1), dtype=np.uint8)
            (folder / name / f"{n}.png").write_bytes(tf.io.encode_png(pixels).numpy())


def config(path: Path, **fields: object) -> DatasetConfig:
    return DatasetConfig(name="image_folder", path=path, image_size=(8, 8), **fields)  # type: ignore[arg-type]


def test_classes_come_from_sub_folders_and_images_are_resized(tmp_path: Path) -> None:
    write_pngs(tmp_path / "train", {"cats": 6, "dogs": 4})
    raw = read_image_folder(config(tmp_path / "train", test_split=0.2))
    assert raw.class_names == ["cats", "dogs"]
    assert raw.x_train.shape == (8, 8, 8, 3) and raw.x_test.shape == (2, 8, 8, 3)
    assert raw.x_train.dtype == np.uint8
    # Each image's pixel value tells its class: the labels must agree with the folders.
    both = np.concatenate([raw.x_train, raw.x_test])[:, 0, 0, 0]
    labels = np.concatenate([raw.y_train, raw.y_test])
    np.testing.assert_array_equal(both, 40 * (labels + 1))
    assert np.bincount(labels).tolist() == [6, 4]


def test_grayscale_and_separate_test_folder(tmp_path: Path) -> None:
    write_pngs(tmp_path / "train", {"a": 3, "b": 3})
    write_pngs(tmp_path / "test", {"a": 1, "b": 2})
    raw = read_image_folder(config(tmp_path / "train", test_path=tmp_path / "test",
                                   color_mode="grayscale"))
    assert raw.x_train.shape == (6, 8, 8, 1) and raw.y_test.tolist() == [0, 1, 1]


def test_test_folder_with_other_classes_is_refused(tmp_path: Path) -> None:
    write_pngs(tmp_path / "train", {"a": 2, "b": 2})
    write_pngs(tmp_path / "test", {"a": 1, "c": 1})
    with pytest.raises(DataError) as caught:
        read_image_folder(config(tmp_path / "train", test_path=tmp_path / "test"))
    assert "its classes ['a', 'c'] differ from" in str(caught.value)


@pytest.mark.parametrize(("make", "expected"), [
    (lambda root: None, "not a folder"),
    (lambda root: root.mkdir(), "no class sub-folders"),
    (lambda root: (root / "empty_class").mkdir(parents=True), "class folder 'empty_class' holds no images"),
])
def test_unusable_folders_are_data_errors(tmp_path: Path, make, expected: str) -> None:  # type: ignore[no-untyped-def]
    root = tmp_path / "images"
    make(root)
    with pytest.raises(DataError) as caught:
        read_image_folder(config(root))
    assert str(caught.value).startswith(str(root)) and expected in str(caught.value)


@pytest.mark.slow
def test_fit_on_an_image_folder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_pngs(tmp_path / "train", {"cats": 10, "dogs": 10})
    path = write_yaml(tmp_path / "pets.yaml", """\
name: pets
dataset: {name: image_folder, path: train, image_size: [8, 8], test_split: 0.25}
model:
  input_shape: [8, 8, 3]
  layers: [Flatten, {Dense: {units: 2, activation: softmax}}]
loss: sparse_categorical_crossentropy
training: {epochs: 2, batch_size: 4}
""")
    code, out, err = run_cli(capsys, "fit", path, "--run-dir", tmp_path / "run")
    assert code == 0, err
    assert "epoch 2/2" in out and (tmp_path / "run" / "model.keras").is_file()


def test_the_file_by_file_reader_of_other_backends_matches_keras_loader(tmp_path: Path) -> None:
    """JAX and torch read image folders with Pillow (no tf.data); on PNGs that needs resizing it
    gives exactly what Keras's loader gives on TensorFlow."""
    from PIL import Image

    from dltrain.backend.images import _decode_with_pillow
    from dltrain.data.images import image_files, read_class_folders, read_files

    rng = np.random.default_rng(0)
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for n in range(3):
            Image.fromarray(rng.integers(0, 256, (13, 11, 3), dtype=np.uint8)).save(
                tmp_path / name / f"{n}.png")
    for mode in ("rgb", "grayscale"):
        cfg = config(tmp_path, color_mode=mode)
        x, y, names = read_class_folders(tmp_path, cfg)
        x2, y2, names2 = read_files(image_files(tmp_path, ["a", "b"]), cfg, _decode_with_pillow)
        np.testing.assert_array_equal(y, y2)
        assert names == names2 and x.shape == x2.shape
        # Pillow's grey (ITU-R 601-2 in integers) may round one level apart from TensorFlow's.
        assert np.abs(x.astype(int) - x2.astype(int)).max() <= (0 if mode == "rgb" else 1)


def test_a_file_with_an_image_name_that_is_no_image_is_named(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_pngs(root, {"cats": 3, "dogs": 3})
    (root / "dogs" / "notes.png").write_text("not a picture")
    with pytest.raises(DataError) as caught:
        read_image_folder(config(root))
    assert str(caught.value) == (
        f"{root / 'dogs' / 'notes.png'}: not an image, though its name ends in .png. Remove it "
        "or replace it with the image.")


def test_a_truncated_image_is_named_by_keras_loader_too(tmp_path: Path) -> None:
    """Its signature is a PNG's, so only decoding finds it: TensorFlow's loader said only
    'Invalid PNG data, size 60' inside a tf.data message, without the file."""
    root = tmp_path / "images"
    write_pngs(root, {"cats": 3, "dogs": 3})
    whole = (root / "dogs" / "0.png").read_bytes()
    (root / "dogs" / "cut.png").write_bytes(whole[:60])
    with pytest.raises(DataError) as caught:
        read_image_folder(config(root))
    assert str(caught.value).startswith(f"{root / 'dogs' / 'cut.png'}: not a readable image (")
    assert "{{" not in str(caught.value)


def test_a_file_with_an_image_name_that_is_no_image_exits_2_through_fit(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "images"
    write_pngs(root, {"cats": 3, "dogs": 3})
    (root / "cats" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    path = write_yaml(tmp_path / "c.yaml", f"""
name: folder
dataset: {{name: image_folder, path: {root}, image_size: [8, 8]}}
model:
  input_shape: [8, 8, 3]
  layers: [Flatten, {{Dense: {{units: 2, activation: softmax}}}}]
loss: sparse_categorical_crossentropy
""")
    code, out, err = run_cli(capsys, "fit", path, "--run-dir", tmp_path / "run")
    assert code == 2 and "Traceback" not in out + err
    assert str(root / "cats" / "broken.jpg") in " ".join(err.split())
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_symlink_out_of_the_data_folder_is_refused(tmp_path: Path, kind: str) -> None:
    root = tmp_path / "images"
    write_pngs(root, {"cats": 3, "dogs": 3})
    outside = tmp_path / "elsewhere"
    write_pngs(outside, {"birds": 2})
    link = root / "dogs" / "x.png" if kind == "file" else root / "birds"
    target = outside / "birds" / "0.png" if kind == "file" else outside / "birds"
    link.symlink_to(target)
    with pytest.raises(DataError) as caught:
        read_image_folder(config(root))
    assert str(caught.value) == (
        f"{link}: a symbolic link to {target}, outside {root}; dltrain reads only what is "
        "inside the data folder. Copy it in, or "
        "point dataset.path at a folder that holds it.")


def test_a_symlink_inside_the_data_folder_is_read(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_pngs(root, {"cats": 3, "dogs": 3})
    (root / "dogs" / "again.png").symlink_to(root / "dogs" / "0.png")
    raw = read_image_folder(config(root, test_split=0.25))
    assert len(raw.y_train) + len(raw.y_test) == 7


def test_an_empty_class_folder_is_refused_by_name(tmp_path: Path) -> None:
    root = tmp_path / "images"
    write_pngs(root, {"cats": 3, "dogs": 3})
    (root / "birds").mkdir()
    (root / "birds" / "readme.txt").write_text("to do")
    with pytest.raises(DataError) as caught:
        read_image_folder(config(root))
    assert str(caught.value) == (
        f"{root}: class folder 'birds' holds no images (.bmp, .gif, .jpeg, .jpg, .png), so the "
        "model would learn a class it never sees. Add its images or remove the folder.")


def test_a_16_bit_grey_png_reads_as_tensorflow_reads_it_on_every_backend() -> None:
    # Pillow's convert("L") clipped it: almost every pixel white on JAX and torch.
    import io

    import tensorflow as tf
    from PIL import Image

    from dltrain.backend.images import _decode_with_pillow

    values = np.random.default_rng(1).integers(0, 65536, (12, 10), dtype=np.uint16)
    buffer = io.BytesIO()
    Image.fromarray(values).save(buffer, format="PNG")
    assert Image.open(io.BytesIO(buffer.getvalue())).mode == "I;16"
    expected = tf.io.decode_image(buffer.getvalue(), channels=1).numpy()
    np.testing.assert_array_equal(_decode_with_pillow(buffer.getvalue(), 1, (12, 10)), expected)


@pytest.mark.parametrize(("mode", "suffix"), [("L", "bmp"), ("P", "gif"), ("CMYK", "jpeg")])
def test_images_tensorflow_cannot_decode_as_asked_are_read_through_pillow(
        mode: str, suffix: str) -> None:
    # "channels must be 0, 3 or 4 for BMP, but got 1", "... for GIF", "Invalid JPEG data".
    import io

    from PIL import Image

    from dltrain.backend import decode_image

    rgb = np.random.default_rng(2).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(rgb).convert(mode).save(buffer, format=suffix.upper())
    for channels in (1, 3):
        image = decode_image(buffer.getvalue(), channels, (9, 7))
        assert image.shape == (9, 7, channels) and image.dtype == np.uint8
        assert image.max() > 0  # not blank
