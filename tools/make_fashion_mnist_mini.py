"""Rebuild dltrain/data/shipped/fashion_mnist_mini.npz from the original Fashion-MNIST IDX files.

Usage: python tools/make_fashion_mnist_mini.py /usr/share/datasets/fashion-mnist
(the folder of Debian's dataset-fashion-mnist package). The subset is stratified and seeded,
so the same input gives the same file.
"""

import sys
from pathlib import Path

import numpy as np

from dltrain.data.keras_files import read_mnist_folder
from dltrain.data.prepare import subset

TRAIN, TEST, SEED = 5000, 1000, 20171201  # the seed is Fashion-MNIST's arXiv date


def main(folder: str) -> None:
    raw = read_mnist_folder(Path(folder), [])
    rng = np.random.default_rng(SEED)
    x_train, y_train = subset(raw.x_train, raw.y_train, TRAIN, rng)
    x_test, y_test = subset(raw.x_test, raw.y_test, TEST, rng)
    out = Path(__file__).resolve().parents[1] / "dltrain" / "data" / "shipped" / "fashion_mnist_mini.npz"
    np.savez_compressed(out, x_train=x_train, y_train=y_train.astype(np.uint8),
                        x_test=x_test, y_test=y_test.astype(np.uint8))
    print(out, x_train.shape, x_test.shape, np.bincount(y_train), np.bincount(y_test))


if __name__ == "__main__":
    main(sys.argv[1])
