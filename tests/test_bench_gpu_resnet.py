"""bench/gpu's residual step, its command lines only (no processes; the step's dry run is in
BENCHMARKS.md): dltrain's --set and the hand-written script's arguments train the same thing."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from conftest import ROOT
from dltrain.config.load import load_config

spec = importlib.util.spec_from_file_location("gpu_bench", ROOT / "bench" / "gpu" / "bench.py")
bench = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(bench)  # type: ignore[union-attr]

CONFIG = ROOT / "configs" / "fashion_mnist_resnet.yaml"


def test_the_schedule_warms_up_over_one_epoch_and_decays_over_the_others() -> None:
    # 57,000 training images (5% validates) in batches of 512: 112 steps an epoch.
    assert bench.resnet_schedule(60_000, 40, 512) == (112, 39 * 112)
    assert bench.resnet_schedule(256, 2, 512) == (1, 1)  # --dry's 256 images: one step


def test_the_gpu_variant_is_a_valid_config_with_the_scripts_numbers() -> None:
    plan = bench.RESNET_GPU
    warmup, decay = bench.resnet_schedule(60_000, plan["epochs"], plan["batch"])
    sets = bench.resnet_sets(plan["batch"], plan["peak"], warmup, decay)
    config = load_config(CONFIG, [*sets, f"training.epochs={plan['epochs']}"]).config
    script = bench.resnet_script(plan["epochs"], plan["batch"], plan["peak"], warmup, decay)
    epochs, batch, peak, script_warmup, script_decay = script[1:]
    assert script[0] == "resnet"
    assert (config.training.epochs, config.training.batch_size) == (int(epochs), int(batch))
    schedule = config.optimizer.schedule
    assert (schedule.name, schedule.warmup_target) == ("CosineDecay", float(peak))
    assert (schedule.warmup_steps, schedule.decay_steps) == (int(script_warmup),
                                                              int(script_decay))
    # The script's warm-up starts at PEAK/10; so does the config's rate.
    assert config.optimizer.learning_rate == float(peak) / 10
    # What the variant leaves as shipped, the script writes as the config has it.
    assert config.optimizer.name == "adamw" and config.optimizer.weight_decay == 0.0001
    assert config.dataset.validation_split == bench.VALIDATION
    assert config.augmentation.horizontal_flip is True


def test_the_fit_command_is_the_whole_cli_with_the_overrides(tmp_path: Path) -> None:
    command = bench.fit_command("fashion_mnist_resnet.yaml", tmp_path / "run", "jax", "gpu", 40,
                                ["training.batch_size=512"], dry=False)
    assert command == [sys.executable, "-m", "dltrain", "fit", str(CONFIG), "--backend", "jax",
                       "--device", "gpu", "--run-dir", str(tmp_path / "run"), "--epochs", "40",
                       "--set", "training.batch_size=512"]
    dry = bench.fit_command("fashion_mnist_resnet.yaml", tmp_path / "run", "jax", "cpu", 2, [],
                            dry=True)
    assert dry[-4:] == ["--set", f"dataset.train_limit={bench.DRY_TRAIN}", "--set",
                        f"dataset.test_limit={bench.DRY_TEST}"]


def test_the_verdict_needs_both_the_accuracy_and_the_time() -> None:
    assert bench.resnet_verdict({"test_accuracy": 0.9501, "wall_s": 59.9}) == "met"
    assert bench.resnet_verdict({"test_accuracy": 0.9499, "wall_s": 30.0}) == "not met"
    assert bench.resnet_verdict({"test_accuracy": 0.96, "wall_s": 60.1}) == "not met"
    # results.md names each dltrain row's verdict beside the overrides.
    row = {"wall_s": 45.0, "test_accuracy": 0.951, "epoch_seconds": [9.0, 0.5, 0.5]}
    text = bench.markdown({"backend": "jax", "dry": False, "resnet_sets": ["training.epochs=40"],
                           "fashion_mnist_resnet": {"script_cold": row, "dltrain_cold": row}})
    assert "fashion_mnist_resnet dltrain_cold: 45.0 s whole command" in text
    assert "whole command: dltrain_cold met): --set 'training.epochs=40'" in text
