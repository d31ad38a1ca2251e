"""Benchmarks (never run in CI): both sides measured alternately in one run, medians and ratios.

Appends a dated table to BENCHMARKS.md. Usage: python bench/run.py [--repeats N]
"""

from __future__ import annotations

import argparse
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
    }, repeats)
    baseline = medians["python -c 'import tensorflow'"]
    return [(name, seconds, baseline / seconds) for name, seconds in medians.items()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rows = startup(args.repeats)
    lines = [f"## Startup — {time.strftime('%Y-%m-%d %H:%M')}, {platform.machine()}, "
             f"{platform.python_version()}, {args.repeats} alternating repeats", "",
             "| command | median s | speed-up vs importing TensorFlow |", "| --- | --- | --- |"]
    lines += [f"| {name} | {seconds:.3f} | {ratio:.1f}x |" for name, seconds, ratio in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    with open(ROOT / "BENCHMARKS.md", "a", encoding="utf-8") as out:
        out.write("\n" + table)


if __name__ == "__main__":
    main()
