"""Tiny synthetic datasets in the real on-disk formats, and a helper to drive the real CLI."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
import subprocess
import tarfile
import time
from pathlib import Path
from typing import Any

# Set before NumPy loads, here and in every process a test starts (they inherit them). The suite
# checks what dltrain does, not how fast the machine code runs: XLA compiles JAX's programs
# without LLVM's optimisation passes, as bench/gpu's dry run does (a cold JAX fit: 17.1 -> 14.7
# CPU-s); `make field` runs the optimised code. NumPy's BLAS threads only spin beside two test
# processes on two cores (0.15 CPU-s a process at start). test_backends_e2e.py took 176 -> 143
# CPU-s with both.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
# TensorFlow's allocator for large CPU tensors (oneDNN's) waits 10 s for memory to be freed
# before it raises ResourceExhausted, and holds its lock meanwhile (test_backend.py's 4 TiB
# tf.zeros idled a test process 10 s); the system allocator raises at once, in the same words
# ("... by allocator mklcpu"). A quickstart fit took as long with either (3 runs each).
os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")

import numpy as np
import pytest

from dltrain.cli import main
from dltrain.data.keras_files import IDX_FILES
from dltrain.runs.layout import read_history

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
MODULE_COSTS = Path(__file__).with_name("module_costs.json")  # tools/module_costs.py writes it


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The costliest test modules first: `make test` gives each of its processes a module at a
    time in this order (--no-loadscope-reorder), so the run ends on short modules rather than
    with one process idle beside a long one."""
    costs = json.loads(MODULE_COSTS.read_text()) if MODULE_COSTS.is_file() else {}
    items[:] = costliest_first(items, costs)


def costliest_first(items: list[Any], costs: dict[str, float]) -> list[Any]:
    """`items` by their module's seconds in `costs`, most first (a module not in it counts 5 s
    a slow test); within a module, as written."""
    by_module: dict[str, float] = {}
    for item in items:
        module = item.nodeid.split("::")[0]
        if module in costs:
            by_module[module] = float(costs[module])
        else:
            by_module[module] = by_module.get(module, 0.0) + 5.0 * bool(
                item.get_closest_marker("slow"))
    return sorted(items, key=lambda item: -by_module[item.nodeid.split("::")[0]])


def to_numpy(tensor: object) -> np.ndarray:
    """A backend tensor as NumPy on any backend (a torch output that needs a gradient cannot be
    read with np.asarray)."""
    from dltrain.backend import keras_module

    return np.asarray(keras_module().ops.convert_to_numpy(tensor))


def write_idx(path: Path, array: np.ndarray) -> None:
    """MNIST's IDX format: magic 00 00 08 NDIM, big-endian uint32 dims, then uint8 data."""
    header = bytes([0, 0, 8, array.ndim]) + b"".join(d.to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as handle:
        handle.write(header + array.astype(np.uint8).tobytes())


def images(rng: np.random.Generator, count: int, shape: tuple[int, ...]) -> tuple:
    """Sparse random images with a bright patch whose place encodes the label (like a digit's
    strokes, mostly background), so any of the shipped models can learn from a few batches."""
    labels = np.arange(count) % 10
    x = rng.integers(0, 60, size=(count, *shape)) * (rng.random((count, *shape)) < 0.05)
    height = shape[-2]
    size = height // 5
    for label in range(10):
        row, column = (label // 5) * (height // 2), (label % 5) * size
        x[labels == label, ..., row:row + size, column:column + size] = 220
    return x.astype(np.uint8), labels.astype(np.uint8)


def write_mnist(folder: Path, seed: int = 0, train: int = 30, test: int = 20) -> dict:
    """The four IDX files in `folder`; returns the arrays written, keyed like Raw's fields."""
    rng = np.random.default_rng(seed)
    x_train, y_train = images(rng, train, (28, 28))
    x_test, y_test = images(rng, test, (28, 28))
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    folder.mkdir(parents=True, exist_ok=True)
    for key, name in IDX_FILES.items():
        write_idx(folder / name, arrays[key])
    return arrays


@pytest.fixture
def mnist_dir(tmp_path: Path) -> Path:
    """A folder with the four MNIST IDX files: 300 train and 100 test 28x28 images."""
    write_mnist(tmp_path / "mnist", train=300, test=100)
    return tmp_path / "mnist"


def cifar_batch(rng: np.random.Generator, count: int) -> dict:
    x, y = images(rng, count, (3, 32, 32))
    return {b"batch_label": b"synthetic", b"labels": y.tolist(),
            b"data": x.reshape(count, -1), b"filenames": [b"x.png"] * count}


@pytest.fixture
def cifar_dir(tmp_path: Path) -> Path:
    """cifar-10-batches-py/ with five 40-image training batches and a 60-image test batch."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "cifar" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for name in names:
        count = 60 if name == "test_batch" else 40
        (folder / name).write_bytes(pickle.dumps(cifar_batch(rng, count), protocol=2))
    return folder.parent


@pytest.fixture
def cifar_archive(cifar_dir: Path, tmp_path: Path) -> Path:
    """The same batches as cifar-10-python.tar.gz, alone in a folder."""
    folder = tmp_path / "archive"
    folder.mkdir()
    with tarfile.open(folder / "cifar-10-python.tar.gz", "w:gz") as tar:
        tar.add(cifar_dir / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return folder


def write_yaml(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


# --- runs trained once per session --------------------------------------------------------------
# Each fit costs seconds (most of it tracing the train step), so the tests that read a finished run
# share one; a test or module that changes a run works on its own copy (copy_run).

SMALL = ["--set", "dataset.train_limit=600", "--set", "dataset.test_limit=100"]


def copy_run(trained: Path, folder: Path) -> Path:
    """A copy of a shared run at `folder` (its parent made), to change or to name as it likes."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(trained, folder)
    return folder


@pytest.fixture(scope="session")
def shared_smoke_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One `dltrain fit quickstart.yaml --smoke` run for the session: read it, never change it
    (copy_run)."""
    run = tmp_path_factory.mktemp("shared") / "smoke"
    assert main(["fit", str(CONFIGS / "quickstart.yaml"), "--smoke", "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="session")
def shared_small_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One quickstart run of one epoch on SMALL (600 training images) for the session: read it,
    never change it (copy_run)."""
    run = tmp_path_factory.mktemp("shared") / "small"
    assert main(["fit", str(CONFIGS / "quickstart.yaml"), "--run-dir", str(run), *SMALL,
                 "--epochs", "1"]) == 0
    return run


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `dltrain ARGS` in-process; returns (exit code, stdout, stderr)."""
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def wait_for_history(process: subprocess.Popen[str], history: Path, rows: int,
                     timeout: float) -> None:
    """Until a fit's history.csv has `rows` rows (each epoch's row comes before its checkpoint);
    fails with the process's output if it ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while len(read_history(history)) < rows:
        assert process.poll() is None and time.monotonic() < deadline, process.communicate()
        time.sleep(0.05)
