"""The GPU benchmark's wiring, in its dry mode on the CPU: the one prepared GPU call must not be
the first time its steps run."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    importlib.util.find_spec("jax") is None, reason="needs JAX (pip install -e '.[jax]')")]


def dry_run(tmp_path: Path, *steps: str) -> None:
    """bench.py --dry for `steps`; 600 s for each of the (three) tests it serves, as it has 10
    Keras processes to start on a CI host that may be loaded."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path)}
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "gpu" / "bench.py"),
                           str(tmp_path / "out"), "--dry", "--only", *steps],
                          capture_output=True, text=True, timeout=1800, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    # Its runs, caches and data (150 MB a go) go with it.
    assert not list(tmp_path.glob("dltrain-gpu-bench-*"))


@pytest.fixture(scope="module")
def dry(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, str]:
    """One dry run of the steps these tests check (each of its processes starts Keras and JAX,
    so one bench for all of them): results.json, and results.md's text."""
    folder = tmp_path_factory.mktemp("bench")
    dry_run(folder, "classic", "gpu_config_bf16", "parts", "gpu_config_spe4")
    return (json.loads((folder / "out" / "results.json").read_text()),
            (folder / "out" / "results.md").read_text())


def test_dry_run_measures_the_classic_convnet_side_by_side(dry: tuple[dict, str]) -> None:
    results, text = dry
    classic = results["classic"]
    assert results["backend"] == "jax" and results["dry"] is True
    assert len(classic["script_epochs"]) == len(classic["dltrain_epochs"]) == 2
    assert classic["ratio"] == round(classic["dltrain_steady_s"] / classic["script_steady_s"], 3)
    assert "classic convnet, steady epoch" in text


def test_dry_run_times_the_gpu_config_with_bf16_beside_the_script(dry: tuple[dict, str]) -> None:
    results, text = dry
    rows = {key: row for key, row in results["fashion_mnist_gpu"].items() if "bf16" in key}
    # Dry, without the warm rows: they would rerun the cold commands (spe4's warm row is run).
    assert sorted(rows) == ["dltrain_cold_bf16", "script_cold_bf16"]
    tool = rows["dltrain_cold_bf16"]
    assert len(tool["epoch_seconds"]) == 2 and 0 <= tool["test_accuracy"] <= 1
    assert tool["outside_training_s"] == round(tool["wall_s"] - tool["train_s"], 2)
    assert 0 < tool["train_s"] < tool["wall_s"]
    # Each is rounded to the millisecond on its own, so the lap can read 1 ms short of the fit.
    assert tool["phase_seconds"]["train"] >= tool["train_s"] - 0.002
    assert tool["phase_seconds"]["total"] < tool["wall_s"]
    assert "fashion_mnist_gpu dltrain_cold_bf16" in text and "s outside it" in text
    assert "(phases: start " in text and "programs" in text
    assert tool["compilation"]["programs"] > 0


def test_dry_run_prices_dltrains_parts_in_the_script_and_four_steps_a_call(
        dry: tuple[dict, str]) -> None:
    results, text = dry
    assert sorted(results["parts"]) == ["data", "plain", "saver", "saver_and_data"]
    for row in results["parts"].values():
        assert len(row["epoch_seconds"]) == 2 and 0 <= row["test_accuracy"] <= 1
        assert row["steady_s"] == row["epoch_seconds"][1]
    rows = {key: row for key, row in results["fashion_mnist_gpu"].items() if "spe4" in key}
    assert sorted(rows) == ["dltrain_cold_spe4", "dltrain_warm_spe4"]
    # The one dry run's other rows are gpu_config_bf16's (the test above): nothing else.
    assert len(results["fashion_mnist_gpu"]) == 4
    assert rows["dltrain_warm_spe4"]["compilation"]["from_cache"] > 0
    assert "script + dltrain part saver: steady epoch" in text
    assert "fashion_mnist_gpu dltrain_warm_spe4" in text
