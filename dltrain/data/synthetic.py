"""Stand-in data for `dltrain smoke --synthetic`: the downloaded datasets' shapes, dtypes and
classes, with patterns a model learns in a few batches, so CI checks configs with no network."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.keras_files import CIFAR10_CLASSES, DIGITS, FASHION_CLASSES
from dltrain.data.raw import Raw, checked
from dltrain.errors import DataError


@dataclass(frozen=True)
class Spec:
    """What a dataset's samples look like as its reader returns them."""

    shape: tuple[int, ...]
    classes: int
    names: list[str] | None

    def describe(self) -> str:
        return f"uint8 {'x'.join(map(str, self.shape))} images, {self.classes} classes"


# The datasets that come from a download; the others are shipped or read from the user's files.
STAND_INS = {
    "mnist": Spec((28, 28), 10, DIGITS),
    "fashion_mnist": Spec((28, 28), 10, FASHION_CLASSES),
    "cifar10": Spec((32, 32, 3), 10, CIFAR10_CLASSES),
    "cifar100": Spec((32, 32, 3), 100, None),
}
SEED = 0


def stand_in_source(cfg: DatasetConfig) -> bool:
    """Whether --synthetic replaces this dataset; False where its real data is local.

    Raises:
        DataError: a file-based dataset whose file is missing: its shapes and classes are in
            the file, so there is nothing to imitate.
    """
    if cfg.name in STAND_INS:
        return True
    for path in (cfg.path, cfg.test_path):
        if path is not None and not path.exists():
            raise DataError(f"dataset.path {path} does not exist, and --synthetic cannot stand in "
                            f"for a {cfg.name} dataset: its shapes and classes come from the "
                            "file. Put the file there, or leave this config out of the smoke run.")
    return False


def synthetic_raw(cfg: DatasetConfig) -> Raw:
    """Seeded stand-in arrays: sparse noise plus a bright patch whose place is the label."""
    spec = STAND_INS[cfg.name]
    rng = np.random.default_rng(SEED)
    train, test = max(1000, 20 * spec.classes), max(200, 5 * spec.classes)
    x_train, y_train = patterns(rng, train, spec)
    x_test, y_test = patterns(rng, test, spec)
    return checked(Raw(x_train, y_train, x_test, y_test, spec.names), f"synthetic {cfg.name}")


def stand_in_note(cfg: DatasetConfig) -> str:
    return (f"synthetic stand-in data for {cfg.name} ({STAND_INS[cfg.name].describe()}): checks "
            "the config runs, not how well it learns.")


def patterns(rng: np.random.Generator, count: int, spec: Spec) -> tuple[np.ndarray, np.ndarray]:
    """Images mostly background, like digits' strokes, with the label's cell of a grid lit."""
    labels = rng.permutation(np.arange(count) % spec.classes)
    x = rng.integers(0, 60, size=(count, *spec.shape)) * (rng.random((count, *spec.shape)) < 0.05)
    side = math.ceil(math.sqrt(spec.classes))
    cell_h, cell_w = spec.shape[0] // side, spec.shape[1] // side
    for label in range(spec.classes):
        row, column = divmod(label, side)
        x[labels == label, row * cell_h:(row + 1) * cell_h, column * cell_w:(column + 1) * cell_w] = 220
    return x.astype(np.uint8), labels.astype(np.uint8)
