"""Benchmarks (never run in CI): both sides measured alternately in one run, medians and ratios.

Appends a dated table to BENCHMARKS.md. Usage: python bench/run.py [--repeats N] [--only NAME]
The performance issue's five, the backend comparison, the checkpoint writer's wait and the data
read beside the imports run by default; `--only autotune`
runs the tf.data autotuning comparison (bench/autotune.py) that explains the input
pipeline's fixed parallelism.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - started


def alternate(sides: dict[str, list[str]], repeats: int) -> dict[str, float]:
    """Run each side in turn, `repeats` rounds, so drift in the machine hits both alike."""
    samples: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(repeats):
        for name, command in sides.items():
            samples[name].append(timed(command))
    return {name: statistics.median(values) for name, values in samples.items()}


def startup(repeats: int) -> list[tuple[str, float, float]]:
    medians = alternate({
        "dltrain --help": [str(BIN / "dltrain"), "--help"],
        "dltrain show --no-summary": [str(BIN / "dltrain"), "show", "configs/cifar_cnn.yaml",
                                      "--no-summary"],
        "python -c 'import tensorflow'": [sys.executable, "-c", "import tensorflow"],
        # What a command that trains, scores or predicts loads first: Keras on TensorFlow,
        # without the optional packages they would import (backend/lean_import.py).
        "dltrain's Keras import (keras_module)": [
            sys.executable, "-c", "from dltrain.backend import keras_module; keras_module()"],
    }, repeats)
    baseline = medians["python -c 'import tensorflow'"]
    return [(name, seconds, baseline / seconds) for name, seconds in medians.items()]


def heading(title: str) -> str:
    return (f"## {title} — {time.strftime('%Y-%m-%d %H:%M')}, {_cpu()}, "
            f"{os.cpu_count()} cores, Python {platform.python_version()}, {_versions()}")


def _cpu() -> str:
    """The CPU's model name where Linux says it, else the architecture."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()} ({platform.machine()})"
    except OSError:
        pass
    return platform.machine()


def table(title: str, unit: str, versus: str, rows: list[tuple[str, float, float]]) -> str:
    lines = [heading(title), "", f"| side | median {unit} | speed vs {versus} |",
             "| --- | --- | --- |"]
    lines += [f"| {name} | {seconds:.3f} | {ratio:.2f}x |" for name, seconds, ratio in rows]
    return "\n".join(lines) + "\n"


def _versions() -> str:
    from importlib.metadata import version

    found = f"TensorFlow {version('tensorflow')}, Keras {version('keras')}"
    try:
        return f"{found}, JAX {version('jax')}"
    except Exception:  # noqa: BLE001 - JAX is optional
        return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--only", choices=["startup", "overhead", "backends", "augment", "accuracy",
                                           "autotune", "checkpoints", "data_read", "precision"])
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    started = time.perf_counter()
    tables = []
    if args.only in (None, "startup"):
        tables.append(table("Startup", "s", "importing TensorFlow", startup(args.repeats)))
    if args.only in (None, "overhead"):
        import overhead

        tables.append(table("Overhead: configs/mnist_cnn.yaml, full Fashion-MNIST, batch 128, "
                            "3 rounds of 3 epochs", "s/epoch",
                            "the hand-written script", overhead.run(repeats=3, epochs=3)))
        tables.append(table("Overhead: configs/mnist_cnn.yaml, full Fashion-MNIST, batch 32, "
                            "3 rounds of 3 epochs", "s/epoch", "the hand-written script",
                            overhead.run(repeats=3, epochs=3, batch=32)))
    if args.only in (None, "backends"):
        import backends

        tables.append(table("Backends: mnist_cnn and fashion_mnist_best, full Fashion-MNIST, 2 "
                            "rounds of 3 epochs, JAX's compilation cache off", "s/epoch",
                            "TensorFlow", backends.run(repeats=2, epochs=3)))
    if args.only in (None, "augment"):
        import augment

        tables.append(table("Augmentation: cifar_cnn, 10,000 CIFAR-shaped images, batch 32",
                            "s/epoch", "ImageDataGenerator.flow", augment.run(repeats=4)))
    if args.only == "autotune":
        import autotune

        tables.append(table("tf.data autotuning: fashion_mnist_best's net, 8 rounds of 30-step "
                            "fits, batch 128", "ms/step", "autotuning on", autotune.run()))
    if args.only in (None, "checkpoints"):
        import checkpoints

        tables.append(table("Checkpoints: the loop's wait at each epoch's end for last.keras, "
                            "fashion_mnist_gpu's model (20 MB file), JAX, 2 rounds of 11 epochs",
                            "ms", "saving in place", checkpoints.run()))
    if args.only in (None, "data_read"):
        import data_read

        tables.append(table(f"Fashion-MNIST read in a thread beside the import of Keras "
                            f"({os.environ.get('KERAS_BACKEND', 'tensorflow')}), fresh "
                            f"processes, {args.repeats} alternating rounds", "s",
                            "the stream read", data_read.run(args.repeats)))
    if args.only in (None, "precision"):
        import precision

        tables.append(table("Mixed precision: fashion_mnist_best, full Fashion-MNIST, TensorFlow, "
                            "2 rounds of 3 epochs", "s/epoch", "float32", precision.run())
                      + "\n" + precision.auto_here() + "\n")
    if args.only in (None, "accuracy"):
        import accuracy

        tables.append(accuracy.table(accuracy.run(), heading(
            "Accuracy and memory: full Fashion-MNIST (Debian dataset-fashion-mnist)")))
    minutes = (time.perf_counter() - started) / 60
    for text in tables:
        print(text)
        with open(ROOT / "BENCHMARKS.md", "a", encoding="utf-8") as out:
            out.write("\n" + text)
    print(f"benchmarks took {minutes:.1f} min")


if __name__ == "__main__":
    main()
