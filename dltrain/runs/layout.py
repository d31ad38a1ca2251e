"""The run directory: where it goes, and writing its files so a crash never leaves half a file."""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from dltrain import __version__
from dltrain.errors import RunError
from dltrain.schema import Config

CONFIG_FILE = "config.yaml"
MODEL_FILE = "model.keras"
BEST_FILE = "best.keras"
LAST_FILE = "last.keras"
LAST_META = "last.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
EVAL_FILE = "eval.json"
ENV_FILE = "environment.json"
STATE_FILE = "run.json"
CURVES_FILE = "curves.png"
CONFUSION_FILE = "confusion_matrix.png"
TENSORBOARD_DIR = "tensorboard"
MANIFEST_FILE = "manifest.json"
PREPARATION_FILE = "preprocessing.json"


def new_run_dir(config: Config, chosen: Path | None) -> Path:
    """`chosen` exactly (it must be empty or absent), else a fresh runs/<name>-<timestamp>/."""
    if chosen is not None:
        if chosen.exists() and (not chosen.is_dir() or any(chosen.iterdir())):
            raise RunError(f"--run-dir {chosen} already exists and is not empty; choose a new "
                           "folder so no earlier run is overwritten.")
        chosen.mkdir(parents=True, exist_ok=True)
        return chosen
    stamp = time.strftime("%Y%m%d-%H%M%S")
    base = config.output.runs_dir / f"{config.name}-{stamp}"
    path, suffix = base, 1
    while True:
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            suffix += 1
            path = base.with_name(f"{base.name}-{suffix}")


def write_atomic(path: Path, text: str) -> None:
    """Write to a temporary file in the same folder, flush to disk, then rename over `path`."""
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; artifacts are for sharing
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_json(path: Path, data: Any) -> None:
    write_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RunError(f"{path}: missing; is {path.parent} a dltrain run directory?") from None
    except json.JSONDecodeError as exc:
        raise RunError(f"{path}: not valid JSON ({exc}).") from None


def save_model(model: Any, path: Path) -> None:
    """Keras saves in place; save beside the target and rename, so the target is always whole."""
    tmp = path.with_name(f".{path.stem}.tmp{os.getpid()}.keras")
    try:
        model.save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_history(path: Path, rows: list[dict[str, float]]) -> None:
    if not rows:
        return
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    write_atomic(path, out.getvalue())


def read_history(path: Path) -> list[dict[str, float]]:
    """history.csv as rows of floats (epoch as int); [] when there is none yet."""
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    try:
        return [{key: (int(value) if key == "epoch" else float(value)) for key, value in row.items()}
                for row in rows]
    except (TypeError, ValueError):
        raise RunError(f"{path}: not a history written by dltrain.") from None


def completed_epochs(run_dir: Path) -> int:
    """Epochs whose full training state is in last.keras (0 when there is none)."""
    if not (run_dir / LAST_FILE).is_file() or not (run_dir / LAST_META).is_file():
        return 0
    return int(read_json(run_dir / LAST_META).get("epoch", 0))


def set_state(run_dir: Path, state: str, **details: Any) -> None:
    """running, completed, interrupted or failed: `eval` trusts only completed runs."""
    write_json(run_dir / STATE_FILE, {"state": state, "updated": _now(), **details})


def environment(device: str) -> dict[str, Any]:
    import keras
    import numpy
    import tensorflow as tf

    return {
        "dltrain": __version__,
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": numpy.__version__,
        "platform": platform.platform(),
        "device": device,
        "cpu_count": os.cpu_count(),
        # Kernels differ in round-off, so a rerun that should match needs the same setting.
        "tf_enable_onednn_opts": os.environ.get("TF_ENABLE_ONEDNN_OPTS"),
        "command": sys.argv,
        "started": _now(),
    }


def manifest(config_text: str, seed: int, arrays: dict[str, Any]) -> dict[str, Any]:
    """What a run needs to be trusted later: config hash, code version, data fingerprint."""
    import hashlib

    return {
        "config_sha256": hashlib.sha256(config_text.encode()).hexdigest(),
        "git": git_state(Path.cwd()),
        "seed": seed,
        "data": {name: fingerprint(array) for name, array in arrays.items() if array is not None},
    }


def fingerprint(array: Any) -> dict[str, Any]:
    """Shape, dtype and a hash of a fixed sample: enough to notice the data changed."""
    import hashlib

    import numpy as np

    step = max(1, len(array) // 1000)
    sample = np.ascontiguousarray(array[::step][:1000])
    return {"shape": list(array.shape), "dtype": str(array.dtype),
            "sample_sha256": hashlib.sha256(sample.tobytes()).hexdigest()}


def git_state(folder: Path) -> dict[str, Any] | None:
    """The commit of the working directory's repository and whether it had changes."""
    import subprocess

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                                  timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            return None
        return done.stdout.strip() if done.returncode == 0 else None

    commit = git("rev-parse", "HEAD")
    if commit is None:
        return None
    return {"commit": commit, "dirty": bool(git("status", "--porcelain", "--untracked-files=no"))}


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")
