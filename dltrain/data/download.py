"""The canonical dataset files in Keras's cache ($KERAS_HOME/datasets), downloaded when missing.

Downloads go through keras.utils.get_file with Keras's published sha256 checksums, into a
temporary folder beside the cache; a file is moved into place only after its checksum matched,
so an interrupted or corrupted download never leaves a file that looks complete.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dltrain.errors import DataError

MIRROR_ENV = "DLTRAIN_DOWNLOAD_URL"
KERAS_ORIGIN = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CIFAR_ORIGIN = "https://www.cs.toronto.edu/~kriz/"


@dataclass(frozen=True)
class Remote:
    """Where a dataset's files live online and under $KERAS_HOME/datasets/."""

    origin: str
    folder: str
    files: dict[str, str | None]  # file name -> sha256 (Keras publishes none for Fashion-MNIST)


REMOTES = {
    "mnist": Remote(KERAS_ORIGIN, "", {
        "mnist.npz": "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"}),
    "fashion_mnist": Remote(KERAS_ORIGIN, "fashion-mnist", {
        "train-labels-idx1-ubyte.gz": None, "train-images-idx3-ubyte.gz": None,
        "t10k-labels-idx1-ubyte.gz": None, "t10k-images-idx3-ubyte.gz": None}),
    "cifar10": Remote(CIFAR_ORIGIN, "", {
        "cifar-10-python.tar.gz":
            "6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"}),
    "cifar100": Remote(CIFAR_ORIGIN, "", {
        "cifar-100-python.tar.gz":
            "85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"}),
}


def keras_datasets_dir() -> Path:
    return keras_cache_dir("datasets")


def keras_cache_dir(subdir: str) -> Path:
    """A folder of Keras's cache ($KERAS_HOME, else ~/.keras), read now: Keras reads it once."""
    return Path(os.environ.get("KERAS_HOME") or Path.home() / ".keras").expanduser() / subdir


def cached_folder(name: str, offline_hint: str) -> Path:
    """The cache folder holding every file of `name`, verified; downloads the missing ones."""
    remote = REMOTES[name]
    folder = keras_datasets_dir() / remote.folder
    for file_name, sha256 in remote.files.items():
        target = folder / file_name
        if target.is_file() and (sha256 is None or file_sha256(target) == sha256):
            continue
        fetch(_origin(remote, file_name), target, sha256, offline_hint)
    return folder


def _origin(remote: Remote, file_name: str) -> str:
    return mirrored(remote.origin + file_name, file_name)


def mirrored(url: str, file_name: str) -> str:
    """The file's URL on the mirror that DLTRAIN_DOWNLOAD_URL names, else `url` itself."""
    mirror = os.environ.get(MIRROR_ENV)
    return mirror.rstrip("/") + "/" + file_name if mirror else url


def fetch(url: str, target: Path, sha256: str | None, offline_hint: str) -> None:
    """Download `url` to `target` via Keras, atomically: temporary folder, checksum, rename."""
    from dltrain.backend import keras_module

    get_file = keras_module().utils.get_file
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=target.parent))
    except OSError as exc:
        raise DataError(f"cannot write to the Keras cache {target.parent} ({exc}); set "
                        "KERAS_HOME to a writable folder.") from None
    try:
        # "auto": sha256 for a 64-digit hash, md5 for the 32-digit ones of older weight files.
        # Keras prints "Downloading data from ..." and its progress bar to stdout, which holds
        # only the results (--json's document): they go to stderr, as dltrain's notes do, and
        # a log (no terminal) gets one plain line instead of the bar's redrawn frames.
        with contextlib.redirect_stdout(sys.stderr), plain_log(url):
            get_file(fname=target.name, origin=url, file_hash=sha256, hash_algorithm="auto",
                     cache_dir=str(staging), cache_subdir="")
        os.replace(staging / target.name, target)
    except ValueError as exc:  # get_file's checksum mismatch
        raise DataError(f"{url}: the download does not match Keras's published checksum "
                        f"({str(exc).splitlines()[0]}). Nothing was cached. {offline_hint}") from None
    except Exception as exc:  # noqa: BLE001 - get_file raises bare Exception for network errors
        raise DataError(f"{target.name} is not in the Keras cache ({target.parent}) and could not "
                        f"be downloaded from {url} ({_reason(exc, url)}). {offline_hint}") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextlib.contextmanager
def plain_log(url: str) -> Iterator[None]:
    """Keras's interactive output off while stderr is no terminal, with one line said instead."""
    keras = _keras()
    if sys.stderr.isatty() or not keras.config.is_interactive_logging_enabled():
        yield
        return
    print(f"downloading {url}", file=sys.stderr, flush=True)
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        keras.config.enable_interactive_logging()


def _keras() -> Any:
    from dltrain.backend import keras_module

    return keras_module()


def _reason(exc: BaseException, url: str) -> str:
    text = str(exc).strip().splitlines()
    # Keras's "URL fetch failure on <url>: None -- [Errno -2] ...": the URL is said already.
    return text[0].removeprefix(f"URL fetch failure on {url}: ") if text else type(exc).__name__


def file_hash_matches(path: Path, expected: str | None) -> bool:
    """Whether the file has the published hash (md5 or sha256, by its length); True for none."""
    if expected is None:
        return True
    digest = hashlib.md5(usedforsecurity=False) if len(expected) == 32 else hashlib.sha256()
    return _hexdigest(path, digest) == expected


def file_sha256(path: Path) -> str:
    return _hexdigest(path, hashlib.sha256())


def _hexdigest(path: Path, digest: Any) -> str:
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
