"""The image_folder source: a folder of class sub-folders, read with Keras's own image loader
on TensorFlow (it is built on tf.data), and file by file with the backend's decoder elsewhere."""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.image_size import check_pixels
from dltrain.data.raw import Raw, refuse_special, split_off
from dltrain.errors import DataError


def read_image_folder(cfg: DatasetConfig) -> Raw:
    """Train (and test) images as uint8 arrays; classes are the sub-folder names, sorted."""
    x, y, names = read_class_folders(cfg.path, cfg)  # type: ignore[arg-type]
    if cfg.test_path is not None:
        x_test, y_test, test_names = read_class_folders(cfg.test_path, cfg)
        if test_names != names:
            raise DataError(f"{cfg.test_path}: its classes {test_names} differ from {cfg.path}'s "
                            f"{names}.")
        return Raw(x, y, x_test, y_test, names)
    train, test = split_off(len(y), cfg.test_split, cfg.test_split_seed)
    return Raw(x[train], y[train], x[test], y[test], names)


def read_class_folders(folder: Path, cfg: DatasetConfig) -> tuple[np.ndarray, np.ndarray, list[str]]:
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder; image_folder expects one sub-folder of images "
                        "per class, e.g. cats/ and dogs/.")
    names = sorted(entry.name for entry in class_folders(folder))
    if not names:
        raise DataError(f"{folder}: no class sub-folders; put each class's images in a sub-folder "
                        "named after the class.")
    files = image_files(folder, names)
    from dltrain.backend import decode_image, input_is_tf_data, keras_module

    if not input_is_tf_data():  # Keras's folder reader is tf.data
        return read_files(files, cfg, decode_image)
    try:
        data = keras_module().utils.image_dataset_from_directory(
            folder, labels="inferred", label_mode="int", class_names=names,
            color_mode=cfg.color_mode, image_size=tuple(cfg.image_size), batch_size=None,
            shuffle=False, verbose=False)
        images, labels = [], []
        for image, label in data.as_numpy_iterator():
            images.append(np.clip(np.rint(image), 0, 255).astype(np.uint8))
            labels.append(label)
    except Exception as exc:  # noqa: BLE001 - ValueError, or TensorFlow's own decode errors
        # tf.data's error names no file: decode them one by one to name the one that fails.
        read_files(files, cfg, decode_image)
        reason = re.sub(r"\{\{.*?\}\}\s*", "", str(exc).strip().splitlines()[0])
        raise DataError(f"{folder}: an image could not be read: {reason}") from None
    return np.stack(images), np.asarray(labels, dtype=np.int64), names


FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")  # what Keras's loader reads


Decoder = Callable[[bytes, int, tuple[int, int]], Any]


# The first bytes of each format Keras's loader reads: a file named .png that is not one is
# named before decoding, where TensorFlow would fail without saying which file it was.
SIGNATURES = (b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF87a", b"GIF89a", b"BM")


def class_folders(folder: Path) -> list[Path]:
    """The sub-folders that are classes. A link among them must lead to a folder of its own:
    a loop was dropped silently, and a link to the data folder made a class of every image."""
    root = folder.resolve()
    # A link that leads to a file (a README, a sample image) is no class; one leading nowhere
    # may have been meant as one.
    found = [entry for entry in folder.iterdir()
             if entry.is_dir() or (entry.is_symlink() and not entry.is_file())]
    real = {entry.resolve(): entry.name for entry in found if not entry.is_symlink()}
    for entry in (entry for entry in found if entry.is_symlink()):
        if not entry.exists():
            raise DataError(f"{entry}: a symbolic link that loops or leads nowhere "
                            f"({os.readlink(entry)}), among the class folders of {folder}. "
                            "Remove it, or point it at a folder of images.")
        target = entry.resolve()
        clash = _overlap(target, real)
        if root.is_relative_to(target):
            clash = (f"{'the data folder itself' if target == root else 'a folder holding the data folder'}"
                     ", so its class would hold every image")
        if clash:
            raise DataError(f"{entry}: a symbolic link to {target}: {clash}. Remove the link, "
                            "or replace it with a folder of the class's own images.")
    return [entry for entry in found if entry.is_dir()]


def _overlap(target: Path, classes: dict[Path, str]) -> str:
    """How a linked class folder shares images with a real one, or "" where it does not."""
    for folder, name in classes.items():
        if target == folder:
            return f"the class folder '{name}', so the same images would be two classes"
        if target.is_relative_to(folder) or folder.is_relative_to(target):
            where = "inside" if target.is_relative_to(folder) else "around"
            return f"a folder {where} class folder '{name}', so images would be in two classes"
    return ""


def image_files(folder: Path, names: list[str]) -> dict[str, list[Path]]:
    """Each class's image files in sorted order, checked before any is decoded: every class has
    images, every file is one of a size a decoder can take, and no symbolic link leads out of
    the data folder."""
    root = folder.resolve()
    found = {}
    for name in names:
        files = sorted(p for p in (folder / name).rglob("*") if p.suffix.lower() in FORMATS)
        for path in [folder / name, *files]:
            refuse_special(path, "Remove it; an image folder holds image files.")
            if path.is_symlink() and not path.exists():
                raise DataError(f"{path}: a symbolic link that loops or leads nowhere "
                                f"({os.readlink(path)}). Remove it, or point it at an image.")
            if path.is_symlink() and not path.resolve().is_relative_to(root):
                raise DataError(f"{path}: a symbolic link to {path.resolve()}, outside {folder}; "
                                "dltrain reads only what is inside the data folder. Copy it in, "
                                "or point dataset.path at a folder that holds it.")
        files = [path for path in files if path.is_file()]
        if not files:
            raise DataError(f"{folder}: class folder '{name}' holds no images "
                            f"({', '.join(FORMATS)}), so the model would learn a class it never "
                            "sees. Add its images or remove the folder.")
        for path in files:
            with path.open("rb") as handle:
                head = handle.read(8)
                if not head.startswith(SIGNATURES):
                    raise DataError(f"{path}: not an image, though its name ends in "
                                    f"{path.suffix}. Remove it or replace it with the image.")
                handle.seek(0)
                check_pixels(handle, str(path))
        found[name] = files
    return found


def read_files(files: dict[str, list[Path]], cfg: DatasetConfig,
               decode: Decoder) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Keras's loader without tf.data: class by class, files in sorted order, resized bilinearly."""
    channels = {"grayscale": 1, "rgb": 3, "rgba": 4}[cfg.color_mode]
    images, labels = [], []
    for label, paths in enumerate(files.values()):
        for path in paths:
            try:
                images.append(decode(path.read_bytes(), channels, tuple(cfg.image_size)))  # type: ignore[arg-type]
            except ValueError as exc:  # ImageDecodeError; Pillow's past its MAX_TEXT_CHUNK
                raise DataError(f"{path}: not a readable image ({exc}).") from None
            labels.append(label)
    return np.stack(images), np.asarray(labels, dtype=np.int64), list(files)
