"""The CLI end to end on each backend: fit, eval, predict, resume, determinism, smoke.

A process runs one Keras backend, so every command here runs in a real subprocess with a timeout
(the shared fits, and a fit stopped by SIGTERM, have a process each; the other commands, that
fit's resume among them, run several to a process of their backend, `sessions`); the same tests
run on TensorFlow, JAX and PyTorch. A backend this interpreter lacks runs in the
TensorFlow-free environment (`make tf-free-env`: JAX and PyTorch's CPU build, as on the GPU
machines) where that has it, and is skipped with the reason where neither does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml
from cli_batch import run_several

from conftest import CONFIGS, ROOT, copy_run, wait_for_history
from dltrain.runs.layout import read_history

pytestmark = pytest.mark.slow
QUICKSTART = CONFIGS / "quickstart.yaml"
# The shared fits: 630 training samples and 70 validating, in batches of 64 and 6; the test's
# 200 are 64 and 8, so its whole batches can reuse the validation's compiled step.
SMALL = ["--set", "dataset.train_limit=700", "--set", "dataset.test_limit=200"]
# Where a fit's size is not the point: 180 training samples, 3 steps an epoch at batch 64.
TINY = ["--set", "dataset.train_limit=200", "--set", "dataset.test_limit=100"]
# Seeded augmentation, so the deterministic rerun checks its draws too.
SEEDED = ["--set", "training.deterministic=true", "--set", "augmentation.horizontal_flip=true",
          "--set", "augmentation.brightness_range=[0.8,1.2]"]
# Keras 3's augmentation layers that mix labels with images (one-hot labels), all at once
# (RandAugment with one op: each op holds every transform, each compiled on JAX); in batches
# of 60, TINY's 180 training images in whole batches, so JAX compiles one training step.
MIXING = ["--set", "loss=categorical_crossentropy", "--set", "augmentation={random_erasing: 0.5, "
          "mixup: 0.2, cutmix: 1.0, rand_augment: 1}", "--set", "training.tensorboard=false",
          "--set", "training.batch_size=60"]
TF_FREE = Path(os.environ.get("DLTRAIN_TF_FREE_VENV") or ROOT / ".venv-tf-free")
TIMEOUT = 300
# What the dltrain script runs: run() leaves a SIGTERMed fit with os._exit (app.py says why);
# main() then sys.exit crashed in TensorFlow's teardown now and then (exit -11 for 143).
CLI = "from dltrain.cli import run; run()"


def python_for(backend: str) -> str | None:
    """This interpreter where it has the backend, else the TensorFlow-free environment's."""
    if importlib.util.find_spec(backend) is not None:
        return sys.executable
    python = TF_FREE / "bin" / "python"
    if python.is_file() and any(TF_FREE.glob(f"lib/python*/site-packages/{backend}/__init__.py")):
        return str(python)
    return None


PYTHONS = {name: python for name in ("tensorflow", "jax", "torch")
           if (python := python_for(name)) is not None}
BACKENDS = [pytest.param(name, marks=pytest.mark.skipif(
    name not in PYTHONS, reason=f"{name} is installed neither here nor in {TF_FREE}: pip "
    f'install -e ".[{name}]", or make tf-free-env')) for name in ("tensorflow", "jax", "torch")]


def environment(cache: Path, **more: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    return {**env, "CI": "1", "PYTHONPATH": str(ROOT), "DLTRAIN_JAX_CACHE": str(cache), **more}


def command(*args: object, on: str | None = None) -> list[str]:
    """The CLI in the interpreter that has backend `on` (default: the one after --backend)."""
    backend = on or str(args[args.index("--backend") + 1])
    return [PYTHONS[backend], "-c", CLI, *map(str, args)]


def dltrain(cache: Path, *args: object, on: str | None = None,
            **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args, on=on), capture_output=True, text=True,
                          timeout=TIMEOUT, env=environment(cache, **env), cwd=cache.parent)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backends") / "jax-cache"


@pytest.fixture(scope="module")
def fit_cache(cache: Path) -> Path:
    """The JAX compilation cache of the shared fits and the sessions: empty when the first fit
    starts (the cold fit), filled for the deterministic rerun (the warm one)."""
    return cache.parent / "jax-fit-cache"


def shared_fit(backend: str, run: Path) -> list[object]:
    """A deterministic 2-epoch quickstart run with augmentation."""
    return ["fit", QUICKSTART, "--backend", backend, "--run-dir", run, *SMALL, "--epochs", "2",
            *SEEDED]


@pytest.fixture(scope="module")
def fits(fit_cache: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """A shared fit per installed backend, a process each; JAX logs each program it compiles."""
    fits = {}
    for backend in PYTHONS:
        fits[backend] = done = dltrain(fit_cache, *shared_fit(backend, fit_cache.parent / f"run-"
                                                              f"{backend}"),
                                       JAX_LOG_COMPILES=str(int(backend == "jax")))
        assert done.returncode == 0, done.stdout + done.stderr
    return fits


def run_of(done: subprocess.CompletedProcess[str]) -> Path:
    return Path(done.args[done.args.index("--run-dir") + 1])


@pytest.fixture(scope="module")
def trained(fits: dict[str, subprocess.CompletedProcess[str]]) -> dict[str, Path]:
    return {backend: run_of(done) for backend, done in fits.items()}


def diverging_fit(run: Path, backend: str, good_epochs: int) -> list[object]:
    rate = ("optimizer.learning_rate=1e12" if good_epochs == 0 else
            # 180 training samples at batch 64: 3 steps an epoch, the 4th diverges.
            "optimizer.schedule={name: PiecewiseConstantDecay, boundaries: [3], "
            "values: [0.001, 1.0e+12]}")
    return ["fit", QUICKSTART, "--backend", backend, "--run-dir", run, *TINY, "--epochs", "3",
            "--set", rate, "--set", "training.tensorboard=false"]


def pngs(folder: Path) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    files = []
    for index, size in enumerate((28, 28, 40, 19)):  # two need resizing, up and down
        files.append(folder / f"{index}.png")
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(files[-1])
    return files


def session_commands(backend: str, trained: dict[str, Path], files: list[Path], folder: Path,
                     stopped: Path) -> dict[str, list[object]]:
    """What a process of `backend` runs, in this order: a fit on `--device gpu` (the backend
    not yet imported; deterministic, so that JAX starts with the flags of the rerun after it);
    the shared fit again (its first fit: on JAX from the compilation cache the cold one
    filled); eval of its own run, the runs listing, eval of the previous backend's model (TF ->
    JAX -> torch -> TF) on a copy (eval writes eval.json), predict with each backend's model,
    smoke; one epoch in mixed precision; two fits into a NaN, at once and after one good epoch
    (the second starts in the process the first failed in); the resume of the fit SIGTERM
    stopped, not told the backend (a process on another one would refuse to load Keras)."""
    names = list(trained)
    commands: dict[str, list[object]] = {
        "gpu": ["fit", QUICKSTART, "--backend", backend, "--device", "gpu", "--run-dir",
                trained[backend].parent / f"gpu-{backend}", "--set", "training.deterministic=true"],
        "rerun": shared_fit(backend, trained[backend].parent / f"rerun-{backend}"),
        "eval": ["eval", trained[backend], "--json"],
        "runs": ["runs", trained[backend].parent, "--json"]}
    if len(names) > 1:
        previous = names[names.index(backend) - 1]
        copy = copy_run(trained[previous], trained[previous].parent / f"eval-on-{backend}")
        commands["eval other"] = ["eval", copy, "--backend", backend, "--json"]
    for name, run in trained.items():
        commands[f"predict {name}"] = ["predict", run, *files, "--backend", backend, "--json"]
    commands["smoke"] = ["smoke", QUICKSTART, "--backend", backend]
    commands["mix"] = ["fit", QUICKSTART, "--backend", backend, "--run-dir", folder / "mix",
                       "--epochs", "1", *TINY, *MIXING]
    commands["bf16"] = ["fit", QUICKSTART, "--backend", backend, "--run-dir", folder / "bf16",
                        "--epochs", "1", *TINY, "--set", "training.mixed_precision=bf16"]
    for good in (0, 1):
        commands[f"diverge {good}"] = diverging_fit(folder / f"diverge-{good}", backend, good)
    commands["resume"] = ["fit", "--resume", stopped]
    return commands


# After a session's commands, the fits into a NaN (float32) the last: the bf16 run's model as
# Keras loads it on that backend, and the global policy it was loaded under.
POLICY = """
try:
    import keras
    model = keras.saving.load_model("bf16/model.keras")
    found = {"backend": keras.backend.backend(), "name": model.layers[0].dtype_policy.name,
             "global": keras.mixed_precision.global_policy().name}
except Exception as exc:  # the bf16 fit's test says why
    found = {"error": repr(exc)}
with open("policy.json", "w") as file:
    json.dump(found, file)
"""


@dataclass(frozen=True)
class Stopped:
    """A fit SIGTERMed once its history had two rows: its run, exit code and output."""

    run: Path
    code: int
    output: str


@pytest.fixture(scope="module")
def stopped(cache: Path) -> dict[str, Stopped]:
    """Per installed backend, a 12-epoch fit in a process of its own, SIGTERMed once the first
    epoch's checkpoint is kept (two history rows); its session resumes it."""
    stopped = {}
    for backend in PYTHONS:
        run = cache.parent / "stopped" / backend / "run"
        run.parent.mkdir(parents=True)
        process = subprocess.Popen(command("fit", QUICKSTART, "--backend", backend, "--run-dir",
                                           run, *TINY, "--epochs", "12"),
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                   env=environment(cache), cwd=run.parent)
        try:
            wait_for_history(process, run / "history.csv", 2, TIMEOUT)
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate(timeout=TIMEOUT)
        finally:
            process.kill()
        stopped[backend] = Stopped(run, process.returncode, out + err)
    return stopped


@pytest.fixture(scope="module")
def sessions(trained: dict[str, Path], fit_cache: Path,
             stopped: dict[str, Stopped]) -> dict[str, dict[str, Any]]:
    """Per installed backend, one process (cli_batch) that runs session_commands, each to a
    CompletedProcess of its name, and "policy": the bf16 model's, from POLICY."""
    files = pngs(fit_cache.parent)
    done = {}
    for backend in PYTHONS:
        folder = fit_cache.parent / "sessions" / backend
        commands = session_commands(backend, trained, files, folder, stopped[backend].run)
        finished = run_several(folder, list(commands.values()), environment(fit_cache),
                               4 * TIMEOUT, python=PYTHONS[backend], epilogue=POLICY)
        done[backend] = {**dict(zip(commands, finished, strict=True)),
                         "policy": json.loads((folder / "policy.json").read_text())}
    return done


def accuracy(path: Path) -> float:
    return float(json.loads(path.read_text())["test"]["accuracy"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_records_its_backend_and_eval_agrees(backend: str, trained: dict[str, Path],
                                                 sessions: dict[str, dict[str, Any]]) -> None:
    run = trained[backend]
    env = json.loads((run / "environment.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert env["backend"] == manifest["versions"]["backend"] == backend
    assert env.get("keep_freed_memory", False) is (backend == "torch")  # allocator.py
    # steps_per_execution auto at quickstart's batch 64: 4 a call on JAX; torch runs one, and
    # so does TensorFlow here, where train_limit 700 caps an epoch at 11 steps (10 after the
    # validation split): too short to pay back the second tracing a loop of several costs.
    assert env["steps_per_execution"] == (4 if backend == "jax" else 1)
    assert backend in env and "backend: " + backend in (run / "config.yaml").read_text()
    done = sessions[backend]["eval"]
    assert done.returncode == 0, done.stderr
    assert accuracy(run / "eval.json") == pytest.approx(accuracy(run / "metrics.json"), abs=0.001)
    listed = sessions[backend]["runs"]
    assert {row["name"]: row["backend"] for row in json.loads(listed.stdout)}[run.name] \
        == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_evaluates_the_same_on_the_other_backend(backend: str, trained: dict[str, Path],
                                                         sessions: dict[str, dict[str, Any]]) -> None:
    if len(trained) < 2:
        pytest.skip("needs two backends installed")
    names = list(trained)  # each scores the next one's model: TF -> JAX -> torch -> TF
    other = names[(names.index(backend) + 1) % len(names)]
    run = trained[backend]
    done = sessions[other]["eval other"]
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["test"]["accuracy"] == pytest.approx(
        accuracy(run / "metrics.json"), abs=0.001)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_on_pngs_is_the_same_on_every_backend(backend: str, trained: dict[str, Path],
                                                      sessions: dict[str, dict[str, Any]]) -> None:
    tops = {}
    for name in trained:
        done = sessions[name][f"predict {backend}"]
        assert done.returncode == 0, done.stderr
        tops[name] = [[round(top["probability"], 4) for top in result["top"]]
                      for result in json.loads(done.stdout)]
    first = next(iter(tops.values()))
    assert all(np.allclose(top, first, atol=1e-3) for top in tops.values()), tops


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_deterministic_rerun_repeats_the_history(backend: str, trained: dict[str, Path],
                                                   sessions: dict[str, dict[str, Any]]) -> None:
    done = sessions[backend]["rerun"]  # in a process of its own, after the --device gpu check
    assert done.returncode == 0, done.stderr

    def losses(path: Path) -> list[float]:
        return [row["loss"] for row in read_history(path / "history.csv")]

    assert losses(run_of(done)) == losses(trained[backend])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_then_resume_keeps_the_backend(backend: str, stopped: dict[str, Stopped],
                                               sessions: dict[str, dict[str, Any]]) -> None:
    stop = stopped[backend]
    assert stop.code == 143, stop.output
    # The resume is not told the backend: it comes from the run's config.yaml.
    done = sessions[backend]["resume"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert [row["epoch"] for row in read_history(stop.run / "history.csv")] == list(range(1, 13))
    assert json.loads((stop.run / "environment.json").read_text())["backend"] == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_smoke_runs_on_the_backend(backend: str, sessions: dict[str, dict[str, Any]]) -> None:
    done = sessions[backend]["smoke"]
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed, 0 failed" in done.stdout


def test_a_backend_that_is_not_installed_exits_2_with_the_install_line(cache: Path,
                                                                      tmp_path: Path) -> None:
    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here")
    done = subprocess.run([sys.executable, "-c", CLI, "fit", str(QUICKSTART), "--backend", "torch",
                           "--run-dir", str(tmp_path / "r")], capture_output=True, text=True,
                          timeout=TIMEOUT, env=environment(cache), cwd=tmp_path)
    assert done.returncode == 2
    assert 'pip install "dltrain-keras[torch]"' in " ".join(done.stderr.split())
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_device_gpu_without_a_gpu_exits_2(backend: str, trained: dict[str, Path],
                                          sessions: dict[str, dict[str, Any]]) -> None:
    done = sessions[backend]["gpu"]  # the first command of its process
    if done.returncode == 0:
        pytest.skip("this machine has a GPU")
    assert done.returncode == 2
    name = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}[backend]
    assert f"--device gpu: {name} sees no GPU here. Use --device cpu or auto." \
        in " ".join(done.stderr.split())
    assert not (trained[backend].parent / f"gpu-{backend}").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_mixing_augmentations_train_on_every_backend(backend: str,
                                                          sessions: dict[str, dict[str, Any]]) -> None:
    """RandAugment, RandomErasing, MixUp and CutMix: in tf.data's map on TensorFlow, inside the
    compiled training step on JAX and torch."""
    done = sessions[backend]["mix"]
    assert done.returncode == 0, done.stdout + done.stderr
    run = run_of(done)
    [row] = read_history(run / "history.csv")
    assert np.isfinite(row["loss"]) and 0 <= row["accuracy"] <= 1
    saved = yaml.safe_load((run / "config.yaml").read_text())
    assert saved["augmentation"]["mixup"] == 0.2 and saved["augmentation"]["cutmix"] == 1.0
    assert 0 <= accuracy(run / "metrics.json") <= 1
    if backend == "jax":  # the step compiled whole: 21 programs; op by op (Keras's RandomZoom
        # and kin say supports_jit False) it was 419, one an op and batch shape
        compiled = json.loads((run / "metrics.json").read_text())["compilation"]["programs"]
        assert compiled < 100, compiled


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_precision_is_applied_and_recorded(backend: str,
                                                 sessions: dict[str, dict[str, Any]]) -> None:
    done = sessions[backend]["bf16"]
    assert done.returncode == 0, done.stdout + done.stderr
    run = run_of(done)
    assert json.loads((run / "environment.json").read_text())["mixed_precision"] == "mixed_bfloat16"
    assert json.loads((run / "manifest.json").read_text())["versions"]["mixed_precision"] \
        == "mixed_bfloat16"
    assert 0 <= accuracy(run / "metrics.json") <= 1
    # Loaded by Keras on the same backend, after fits in float32: the policy is the file's.
    assert sessions[backend]["policy"] == {"backend": backend, "name": "mixed_bfloat16",
                                           "global": "float32"}


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("good_epochs", [0, 1])
def test_a_diverging_loss_fails_the_run_and_keeps_only_good_epochs(
        sessions: dict[str, dict[str, Any]], backend: str, good_epochs: int) -> None:
    # On JAX the NaN check runs in Keras's worker thread and raises (StopOnNonFinite); setting
    # stop_training from there instead crashed on donated buffers.
    done = sessions[backend][f"diverge {good_epochs}"]
    run = Path(str(done.args[done.args.index("--run-dir") + 1]))
    message = " ".join(done.stderr.split())
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: the loss became NaN or infinite; training stopped." in message
    assert "Traceback" not in done.stderr
    assert json.loads((run / "run.json").read_text())["state"] == "failed"
    assert len(read_history(run / "history.csv")) >= good_epochs
    assert (run / "last.keras").is_file() is (good_epochs > 0)
    if backend == "jax":  # the compilation account is printed before the error, too
        assert "compilation: " in done.stdout, done.stdout[-2000:]


def batch_shapes(count: int, batch: int) -> set[int]:
    return {size for size in (min(count, batch), count % batch) if size}


@pytest.mark.skipif("jax" not in PYTHONS, reason="needs JAX")
def test_an_augmented_jax_run_scores_with_the_test_step_its_validation_compiled(
        fits: dict[str, subprocess.CompletedProcess[str]]) -> None:
    """Each compilation costs seconds on a GPU from cold: the test split's whole batches reuse
    the step compiled for the validation's, rather than compiling the model's own anew (the
    shared JAX fit is augmented, logs its compilations and starts on an empty cache)."""
    done = fits["jax"]
    metrics = json.loads((run_of(done) / "metrics.json").read_text())
    assert metrics["compilation"]["from_cache"] == 0  # each program compiled, and logged
    shapes = batch_shapes(metrics["validation_samples"], 64) | batch_shapes(
        metrics["test_samples"], 64)
    # The validation has a whole batch, as the test has: one shape for both.
    assert metrics["validation_samples"] > 64 and len(shapes) == 3
    assert done.stderr.count("Finished XLA compilation of jit(test_step)") == len(shapes)


@pytest.mark.skipif("jax" not in PYTHONS, reason="needs JAX")
def test_a_jax_fit_says_what_it_compiled_and_a_rerun_loads_it_from_the_cache(
        fits: dict, sessions: dict[str, dict[str, Any]], fit_cache: Path) -> None:
    runs = [(json.loads((run_of(done) / "metrics.json").read_text())["compilation"],
             " ".join((done.stdout + done.stderr).split()))
            for done in (fits["jax"], sessions["jax"]["rerun"])]
    (cold, cold_text), (warm, warm_text) = runs
    assert cold["programs"] > 0 and cold["from_cache"] == 0 and cold["seconds"] > 0
    assert f"compilation: {cold['programs']} programs" in cold_text
    assert warm["programs"] == cold["programs"] and warm["from_cache"] == warm["programs"]
    said = f"{warm['from_cache']} loaded from the compilation cache ({fit_cache})"
    assert "".join(said.split()) in "".join(warm_text.split())  # a long path may wrap mid-word
    assert "went to compiling the model" not in warm_text  # the estimate is for other backends
