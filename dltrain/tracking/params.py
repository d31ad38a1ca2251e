"""What a tracked run says about itself: every config value as a param under the key path
`--set` takes, and tags from the run folder's own records (versions, device, git commit, the
data's fingerprint)."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from dltrain.config.schema import Config
from dltrain.runs import records

MAX_VALUE = 6000  # MLflow's longest param value (3.x)
# MLflow's key characters: letters, digits, _ - . / space and colon.
KEY_CHARACTERS = re.compile(r"[^\w.\-/ :]")


def flatten(data: Any, prefix: str = "") -> dict[str, str]:
    """Each leaf of the config as `key.path: value`, the value as --set would take it (YAML:
    true, null, 0.001); list items by index (metrics.0), empty sections as {} or []."""
    if isinstance(data, dict) and data:
        found: dict[str, str] = {}
        for key, value in data.items():
            found.update(flatten(value, f"{prefix}{key}."))
        return found
    if isinstance(data, list) and data:
        found = {}
        for index, value in enumerate(data):
            found.update(flatten(value, f"{prefix}{index}."))
        return found
    text = data if isinstance(data, str) else json.dumps(data)
    return {KEY_CHARACTERS.sub("_", prefix[:-1]): text[:MAX_VALUE]}


def config_params(config: Config) -> dict[str, str]:
    """The run's params: every config value under the key path --set takes (flatten)."""
    return flatten(config.model_dump(mode="json"))


def kind_of(smoke: bool, synthetic: bool) -> str:
    """The dltrain.kind tag: smoke (a --smoke fit), synthetic (stand-in data) or fit."""
    return "smoke" if smoke else "synthetic" if synthetic else "fit"


def run_tags(folder: Path, config: Config, kind: str) -> dict[str, str]:
    """The run's tags, from what environment.json and manifest.json recorded."""
    environment = records.read_if_present(folder, records.Environment)
    manifest = records.read_if_present(folder, records.Manifest)
    tags = {"dltrain.kind": kind, "dltrain.run_dir": str(folder.resolve()),
            "dltrain.dataset": str(config.dataset.name), "dltrain.backend": config.backend}
    if environment is not None:
        tags.update({f"dltrain.{key}": str(value) for key, value in (
            ("version", environment.dltrain), ("device", environment.device),
            ("keras", environment.keras)) if value is not None})
    if manifest is not None and manifest.data:
        tags["dltrain.data_sha256"] = hashlib.sha256(
            json.dumps(manifest.data, sort_keys=True).encode()).hexdigest()
    if manifest is not None and manifest.git and manifest.git.get("commit"):
        tags["mlflow.source.git.commit"] = str(manifest.git["commit"])
        tags["dltrain.git_dirty"] = json.dumps(manifest.git.get("dirty"))
    return tags


def numeric_metrics(metrics: dict[str, Any]) -> dict[str, float]:
    """metrics.json's numbers as MLflow metrics: the test scores as test_<name>, the other
    top-level numbers (epochs_run, best_epoch, train_seconds, ...) by their own names."""
    found = {f"test_{key}": float(value) for key, value in (metrics.get("test") or {}).items()
             if _number(value)}
    found.update({key: float(value) for key, value in metrics.items() if _number(value)})
    return {KEY_CHARACTERS.sub("_", key): value for key, value in found.items()}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
