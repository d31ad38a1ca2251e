"""Bad data through the real CLI: exit 2, a message naming the file, no run directory left."""

from __future__ import annotations

import gzip
import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIGS, run_cli, write_mnist, write_yaml


def corrupt_gzip(folder: Path) -> str:
    write_mnist(folder)
    (folder / "train-images-idx3-ubyte.gz").write_bytes(b"this is not gzip")
    return "train-images-idx3-ubyte.gz: not a valid gzip file"


def wrong_magic(folder: Path) -> str:
    write_mnist(folder)
    with gzip.open(folder / "t10k-labels-idx1-ubyte.gz", "wb") as handle:
        handle.write(bytes([0, 0, 9, 1]) + (20).to_bytes(4, "big") + bytes(20))
    return "t10k-labels-idx1-ubyte.gz: wrong IDX magic number 00000901"


def truncated(folder: Path) -> str:
    write_mnist(folder)
    path = folder / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    with gzip.open(path, "wb") as handle:
        handle.write(data[:-100])
    return "train-images-idx3-ubyte.gz: truncated or padded IDX file"


def missing_file(folder: Path) -> str:
    write_mnist(folder)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    return "missing t10k-images-idx3-ubyte.gz"


def wrong_shapes(folder: Path) -> str:
    folder.mkdir()
    np.savez(folder / "mnist.npz", x_train=np.zeros((10, 28, 28), np.uint8),
             y_train=np.zeros(9, np.uint8), x_test=np.zeros((5, 28, 28), np.uint8),
             y_test=np.zeros(5, np.uint8))
    return "mnist.npz: x_train has 10 samples but y_train has 9"


def labels_beyond_the_model(folder: Path) -> str:
    folder.mkdir()
    np.savez(folder / "mnist.npz", x_train=np.zeros((20, 28, 28), np.uint8),
             y_train=np.arange(20) % 12, x_test=np.zeros((5, 28, 28), np.uint8),
             y_test=np.arange(5))
    return "the data has 12 classes but the last layer has 10 units"


MNIST_CASES: dict[str, Callable[[Path], str]] = {
    "corrupt gzip": corrupt_gzip, "wrong magic": wrong_magic, "truncated": truncated,
    "missing file": missing_file, "wrong shapes": wrong_shapes,
    "labels beyond the model": labels_beyond_the_model,
}


@pytest.mark.parametrize("case", MNIST_CASES, ids=str)
def test_bad_mnist_files(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    expected = MNIST_CASES[case](tmp_path / "mnist")
    code, out, err = run_cli(capsys, "fit", CONFIGS / "mnist_cnn.yaml", "--set",
                             f"dataset.data_dir={tmp_path / 'mnist'}")
    assert code == 2, out + err
    assert expected in err and "Traceback" not in err
    assert not (tmp_path / "runs").exists()


def test_pickle_that_is_not_a_cifar_batch(cifar_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (cifar_dir / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps({"a": 1}))
    code, _, err = run_cli(capsys, "fit", CONFIGS / "cifar_cnn.yaml", "--set",
                           f"dataset.data_dir={cifar_dir}")
    assert code == 2 and "test_batch: not a CIFAR batch" in err
    assert not (tmp_path / "runs").exists()


def test_csv_column_that_does_not_exist(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "fit", CONFIGS / "tabular_binary.yaml", "--set",
                           "dataset.label_column=outcome")
    assert code == 2
    assert "pima_diabetes.csv: no column 'outcome'. Columns: pregnant, glucose" in err
    assert not (tmp_path / "runs").exists()


def test_image_folder_without_classes(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photos").mkdir()
    config = write_yaml(tmp_path / "photos.yaml", """\
name: photos
dataset: {name: image_folder, path: photos, image_size: [8, 8]}
model: {input_shape: [8, 8, 3], layers: [Flatten, {Dense: {units: 2, activation: softmax}}]}
loss: sparse_categorical_crossentropy
""")
    code, _, err = run_cli(capsys, "fit", config)
    assert code == 2 and f"{tmp_path / 'photos'}: no class sub-folders" in err
    assert not (tmp_path / "runs").exists()
