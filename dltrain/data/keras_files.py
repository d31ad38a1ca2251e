"""The Keras datasets' canonical files: MNIST-style IDX or .npz, CIFAR pickles, and .npz files.

Each is read from `dataset.data_dir`, `$DLTRAIN_DATA_DIR/<name>/` or Keras's cache (downloaded
when missing), and returned as raw arrays in the datasets' own dtypes.
"""

from __future__ import annotations

import io
import math
import os
import pickle
import tarfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.npz_arrays import load_arrays, physical_memory
from dltrain.data.raw import Raw, checked, refuse_special
from dltrain.errors import DataError

DATA_DIR_ENV = "DLTRAIN_DATA_DIR"
SPLITS = ("x_train", "y_train", "x_test", "y_test")

IDX_FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}

FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                   "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck"]
DIGITS = [str(digit) for digit in range(10)]
DEBIAN_FASHION_MNIST = "/usr/share/datasets/fashion-mnist"  # Debian's dataset-fashion-mnist
# The real subsets in dltrain/data/shipped/: name, what they hold, how many.
SHIPPED_SUBSETS = {"mnist": ("mnist_mini", "real digits", "5,000"),
                   "fashion_mnist": ("fashion_mnist_mini", "real images", "6,000")}


def read_shipped_fashion_mnist(cfg: DatasetConfig) -> Raw:
    return read_npz(shipped_path("fashion_mnist_mini.npz"), FASHION_CLASSES)


def read_shipped_mnist(cfg: DatasetConfig) -> Raw:
    return read_npz(shipped_path("mnist_mini.npz"), DIGITS)


def read_npz_source(cfg: DatasetConfig) -> Raw:
    return read_npz(cfg.path)  # type: ignore[arg-type]


def read_mnist(cfg: DatasetConfig) -> Raw:
    folder = _local_folder(cfg) or _keras_cache(cfg.name)
    return read_mnist_folder(folder, DIGITS if cfg.name == "mnist" else FASHION_CLASSES)


def read_cifar_source(cfg: DatasetConfig) -> Raw:
    folder = _local_folder(cfg) or _keras_cache(cfg.name)
    return read_cifar(folder, cfg.name)


def _keras_cache(name: str) -> Path:
    """Keras's own cache: its extracted CIFAR folder if keras.datasets made one, else our files."""
    from dltrain.data.download import cached_folder, keras_datasets_dir

    extracted = keras_datasets_dir() / ("cifar-10-batches-py-target" if name == "cifar10"
                                        else "cifar-100-python-target")
    if name.startswith("cifar") and extracted.is_dir():
        return extracted
    holding = " or ".join(f"{folder}/" for folder in folder_names(name))
    hint = (f"Offline, put {_expected_files(name)} in a folder and set dataset.data_dir to "
            f"it, or set {DATA_DIR_ENV} to a folder holding {holding}.")
    if name == "fashion_mnist":
        hint += (" On Debian or Ubuntu: apt-get install dataset-fashion-mnist, then "
                 f"{DATA_DIR_ENV}={Path(DEBIAN_FASHION_MNIST).parent} or --set "
                 f"dataset.data_dir={DEBIAN_FASHION_MNIST}.")
    if name in SHIPPED_SUBSETS:
        subset, what, count = SHIPPED_SUBSETS[name]
        hint += (f" To try a config offline on {what}: --set dataset.name={subset} ({count} "
                 "shipped with dltrain).")
    return cached_folder(name, hint)


def shipped_path(name: str) -> Path:
    """A file shipped in dltrain/data/shipped/ (see its README for provenance and licences)."""
    return Path(str(resources.files("dltrain.data.shipped") / name))


def _local_folder(cfg: DatasetConfig) -> Path | None:
    if cfg.data_dir is not None:
        if not cfg.data_dir.is_dir():
            raise DataError(f"dataset.data_dir: {cfg.data_dir} is not a folder. It should hold "
                            f"the {cfg.name} files: {_expected_files(cfg.name)}. Without "
                            "data_dir, dltrain uses Keras's cache and downloads what is missing.")
        return cfg.data_dir
    default = os.environ.get(DATA_DIR_ENV)
    for name in folder_names(cfg.name) if default else ():
        if (Path(default) / name).is_dir():  # type: ignore[arg-type]
            return Path(default) / name  # type: ignore[arg-type]
    return None


def folder_names(name: str) -> list[str]:
    """The folders under $DLTRAIN_DATA_DIR that hold `name`: its own name, then the hyphenated
    one Debian's packages use (/usr/share/datasets/fashion-mnist)."""
    return list(dict.fromkeys([name, name.replace("_", "-")]))


def _expected_files(name: str) -> str:
    idx_files = f"the four IDX files ({', '.join(IDX_FILES.values())})"
    if name == "fashion_mnist":  # Keras publishes Fashion-MNIST as IDX files only
        return idx_files
    if name == "mnist":
        return "mnist.npz or " + idx_files
    if name == "cifar10":
        return "cifar-10-batches-py/ or cifar-10-python.tar.gz"
    return "cifar-100-python/ or cifar-100-python.tar.gz"


def read_npz(path: Path, class_names: list[str] | None = None) -> Raw:
    refuse_special(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file; expected an .npz with x_train, y_train, "
                        "x_test, y_test.")
    found = load_arrays(path, SPLITS)
    for key, array in found.items():
        if array.ndim == 0:  # len() of it failed later as an internal error
            raise DataError(f"{path}: {key} is a single value ({_shown(array.item())}), not an "
                            "array with one entry per sample.")
    missing = set(SPLITS) - set(found)
    if missing:
        raise DataError(f"{path}: missing arrays {', '.join(sorted(missing))}; an .npz dataset "
                        "needs x_train, y_train, x_test, y_test.")
    if class_names is None:
        found, class_names = _text_labels_as_classes(found, path)
    return checked(Raw(**found, class_names=class_names, target_names=None,
                       feature_names=None), str(path))


def _text_labels_as_classes(found: dict[str, np.ndarray],
                            path: Path) -> tuple[dict[str, np.ndarray], list[str] | None]:
    """Labels stored as text are class names, sorted, as a CSV's are; the labels become ids."""
    texts = [found[key].dtype.kind in "US" for key in ("y_train", "y_test")]
    if not any(texts):
        return found, None
    if not all(texts):
        raise DataError(f"{path}: y_train and y_test must both hold class names (text) or both "
                        "numbers; one holds each.")
    labels = {key: _decoded(found[key], key, path) for key in ("y_train", "y_test")}
    names = sorted(set().union(*(label.reshape(-1).tolist() for label in labels.values())))
    index = {name: number for number, name in enumerate(names)}
    ids = {key: np.array([index[name] for name in label.reshape(-1).tolist()], dtype=np.int64)
           for key, label in labels.items()}
    return {**found, **ids}, names


def _decoded(labels: np.ndarray, key: str, path: Path) -> np.ndarray:
    """Class names stored as bytes, as text; bytes that are not UTF-8 are named by their row."""
    if labels.dtype.kind != "S":
        return labels
    flat = labels.reshape(-1)
    for row, name in enumerate(flat.tolist()):
        try:
            name.decode("utf-8")
        except UnicodeDecodeError:
            raise DataError(f"{path}: {key} row {row} holds bytes that are not UTF-8 text "
                            f"({_shown(name)}); store class names as UTF-8 text or class ids "
                            "as integers.") from None
    return np.char.decode(labels, "utf-8")


def _shown(value: object) -> str:
    """A value for a message, cut short: a label can be any length."""
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_mnist_folder(folder: Path, class_names: list[str]) -> Raw:
    if (folder / "mnist.npz").is_file():
        return read_npz(folder / "mnist.npz", class_names)
    paths = {key: folder / name for key, name in IDX_FILES.items()}
    missing = [path.name for path in paths.values() if not path.is_file()]
    if missing:
        raise DataError(f"{folder}: missing {', '.join(missing)}. Expected mnist.npz or the four "
                        f"IDX files {', '.join(IDX_FILES.values())}, as published with the "
                        "dataset (Debian: dataset-fashion-mnist has Fashion-MNIST's).")
    arrays = {key: read_idx(path) for key, path in paths.items()}
    return checked(Raw(**arrays, class_names=class_names, target_names=None, feature_names=None),
                   str(folder))


def read_idx(path: Path) -> np.ndarray:
    """Read a gzipped IDX file (the MNIST format): magic 0x0000 08 NDIM, big-endian dims, uint8.

    The header is read first, and no more is unpacked than it claims: a small .gz of zeros
    (a gzip bomb) was unpacked whole, up to the machine's memory, before the length check."""
    head = _unpacked(path, IDX_HEADER_MAX)
    if len(head) < 4 or head[0:3] != b"\x00\x00\x08" or not 1 <= head[3] <= 4:
        raise DataError(f"{path}: wrong IDX magic number {head[:4].hex() or 'none'}; expected "
                        "00000801 (labels) or 00000803 (images) for uint8 data.")
    ndim = head[3]
    dims = tuple(int.from_bytes(head[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    offset = 4 + 4 * ndim
    expected = offset + math.prod(dims)
    if expected > physical_memory():
        raise DataError(f"{path}: its IDX header claims shape {dims}: {expected:,} bytes, more "
                        f"than this machine's memory ({physical_memory():,}). The file is "
                        "damaged or not an MNIST file; download it again.")
    data = _unpacked(path, expected)
    if len(data) != expected:
        found = f"more than {expected}" if len(data) > expected else str(len(data))
        raise DataError(f"{path}: truncated or padded IDX file: {found} bytes for shape "
                        f"{dims}, expected {expected}.")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


IDX_HEADER_MAX = 4 + 4 * 4  # the magic number and at most 4 dimensions


def _unpacked(path: Path, limit: int) -> bytes:
    try:
        return decompressed(path, limit)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{path}: not a valid gzip file ({exc}); download it again.") from None


def decompressed(path: Path, limit: int) -> bytes:
    """A gzip file's content, every member of it, but at most `limit` bytes and one more (which
    tells the caller the file holds more than it may).

    fit reads the data in a thread while the main thread imports the backend. Read as a stream,
    the thread took the GIL back after each of its ~3,800 chunks of Fashion-MNIST's training
    images and waited for it each time: 1.8 s beside the imports, against 0.25 s alone. zlib's
    call per member holds no GIL while it works: 0.33 s beside them (BENCHMARKS.md).
    """
    data, parts, size = path.read_bytes(), [], 0
    if data[:2] not in (b"\x1f\x8b", b""):
        raise OSError(f"Not a gzipped file ({data[:2]!r})")
    while data and size <= limit:
        member = zlib.decompressobj(wbits=31)
        parts.append(member.decompress(data, limit + 1 - size))
        size += len(parts[-1])
        if not member.eof and size <= limit:
            raise EOFError("Compressed file ended before the end-of-stream marker was reached")
        data = member.unused_data.lstrip(b"\x00")  # gzip's trailing zero padding
    return b"".join(parts)


def read_cifar(folder: Path, name: str) -> Raw:
    """Read CIFAR's python-pickle batches from the extracted folder or the .tar.gz archive."""
    stem = "cifar-10" if name == "cifar10" else "cifar-100"
    archive = folder / f"{stem}-python.tar.gz"
    inner = folder / (f"{stem}-batches-py" if name == "cifar10" else f"{stem}-python")
    files = (["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5"],
             ["test_batch"]) if name == "cifar10" else (["train"], ["test"])
    label_key = b"labels" if name == "cifar10" else b"fine_labels"
    if inner.is_dir() or (folder / files[1][0]).is_file():
        origin = inner if inner.is_dir() else folder
        read = lambda member: (origin / member).read_bytes()  # noqa: E731
    elif archive.is_file():
        origin = archive / inner.name
        read = _tar_reader(archive, inner.name)
    else:
        raise DataError(f"{folder}: no CIFAR files found; expected {_expected_files(name)}.")
    x_train, y_train = _cifar_batches({f: read(f) for f in files[0]}, label_key, origin)
    x_test, y_test = _cifar_batches({f: read(f) for f in files[1]}, label_key, origin)
    names = CIFAR10_CLASSES if name == "cifar10" else None
    return checked(Raw(x_train, y_train, x_test, y_test, names), str(folder))


CIFAR_ARCHIVE_BYTES = 2**30  # CIFAR-10's and CIFAR-100's unpack to about 180 MB each


def _tar_reader(archive: Path, inner: str):  # type: ignore[no-untyped-def]
    try:
        tar_bytes = decompressed(archive, CIFAR_ARCHIVE_BYTES)
        if len(tar_bytes) > CIFAR_ARCHIVE_BYTES:
            raise DataError(f"{archive}: unpacks to more than {CIFAR_ARCHIVE_BYTES:,} bytes; "
                            "CIFAR's archives hold about 180 MB. The file is damaged or not "
                            "CIFAR's; download it again.")
        with tarfile.open(fileobj=io.BytesIO(tar_bytes)) as tar:
            members = {m.name.split("/")[-1]: tar.extractfile(m).read()  # type: ignore[union-attr]
                       for m in tar.getmembers() if m.isfile()}
    except (tarfile.TarError, OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{archive}: not a readable .tar.gz archive ({exc}).") from None

    def read(member: str) -> bytes:
        if member not in members:
            raise DataError(f"{archive}: missing {inner}/{member} in the archive.")
        return members[member]

    return read


def _cifar_batches(blobs: dict[str, bytes], label_key: bytes,
                   folder: Path) -> tuple[np.ndarray, ...]:
    images, labels = [], []
    for member, blob in blobs.items():
        where = folder / member
        batch = _unpickle_batch(blob, where)
        if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
            raise DataError(f"{where}: not a CIFAR batch (expected a dict with b'data' and "
                            f"{label_key!r}).")
        data = np.asarray(batch[b"data"], dtype=np.uint8)
        label = np.asarray(batch[label_key], dtype=np.int64).reshape(-1)
        if data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(label):
            raise DataError(f"{where}: not a CIFAR batch: b'data' has shape {data.shape} for "
                            f"{len(label)} labels; expected ({len(label)}, 3072).")
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(label)
    return np.concatenate(images).transpose(0, 2, 3, 1), np.concatenate(labels)


class _ArraysOnly(pickle.Unpickler):
    """CIFAR ships pickles; allow only the NumPy pieces they contain, so no file can run code."""

    ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
               ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}

    def find_class(self, module: str, name: str):  # type: ignore[no-untyped-def]
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _unpickle_batch(blob: bytes, where: Path) -> object:
    try:
        return _ArraysOnly(io.BytesIO(blob), encoding="bytes").load()
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a CIFAR batch"
        raise DataError(f"{where}: not a CIFAR batch ({exc}).") from None
