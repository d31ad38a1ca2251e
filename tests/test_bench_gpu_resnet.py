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
