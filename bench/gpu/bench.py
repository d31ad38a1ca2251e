"""The GPU benchmark of issue #14, in one go: dltrain against the hand-written Keras script.

Side by side, on one machine, in one process tree (bench/gpu/run.sh prepares the machine):
1. steady epoch time of the classic convnet (fashion_mnist_cnn), hand-written vs `dltrain fit`;
2. fashion_mnist_gpu whole commands, start to exit: hand-written and `dltrain fit`, each twice,
   the second with the compilation cache the first left (dltrain's default JAX cache; the script
   gets the same folder through JAX_COMPILATION_CACHE_DIR), with test accuracy, and dltrain's
   seconds in training against outside it, phase by phase (metrics.json's phase_seconds), and
   JAX's own account of its compilations (metrics.json's compilation);
   `gpu_config_bf16` does the same with bfloat16 mixed precision (`--bf16`,
   `training.mixed_precision: bf16`); `gpu_config_spe4` runs dltrain alone, cold and warm, with
   4 training steps per call into JAX (`training.steps_per_execution: 4`) instead of auto's 1;
3. `parts`: the hand-written script of the GPU config with one of dltrain's parts at a time
   (its background checkpoint, its input pipeline, both), warm cache, to see what each costs;
4. augmentation on 50,000 CIFAR-shaped images, batch 32: dltrain without and with flips, and the
   hand-written script without augmentation and fed by ImageDataGenerator flips;
5. `resnet`: fashion_mnist_resnet (a graph model) whole commands, cold and warm, beside the
   hand-written functional-API script of the same net, both in the GPU variant RESNET_GPU
   (issue #30's target: >= 95.0% test accuracy in <= 60 s); `resnet_shipped` runs dltrain alone
   on the config as shipped (10 epochs, batch 128, a constant rate), once.

Writes results.json and results.md to OUT. `--dry` runs every step on 64 samples and 2 epochs
(`parts` without its warm-up run, `gpu_config` without its warm rows), on the CPU with XLA's
optimisations off and without TensorFlow (as on the GPU machine), to check the wiring
(tests/test_bench_gpu.py does).

Usage: python bench/gpu/bench.py OUT [--backend jax] [--data FASHION_MNIST_DIR] [--dry]
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HANDWRITTEN = Path(__file__).with_name("handwritten.py")
LIMIT = 600  # seconds for any one command
# --dry's training and test samples (handwritten.py's --dry takes as many): one batch each, as
# each of a dry run's processes trains and compiles on the CPU.
DRY_TRAIN, DRY_TEST = 64, 64
# fashion_mnist_resnet on one GPU, through --set (the shipped config stays the CPU's): 4x the
# batch (112 steps of 512 an epoch instead of 446 of 128, as a step costs ~3 ms of Keras's loop
# on an H100/H200 whatever its size), 4x the epochs, and the rate that a 4x batch takes (2x:
# Adam's square-root rule) warmed up over the first epoch, then cosine to 0, like
# fashion_mnist_gpu, which the same schedule took to 94.5% in 30 epochs. No bf16: it did not
# pay for nets this small (BENCHMARKS.md, 2026-11-27).
RESNET_GPU = {"epochs": 40, "batch": 512, "peak": 0.004}
FASHION_MNIST_TRAIN = 60_000
DRY_XLA_FLAGS = "--xla_backend_optimization_level=0"
# Python reads sitecustomize at start: its path finder no longer finds TensorFlow, so
# `import tensorflow` fails and importlib.util.find_spec says None, as where it is not installed
# (None in sys.modules would not do: Keras takes a name there for TensorFlow loaded).
NO_TENSORFLOW = """import sys
from importlib.machinery import PathFinder


class WithoutTensorFlow(PathFinder):
    @classmethod
    def find_spec(cls, name, path=None, target=None):
        if name.partition(".")[0] == "tensorflow":
            return None
        return super().find_spec(name, path, target)


sys.meta_path[:] = [WithoutTensorFlow if f is PathFinder else f for f in sys.meta_path]
"""
VALIDATION = 0.05  # both configs' and the scripts' validation_split


def resnet_schedule(samples: int, epochs: int, batch: int) -> tuple[int, int]:
    """Warm-up steps (one epoch) and cosine decay steps (the other epochs) for `samples`."""
    steps = math.ceil(samples * (1 - VALIDATION) / batch)
    return steps, steps * max(epochs - 1, 1)


def resnet_sets(batch: int, peak: float, warmup: int, decay: int) -> list[str]:
    """The --set overrides that make fashion_mnist_resnet the GPU variant."""
    return [f"training.batch_size={batch}", f"optimizer.learning_rate={peak / 10}",
            f"optimizer.schedule={{name: CosineDecay, warmup_target: {peak}, "
            f"warmup_steps: {warmup}, decay_steps: {decay}}}"]


def resnet_script(epochs: int, batch: int, peak: float, warmup: int, decay: int) -> list[str]:
    """handwritten.py's arguments for the same net, data, epochs, optimizer and schedule."""
    return ["resnet", str(epochs), str(batch), str(peak), str(warmup), str(decay)]


def fit_command(config: str, run_dir: Path, backend: str, device: str, epochs: int,
                sets: tuple[str, ...] | list[str], dry: bool) -> list[str]:
    """The whole `dltrain fit` command line a step times (shrunk to a smoke run's data if dry)."""
    shrink = ["--set", f"dataset.train_limit={DRY_TRAIN}", "--set",
              f"dataset.test_limit={DRY_TEST}"] if dry else []
    return [sys.executable, "-m", "dltrain", "fit", str(ROOT / "configs" / config),
            "--backend", backend, "--device", device, "--run-dir", str(run_dir),
            "--epochs", str(epochs), *shrink, *[arg for s in sets for arg in ("--set", s)]]


def run(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Run a command to its end; its wall time and stdout. Fails loudly with its stderr."""
    started = time.perf_counter()
    done = subprocess.run(command, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=LIMIT)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {done.returncode}:\n{done.stderr[-4000:]}")
    return round(seconds, 2), done.stdout


def steady(seconds: list[float]) -> float:
    """The median epoch after the first (which compiles)."""
    return round(statistics.median(seconds[1:] or seconds), 3)


class Bench:
    def __init__(self, out: Path, backend: str, data: Path | None, dry: bool) -> None:
        self.out, self.backend, self.dry = out, backend, dry
        self.work = Path(tempfile.mkdtemp(prefix="dltrain-gpu-bench-"))
        self.env = {**os.environ, "KERAS_BACKEND": backend, "CI": "1",
                    "XDG_CACHE_HOME": str(self.work / "cache"),
                    "JAX_COMPILATION_CACHE_DIR": str(self.work / "cache" / "dltrain" / "jax"),
                    "KERAS_HOME": str(self.work / "keras")}
        if dry:  # timings mean nothing on the CPU: XLA compiles without optimising (~30% of a
            # dry process's CPU time less); the GPU run compiles as any run does
            self.env["JAX_PLATFORMS"] = "cpu"
            self.env["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {DRY_XLA_FLAGS}".strip()
            # and without TensorFlow, as on the GPU machine (run.sh): Keras's set_random_seed
            # and dltrain's TensorBoard logs would import it, seconds in each process
            hidden = self.work / "no-tensorflow"
            hidden.mkdir()
            (hidden / "sitecustomize.py").write_text(NO_TENSORFLOW)
            self.env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(hidden), os.environ.get("PYTHONPATH", "")]))
        cache = self.work / "keras" / "datasets" / "fashion-mnist"
        cache.mkdir(parents=True)
        for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                     "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
            source = (data or Path("/usr/share/datasets/fashion-mnist")) / name
            if source.is_file():
                shutil.copy(source, cache / name)
        if dry and not (cache / "t10k-labels-idx1-ubyte.gz").is_file():
            _fake_fashion_mnist(cache)
        self.device = "cpu" if dry else "gpu"
        self.results: dict = {"backend": backend, "dry": dry}

    def handwritten(self, *args: str) -> tuple[float, dict]:
        extra = ["--dry"] if self.dry else []
        wall, stdout = run([sys.executable, str(HANDWRITTEN), *args, *extra], self.env, self.work)
        return wall, json.loads(stdout.strip().splitlines()[-1])

    def dltrain(self, config: str, name: str, *sets: str, epochs: int) -> tuple[float, dict]:
        """Whole command's wall time; its epoch times, test accuracy and seconds in `fit`."""
        run_dir = self.work / "runs" / name
        command = fit_command(config, run_dir, self.backend, self.device, epochs, sets, self.dry)
        wall, _ = run(command, self.env, self.work)
        with (run_dir / "history.csv").open() as handle:
            seconds = [float(row["seconds"]) for row in csv.DictReader(handle)]
        metrics = json.loads((run_dir / "metrics.json").read_text())
        return wall, {"epoch_seconds": seconds, "test_accuracy": metrics["test"]["accuracy"],
                      "train_s": metrics["train_seconds"],
                      "outside_training_s": round(wall - metrics["train_seconds"], 2),
                "phase_seconds": metrics.get("phase_seconds", {}),
                "compilation": metrics.get("compilation", {})}

    def classic(self) -> None:
        epochs = 2 if self.dry else 6
        _, script = self.handwritten("classic", str(epochs))
        _, tool = self.dltrain("fashion_mnist_cnn.yaml", "classic", epochs=epochs)
        self.results["classic"] = {
            "script_steady_s": steady(script["epoch_seconds"]),
            "dltrain_steady_s": steady(tool["epoch_seconds"]),
            "ratio": round(steady(tool["epoch_seconds"]) / steady(script["epoch_seconds"]), 3),
            "script_epochs": script["epoch_seconds"], "dltrain_epochs": tool["epoch_seconds"]}

    def gpu_config(self, bf16: bool = False) -> None:
        epochs = 2 if self.dry else 30
        rows = {}
        flag, sets, tag = (["--bf16"], ["training.mixed_precision=bf16"], "_bf16") if bf16 \
            else ([], [], "")
        # Dry, the warm commands would be the cold ones again: gpu_config_spe4's dry warm run
        # checks that a second fit reads the cache.
        for attempt in ("cold",) if self.dry else ("cold", "warm"):
            wall, script = self.handwritten("best", str(epochs), *flag)
            rows[f"script_{attempt}{tag}"] = {"wall_s": wall, **script}
            wall, tool = self.dltrain("fashion_mnist_gpu.yaml", f"gpu-{attempt}{tag}", *sets,
                                      epochs=epochs)
            rows[f"dltrain_{attempt}{tag}"] = {"wall_s": wall, **tool}
        self.results.setdefault("fashion_mnist_gpu", {}).update(rows)

    def parts(self) -> None:
        epochs = 2 if self.dry else 30
        if not self.dry:  # a dry run checks the wiring: its plain run may compile for the others
            self.handwritten("best", str(epochs))  # the cache warm for all of them
        rows = {}
        for name, flags in (("plain", []), ("saver", ["--dltrain-saver"]),
                            ("data", ["--dltrain-data"]),
                            ("saver_and_data", ["--dltrain-saver", "--dltrain-data"])):
            wall, script = self.handwritten("best", str(epochs), *flags)
            rows[name] = {"wall_s": wall, "steady_s": steady(script["epoch_seconds"]),
                          "epoch_seconds": script["epoch_seconds"],
                          "test_accuracy": script["test_accuracy"]}
        self.results["parts"] = rows

    def gpu_config_bf16(self) -> None:
        self.gpu_config(bf16=True)

    def gpu_config_spe4(self) -> None:
        epochs = 2 if self.dry else 30
        rows = {}
        for attempt in ("cold", "warm"):
            wall, tool = self.dltrain("fashion_mnist_gpu.yaml", f"gpu-{attempt}-spe4",
                                      "training.steps_per_execution=4", epochs=epochs)
            rows[f"dltrain_{attempt}_spe4"] = {"wall_s": wall, **tool}
        self.results.setdefault("fashion_mnist_gpu", {}).update(rows)

    def resnet(self) -> None:
        epochs = 2 if self.dry else RESNET_GPU["epochs"]
        batch, peak = RESNET_GPU["batch"], RESNET_GPU["peak"]
        warmup, decay = resnet_schedule(DRY_TRAIN if self.dry else FASHION_MNIST_TRAIN, epochs,
                                        batch)
        sets = resnet_sets(batch, peak, warmup, decay)
        rows: dict = {}
        for attempt in ("cold", "warm"):
            wall, script = self.handwritten(*resnet_script(epochs, batch, peak, warmup, decay))
            rows[f"script_{attempt}"] = {"wall_s": wall, **script}
            wall, tool = self.dltrain("fashion_mnist_resnet.yaml", f"resnet-{attempt}", *sets,
                                      epochs=epochs)
            rows[f"dltrain_{attempt}"] = {"wall_s": wall, **tool}
        self.results.setdefault("fashion_mnist_resnet", {}).update(rows)
        self.results["resnet_sets"] = [f"training.epochs={epochs}", *sets]

    def resnet_shipped(self) -> None:
        epochs = 2 if self.dry else 10  # the config's own
        wall, tool = self.dltrain("fashion_mnist_resnet.yaml", "resnet-shipped", epochs=epochs)
        self.results.setdefault("fashion_mnist_resnet", {})["dltrain_shipped"] = {
            "wall_s": wall, **tool}

    def augmentation(self) -> None:
        epochs = 2 if self.dry else 3
        count = 512 if self.dry else 50_000
        data = self.work / "cifar_shaped.npz"
        import numpy as np

        rng = np.random.default_rng(0)
        np.savez(data, x_train=rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8),
                 y_train=rng.integers(0, 10, count), x_test=rng.integers(
                     0, 256, (1000, 32, 32, 3), dtype=np.uint8), y_test=rng.integers(0, 10, 1000))
        common = ("dataset.name=npz", f"dataset.path={data}", "dataset.validation_split=0")
        rows = {}
        for flips in (False, True):
            _, tool = self.dltrain("cifar_cnn.yaml", f"cifar-flips-{flips}", *common,
                                   f"augmentation.horizontal_flip={str(flips).lower()}",
                                   epochs=epochs)
            rows[f"dltrain_{'flips' if flips else 'none'}"] = steady(tool["epoch_seconds"])
        for mode in ("none", "idg"):
            _, script = self.handwritten("cifar", mode, str(epochs))
            rows[f"script_{mode}"] = steady(script["epoch_seconds"])
        rows["flips_cost"] = round(rows["dltrain_flips"] / rows["dltrain_none"] - 1, 3)
        rows["idg_vs_dltrain_flips"] = round(rows["script_idg"] / rows["dltrain_flips"], 3)
        self.results["augmentation"] = rows

    def write(self) -> None:
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "results.json").write_text(json.dumps(self.results, indent=2) + "\n")
        (self.out / "results.md").write_text(markdown(self.results))
        print(markdown(self.results))


def markdown(results: dict) -> str:
    lines = [f"backend {results['backend']}{' (dry run, CPU)' if results['dry'] else ''}", ""]
    if "classic" in results:
        c = results["classic"]
        lines += [f"- classic convnet, steady epoch: script {c['script_steady_s']} s, dltrain "
                  f"{c['dltrain_steady_s']} s, ratio {c['ratio']}"]
    for config in ("fashion_mnist_gpu", "fashion_mnist_resnet"):
        lines += [whole_command(config, key, row) for key, row in results.get(config, {}).items()]
    if "resnet_sets" in results:
        rows = results["fashion_mnist_resnet"]
        verdicts = ", ".join(f"{key} {resnet_verdict(rows[key])}" for key in
                             ("dltrain_cold", "dltrain_warm") if key in rows)
        lines += ["- fashion_mnist_resnet's GPU variant (target >= 95.0% in <= 60 s, whole "
                  f"command: {verdicts}): "
                  + " ".join(f"--set '{s}'" for s in results["resnet_sets"])]
    for name, row in results.get("parts", {}).items():
        lines += [f"- script + dltrain part {name}: steady epoch {row['steady_s']} s, whole "
                  f"{row['wall_s']} s, test accuracy {row['test_accuracy']}"]
    if "augmentation" in results:
        a = results["augmentation"]
        lines += [f"- cifar-shaped, steady epoch: dltrain none {a['dltrain_none']} s, flips "
                  f"{a['dltrain_flips']} s (cost {a['flips_cost']:+.1%}); script none "
                  f"{a['script_none']} s, ImageDataGenerator {a['script_idg']} s "
                  f"({a['idg_vs_dltrain_flips']}x dltrain's flips)"]
    return "\n".join(lines) + "\n"


def resnet_verdict(row: dict) -> str:
    """Issue #30's GPU target for one dltrain row: >= 95.0% test accuracy in <= 60 s."""
    return "met" if row["test_accuracy"] >= 0.95 and row["wall_s"] <= 60 else "not met"


def whole_command(config: str, key: str, row: dict) -> str:
    """One whole-command row of results.md: times, accuracy, phases, compilations."""
    inside = (f", {row['train_s']} s in fit, {row['outside_training_s']} s outside it"
              if "train_s" in row else "")
    phases = ", ".join(f"{name} {seconds}" for name, seconds in
                       row.get("phase_seconds", {}).items())
    line = (f"- {config} {key}: {row['wall_s']} s whole command{inside}, test accuracy "
            f"{row.get('test_accuracy')}, first epoch {row['epoch_seconds'][0]} s, steady "
            f"{steady(row['epoch_seconds'])} s" + (f" (phases: {phases})" if phases else ""))
    if row.get("compilation"):
        c = row["compilation"]
        line += (f"; compilation {c['programs']} programs, {c['seconds']} s, "
                 f"{c['from_cache']} from the cache")
    return line


def _fake_fashion_mnist(folder: Path) -> None:
    """IDX files of random images, for --dry on a machine without the real ones."""
    import gzip

    import numpy as np

    rng = np.random.default_rng(0)
    for name, shape in (("train-images-idx3-ubyte.gz", (600, 28, 28)),
                        ("train-labels-idx1-ubyte.gz", (600,)),
                        ("t10k-images-idx3-ubyte.gz", (300, 28, 28)),
                        ("t10k-labels-idx1-ubyte.gz", (300,))):
        array = rng.integers(0, 10 if len(shape) == 1 else 256, shape, dtype=np.uint8)
        header = bytes([0, 0, 8, len(shape)]) + b"".join(d.to_bytes(4, "big") for d in shape)
        with gzip.open(folder / name, "wb") as handle:
            handle.write(header + array.tobytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--backend", default="jax")
    parser.add_argument("--data", type=Path, default=None)
    parser.add_argument("--dry", action="store_true")
    parser.add_argument("--only", nargs="*", choices=["classic", "gpu_config", "gpu_config_bf16",
                                                      "gpu_config_spe4", "augmentation",
                                                      "parts", "resnet", "resnet_shipped"])
    options = parser.parse_args()
    bench = Bench(options.out, options.backend, options.data, options.dry)
    try:
        for step in options.only or ["resnet", "gpu_config", "classic", "augmentation",
                                     "gpu_config_bf16"]:
            started = time.perf_counter()
            getattr(bench, step)()
            print(f"{step}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)
            bench.write()  # after each step, so a call cut short still returns what it measured
    finally:
        # Runs, caches and data copies: 150 MB a go, which filled the disk of a CI that
        # shared a machine with repeated dry runs.
        shutil.rmtree(bench.work, ignore_errors=True)


if __name__ == "__main__":
    main()
