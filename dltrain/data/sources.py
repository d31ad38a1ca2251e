"""The dataset registry: one reader per `dataset.name`, each returning raw arrays (`Raw`).

Adding a dataset is one reader function in a module of this package and one line here.
"""

from __future__ import annotations

from collections.abc import Callable

from dltrain.config.dataset_section import DatasetConfig
from dltrain.data.images import read_image_folder
from dltrain.data.keras_files import (
    read_cifar_source,
    read_mnist,
    read_npz_source,
    read_shipped_fashion_mnist,
    read_shipped_mnist,
)
from dltrain.data.raw import Raw
from dltrain.data.tabular import read_csv

Reader = Callable[[DatasetConfig], Raw]

SOURCES: dict[str, Reader] = {
    "fashion_mnist_mini": read_shipped_fashion_mnist,
    "mnist_mini": read_shipped_mnist,
    "mnist": read_mnist,
    "fashion_mnist": read_mnist,
    "cifar10": read_cifar_source,
    "cifar100": read_cifar_source,
    "npz": read_npz_source,
    "csv": read_csv,
    "image_folder": read_image_folder,
}


def read_source(cfg: DatasetConfig) -> Raw:
    """The raw arrays of the configured dataset; every reader raises DataError with the path."""
    return SOURCES[cfg.name](cfg)
