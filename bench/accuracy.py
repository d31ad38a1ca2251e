"""Accuracy, wall time and memory of real `dltrain fit` runs on the full Fashion-MNIST.

configs/fashion_mnist_cnn.yaml once and configs/fashion_mnist_best.yaml with three seeds, on
Debian's dataset-fashion-mnist files (60,000 train / 10,000 test), one process at a time. While
each run trains, its resident memory is read from /proc every 0.2 s: the value when each epoch's
row reaches history.csv, and the peak (VmHWM). Wall time is the whole command, start to exit.

Before and after each run, `machine_speed` counts single-threaded 256x256 float32 matrix
products per second on each core: the host's speed drifts (the same probe measured 2,700/s and
2,200/s an hour apart on the 2-core EPYC), and the wall times only compare at the same speed.
"""

from __future__ import annotations

import csv
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEBIAN = Path("/usr/share/datasets/fashion-mnist")
SPEED_PROBE = """
import sys, time
import numpy as np
a = np.ones((256, 256), np.float32)
count, end = 0, time.perf_counter() + float(sys.argv[1])
while time.perf_counter() < end:
    a @ a
    count += 1
print(count / float(sys.argv[1]))
"""
RUNS = [("fashion_mnist_cnn", 42), ("fashion_mnist_best", 42), ("fashion_mnist_best", 43),
        ("fashion_mnist_best", 44)]


def _status_mb(pid: int, field: str) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return None


def machine_speed(seconds: float = 3.0) -> float:
    """Matrix products per second per core, one single-threaded probe on each core at once."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    probes = [subprocess.Popen([sys.executable, "-c", SPEED_PROBE, str(seconds)], env=env,
                               stdout=subprocess.PIPE, text=True)
              for _ in range(os.cpu_count() or 1)]
    return statistics.mean(float(probe.communicate()[0]) for probe in probes)


def watched_fit(config: str, seed: int, run_dir: Path) -> dict:
    """Run one fit; its test accuracy, wall time, epoch times, peak memory, memory after each
    epoch, and the machine's speed before and after."""
    command = [str(Path(sys.executable).parent / "dltrain"), "fit",
               str(ROOT / "configs" / f"{config}.yaml"), "--set", f"dataset.data_dir={DEBIAN}",
               "--seed", str(seed), "--run-dir", str(run_dir)]
    speed_before = machine_speed()
    started = time.perf_counter()
    log = (run_dir.parent / f"{run_dir.name}.log").open("w+", encoding="utf-8")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "CI": "1"})
    per_epoch: list[float] = []
    peak = 0.0
    history = run_dir / "history.csv"
    while process.poll() is None:
        peak = max(peak, _status_mb(process.pid, "VmHWM") or 0.0)
        rows = len(history.read_text().splitlines()) - 1 if history.is_file() else 0
        if rows > len(per_epoch):
            per_epoch.append(_status_mb(process.pid, "VmRSS") or 0.0)
        time.sleep(0.2)
    wall = time.perf_counter() - started
    log.seek(0)
    if process.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{log.read()[-2000:]}")
    log.close()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    with history.open(encoding="utf-8") as file:
        epoch_seconds = [float(row["seconds"]) for row in csv.DictReader(file)]
    return {"config": config, "seed": seed, "accuracy": metrics["test"]["accuracy"],
            "epochs": metrics["epochs_run"], "wall": wall, "peak_mb": peak, "rss": per_epoch,
            "epoch_seconds": epoch_seconds, "speed": (speed_before, machine_speed())}


def run() -> list[dict]:
    if not DEBIAN.is_dir():
        raise SystemExit(f"needs {DEBIAN}: apt-get install dataset-fashion-mnist")
    with tempfile.TemporaryDirectory() as tmp:
        return [watched_fit(config, seed, Path(tmp) / f"{config}-{seed}") for config, seed in RUNS]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.1f} ({min(values):.1f}–{max(values):.1f})"


def table(results: list[dict], heading: str) -> str:
    lines = [heading, "", "| config | seed | epochs | test accuracy | wall time | "
             "s/epoch, median (min–max) | peak RSS | RSS after epoch 2 → last | "
             "machine speed before → after |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in results:
        rss = f"{r['rss'][1]:.0f} → {r['rss'][-1]:.0f} MB" if len(r["rss"]) > 1 else "-"
        lines.append(f"| {r['config']} | {r['seed']} | {r['epochs']} | {r['accuracy']:.4f} | "
                     f"{r['wall'] / 60:.1f} min | {_spread(r['epoch_seconds'])} | "
                     f"{r['peak_mb']:.0f} MB | {rss} | "
                     f"{r['speed'][0]:.0f} → {r['speed'][1]:.0f}/s |")
    best = [r["accuracy"] for r in results if r["config"] == "fashion_mnist_best"]
    if len(best) > 1:
        lines += ["", f"fashion_mnist_best over {len(best)} seeds: mean {statistics.mean(best):.4f}, "
                  f"std {statistics.stdev(best):.4f}, min {min(best):.4f}, max {max(best):.4f}; "
                  f"slowest run {max(r['wall'] for r in results) / 60:.1f} min."]
    return "\n".join(lines) + "\n"
