"""Reading Fashion-MNIST's IDX files in a thread beside the backend's import, as `dltrain fit`
does: gzip read as a stream against dltrain's one-shot `decompressed`.

Each side runs in a fresh process (imports are only cold once), alternating, `repeats` rounds:
the reader thread starts, the main thread imports Keras and the backend, and the process
reports how long the read took and how long the imports took beside it. Needs the Debian
dataset-fashion-mnist files (or FASHION_MNIST_DIR).

Usage: KERAS_BACKEND=jax python bench/data_read.py [--repeats 5]; `python bench/run.py --only
data_read` adds its table to BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FOLDER = Path(os.environ.get("FASHION_MNIST_DIR", "/usr/share/datasets/fashion-mnist"))
FILES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
         "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")

CHILD = """
import gzip, json, sys, threading, time
from pathlib import Path
sys.path.insert(0, {root!r})
from dltrain.data.keras_files import decompressed

def stream(path):
    with gzip.open(path, "rb") as handle:
        return handle.read()

read = {{"stream": stream, "one-shot": decompressed}}[{side!r}]
seconds = {{}}

def reader():
    started = time.perf_counter()
    for name in {files!r}:
        read(Path({folder!r}) / name)
    seconds["read"] = time.perf_counter() - started

thread = threading.Thread(target=reader)
started = time.perf_counter()
thread.start()
import keras  # the backend's import, on the main thread, as fit's start does
seconds["imports"] = time.perf_counter() - started
thread.join()
seconds["both"] = time.perf_counter() - started
print(json.dumps(seconds))
"""


def once(side: str) -> dict[str, float]:
    code = CHILD.format(root=str(ROOT), side=side, files=FILES, folder=str(FOLDER))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, timeout=300)
    return json.loads(done.stdout.strip().splitlines()[-1])


def run(repeats: int = 5) -> list[tuple[str, float, float]]:
    """Rows for bench/run.py's table: each side's median seconds until both the read and the
    imports are done, and its speed against the stream read."""
    samples: dict[str, list[dict[str, float]]] = {"stream": [], "one-shot": []}
    for _ in range(repeats):
        for side in samples:
            samples[side].append(once(side))
    rows = []
    for side, runs in samples.items():
        read = statistics.median(run["read"] for run in runs)
        imports = statistics.median(run["imports"] for run in runs)
        both = statistics.median(run["both"] for run in runs)
        rows.append((f"{side}: read {read:.2f} s, imports {imports:.2f} s; both done", both))
    baseline = rows[0][1]
    return [(name, seconds, baseline / seconds) for name, seconds in rows]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name, seconds, ratio in run(args.repeats):
        print(f"{name} {seconds:.2f} s ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
