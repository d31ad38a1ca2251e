"""Many runs at once: the runs table and the comparison of two runs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from dltrain.errors import RunError
from dltrain.runs import layout as runs

SORT_KEYS = {"date": "date", "name": "name", "accuracy": "accuracy", "loss": "loss",
             "time": "seconds", "state": "state"}


def list_runs(folder: Path, sort: str = "date") -> list[dict[str, Any]]:
    """One row per run directory below `folder` (those holding run.json), sorted."""
    if not folder.is_dir():
        raise RunError(f"{folder}: no such folder of runs.")
    rows = [summarise(path) for path in sorted(folder.iterdir())
            if (path / runs.STATE_FILE).is_file()]
    key = SORT_KEYS[sort]
    descending = key in ("accuracy", "date")
    present = [row for row in rows if row.get(key) is not None]
    missing = [row for row in rows if row.get(key) is None]
    return sorted(present, key=lambda row: row[key], reverse=descending) + missing


def summarise(path: Path) -> dict[str, Any]:
    """A run's row: what it trained on, how far it got and how it scored."""
    state = _json(path / runs.STATE_FILE) or {}
    env = _json(path / runs.ENV_FILE) or {}
    metrics = _json(path / runs.METRICS_FILE) or {}
    config = _yaml(path / runs.CONFIG_FILE) or {}
    test = metrics.get("test", {})
    return {
        "name": path.name,
        "path": str(path),
        "date": (env.get("started") or "")[:16].replace("T", " ") or None,
        "dataset": (config.get("dataset") or {}).get("name"),
        "state": state.get("state"),
        "kind": kind(state, metrics, env),
        # Runs from before backends were a choice ran on TensorFlow.
        "backend": env.get("backend") or ("tensorflow" if env.get("tensorflow") else None),
        "epochs": metrics.get("epochs_run", len(runs.read_history(path / runs.HISTORY_FILE))),
        "accuracy": test.get("accuracy", test.get("acc")),
        "loss": test.get("loss"),
        "seconds": metrics.get("train_seconds"),
        "samples_per_second": metrics.get("samples_per_second"),
    }


def kind(state: dict[str, Any], metrics: dict[str, Any], env: dict[str, Any]) -> str:
    """synthetic, smoke or fit, from the markers the run wrote (metrics.json has `smoke` after
    a --smoke fit); a run stopped before its metrics is told by its command line."""
    markers = {**state, **metrics}
    if markers.get("synthetic"):
        return "synthetic"
    if markers.get("smoke") or "--smoke" in (env.get("command") or []):
        return "smoke"
    return "fit"


def compare(run_a: Path, run_b: Path) -> dict[str, Any]:
    """Config keys that differ (old -> new) and the test metrics side by side."""
    from dltrain.config.load import config_diff

    configs = []
    for path in (run_a, run_b):
        config = _yaml(path / runs.CONFIG_FILE)
        if config is None:
            raise RunError(f"{path}: no config.yaml; compare takes two run directories.")
        configs.append(config)
    changes = [{"key": key, "a": a, "b": b} for key, a, b in config_diff(*configs)]
    tests = [((_json(path / runs.METRICS_FILE) or {}).get("test") or {}) for path in (run_a, run_b)]
    metrics = []
    for name in sorted(set(tests[0]) | set(tests[1])):
        a, b = tests[0].get(name), tests[1].get(name)
        metrics.append({"metric": name, "a": a, "b": b,
                        "delta": None if a is None or b is None else b - a})
    return {"a": str(run_a), "b": str(run_b), "config": changes, "metrics": metrics}


def _json(path: Path) -> Any:
    return runs.read_json(path) if path.is_file() else None


def _yaml(path: Path) -> Any:
    if not path.is_file():
        return None
    return yaml.safe_load(path.read_text(encoding="utf-8"))
