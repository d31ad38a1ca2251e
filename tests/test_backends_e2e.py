"""The CLI end to end on each backend: fit, eval, predict, resume, determinism, smoke.

A process runs one Keras backend, so every command here is a real `dltrain` subprocess with a
timeout; the same tests run on TensorFlow, JAX and PyTorch. A backend this interpreter lacks runs
in the TensorFlow-free environment (`make tf-free-env`: JAX and PyTorch's CPU build, as on the
GPU machines) where that has it, and is skipped with the reason where neither does.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import CONFIGS, ROOT, wait_for_history
from dltrain.runs.layout import read_history

pytestmark = pytest.mark.slow
QUICKSTART = CONFIGS / "quickstart.yaml"
SMALL = ["--set", "dataset.train_limit=600", "--set", "dataset.test_limit=200"]
# Seeded augmentation, so the deterministic rerun checks its draws too.
SEEDED = ["--set", "training.deterministic=true", "--set", "augmentation.horizontal_flip=true",
          "--set", "augmentation.brightness_range=[0.8,1.2]"]
TF_FREE = Path(os.environ.get("DLTRAIN_TF_FREE_VENV") or ROOT / ".venv-tf-free")
TIMEOUT = 300
CLI = "import sys; from dltrain.cli import main; sys.exit(main())"


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
    f'install "dltrain[{name}]", or make tf-free-env')) for name in ("tensorflow", "jax", "torch")]


def environment(cache: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    return {**env, "CI": "1", "PYTHONPATH": str(ROOT), "DLTRAIN_JAX_CACHE": str(cache)}


def command(*args: object, on: str | None = None) -> list[str]:
    """The CLI in the interpreter that has backend `on` (default: the one after --backend)."""
    backend = on or str(args[args.index("--backend") + 1])
    return [PYTHONS[backend], "-c", CLI, *map(str, args)]


def dltrain(cache: Path, *args: object, on: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command(*args, on=on), capture_output=True, text=True,
                          timeout=TIMEOUT, env=environment(cache), cwd=cache.parent)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("backends") / "jax-cache"


@pytest.fixture(scope="module")
def trained(cache: Path) -> dict[str, Path]:
    """One deterministic 2-epoch quickstart run per installed backend, with augmentation."""
    runs = {}
    for backend in PYTHONS:
        run = cache.parent / f"run-{backend}"
        done = dltrain(cache, "fit", QUICKSTART, "--backend", backend, "--run-dir", run, *SMALL,
                       "--epochs", "2", *SEEDED)
        assert done.returncode == 0, done.stdout + done.stderr
        runs[backend] = run
    return runs


def accuracy(path: Path) -> float:
    return float(json.loads(path.read_text())["test"]["accuracy"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_records_its_backend_and_eval_agrees(backend: str, trained: dict[str, Path],
                                                 cache: Path) -> None:
    run = trained[backend]
    env = json.loads((run / "environment.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert env["backend"] == manifest["versions"]["backend"] == backend
    assert env.get("keep_freed_memory", False) is (backend == "torch")  # allocator.py
    # steps_per_execution auto at quickstart's batch 64: 4 a call; torch runs one.
    assert env["steps_per_execution"] == (1 if backend == "torch" else 4)
    assert backend in env and "backend: " + backend in (run / "config.yaml").read_text()
    done = dltrain(cache, "eval", run, "--json", on=backend)
    assert done.returncode == 0, done.stderr
    assert accuracy(run / "eval.json") == pytest.approx(accuracy(run / "metrics.json"), abs=0.001)
    listed = dltrain(cache, "runs", cache.parent, "--json", on=backend)
    assert {row["name"]: row["backend"] for row in json.loads(listed.stdout)}[run.name] == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_evaluates_the_same_on_the_other_backend(backend: str, trained: dict[str, Path],
                                                         cache: Path) -> None:
    if len(trained) < 2:
        pytest.skip("needs two backends installed")
    names = list(trained)  # each scores the next one's model: TF -> JAX -> torch -> TF
    other = names[(names.index(backend) + 1) % len(names)]
    run = trained[backend]
    done = dltrain(cache, "eval", run, "--backend", other, "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["test"]["accuracy"] == pytest.approx(
        accuracy(run / "metrics.json"), abs=0.001)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_on_pngs_is_the_same_on_every_backend(backend: str, trained: dict[str, Path],
                                                      cache: Path, tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    files = []
    for index, size in enumerate((28, 28, 40, 19)):  # two need resizing, up and down
        files.append(tmp_path / f"{index}.png")
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(files[-1])
    tops = {}
    for name in trained:
        done = dltrain(cache, "predict", trained[backend], *files, "--backend", name, "--json")
        assert done.returncode == 0, done.stderr
        tops[name] = [[round(top["probability"], 4) for top in result["top"]]
                      for result in json.loads(done.stdout)]
    first = next(iter(tops.values()))
    assert all(np.allclose(top, first, atol=1e-3) for top in tops.values()), tops


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_deterministic_rerun_repeats_the_history(backend: str, trained: dict[str, Path],
                                                   cache: Path) -> None:
    run = cache.parent / f"rerun-{backend}"
    done = dltrain(cache, "fit", QUICKSTART, "--backend", backend, "--run-dir", run, *SMALL,
                   "--epochs", "2", *SEEDED)
    assert done.returncode == 0, done.stderr

    def losses(path: Path) -> list[float]:
        return [row["loss"] for row in read_history(path / "history.csv")]

    assert losses(run) == losses(trained[backend])


@pytest.mark.parametrize("backend", BACKENDS)
def test_sigterm_then_resume_keeps_the_backend(backend: str, cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    process = subprocess.Popen(command("fit", QUICKSTART, "--backend", backend, "--run-dir", run,
                                       *SMALL, "--epochs", "12"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=environment(cache), cwd=tmp_path)
    try:
        # Two rows: the first epoch's checkpoint is kept.
        wait_for_history(process, run / "history.csv", 2, TIMEOUT)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=TIMEOUT)
    finally:
        process.kill()
    assert process.returncode == 143, out + err
    # The resumed process is not told the backend: it comes from the run's config.yaml.
    done = dltrain(cache, "fit", "--resume", run, on=backend)
    assert done.returncode == 0, done.stdout + done.stderr
    assert [row["epoch"] for row in read_history(run / "history.csv")] == list(range(1, 13))
    assert json.loads((run / "environment.json").read_text())["backend"] == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_smoke_runs_on_the_backend(backend: str, cache: Path) -> None:
    done = dltrain(cache, "smoke", QUICKSTART, "--backend", backend)
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
    assert 'pip install "dltrain[torch]"' in " ".join(done.stderr.split())
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_device_gpu_without_a_gpu_exits_2(backend: str, cache: Path, tmp_path: Path) -> None:
    done = dltrain(cache, "fit", QUICKSTART, "--backend", backend, "--device", "gpu",
                   "--run-dir", tmp_path / "r")
    if done.returncode == 0:
        pytest.skip("this machine has a GPU")
    assert done.returncode == 2
    name = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}[backend]
    assert f"--device gpu: {name} sees no GPU here. Use --device cpu or auto." \
        in " ".join(done.stderr.split())
    assert not (tmp_path / "r").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_precision_is_applied_and_recorded(backend: str, cache: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = dltrain(cache, "fit", QUICKSTART, "--backend", backend, "--run-dir", run, "--epochs",
                   "1", "--set", "dataset.train_limit=300", "--set", "dataset.test_limit=100",
                   "--set", "training.mixed_precision=bf16")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((run / "environment.json").read_text())["mixed_precision"] == "mixed_bfloat16"
    assert json.loads((run / "manifest.json").read_text())["versions"]["mixed_precision"] \
        == "mixed_bfloat16"
    assert 0 <= accuracy(run / "metrics.json") <= 1
    check = subprocess.run(
        [PYTHONS[backend], "-c", "import sys, keras; m = keras.saving.load_model(sys.argv[1]); "
         "print(m.layers[0].dtype_policy.name)", str(run / "model.keras")],
        capture_output=True, text=True, timeout=TIMEOUT,
        env={**environment(cache), "KERAS_BACKEND": backend})
    assert check.stdout.split()[-1] == "mixed_bfloat16", check.stderr


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("good_epochs", [0, 1])
def test_a_diverging_loss_fails_the_run_and_keeps_only_good_epochs(
        cache: Path, tmp_path: Path, backend: str, good_epochs: int) -> None:
    # On JAX the NaN check runs in Keras's worker thread and raises (StopOnNonFinite); setting
    # stop_training from there instead crashed on donated buffers.
    run = tmp_path / "run"
    rate = ("optimizer.learning_rate=1e12" if good_epochs == 0 else
            # 540 training samples at batch 64: 9 steps an epoch, the 10th diverges.
            "optimizer.schedule={name: PiecewiseConstantDecay, boundaries: [9], "
            "values: [0.001, 1.0e+12]}")
    done = dltrain(cache, "fit", QUICKSTART, "--backend", backend, "--run-dir", run, *SMALL,
                   "--epochs", "3", "--set", rate, "--set", "training.tensorboard=false")
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
        tmp_path: Path) -> None:
    """Each compilation costs seconds on a GPU from cold: the test split's whole batches reuse
    the step compiled for the validation's, rather than compiling the model's own anew."""
    run = tmp_path / "run"
    env = {**environment(tmp_path / "no-cache"), "DLTRAIN_JAX_CACHE": "0", "JAX_LOG_COMPILES": "1"}
    # 1,400 training samples: 140 validate, in batches of 64 and 12; the test's are 64 and 8.
    done = subprocess.run(command("fit", QUICKSTART, "--backend", "jax", "--run-dir", run,
                                  "--set", "dataset.train_limit=1400", "--set",
                                  "dataset.test_limit=200", "--epochs", "1",
                                  "--set", "augmentation.horizontal_flip=true"),
                          capture_output=True, text=True, timeout=TIMEOUT, env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    metrics = json.loads((run / "metrics.json").read_text())
    shapes = batch_shapes(metrics["validation_samples"], 64) | batch_shapes(
        metrics["test_samples"], 64)
    assert len(shapes) == 3  # the validation's whole batch is the test's
    assert done.stderr.count("Finished XLA compilation of jit(test_step)") == len(shapes)


@pytest.mark.skipif("jax" not in PYTHONS, reason="needs JAX")
def test_a_jax_fit_says_what_it_compiled_and_a_rerun_loads_it_from_the_cache(
        tmp_path: Path) -> None:
    cache = tmp_path / "jax-cache"
    runs = []
    for name in ("cold", "warm"):
        run = tmp_path / name
        done = dltrain(cache, "fit", QUICKSTART, "--backend", "jax", "--run-dir", run, *SMALL,
                       "--epochs", "1")
        assert done.returncode == 0, done.stdout + done.stderr
        runs.append((json.loads((run / "metrics.json").read_text())["compilation"],
                     " ".join((done.stdout + done.stderr).split())))
    (cold, cold_text), (warm, warm_text) = runs
    assert cold["programs"] > 0 and cold["from_cache"] == 0 and cold["seconds"] > 0
    assert f"compilation: {cold['programs']} programs" in cold_text
    assert warm["programs"] == cold["programs"] and warm["from_cache"] == warm["programs"]
    said = f"{warm['from_cache']} loaded from the compilation cache ({cache})"
    assert "".join(said.split()) in "".join(warm_text.split())  # a long path may wrap mid-word
    assert "went to compiling the model" not in warm_text  # the estimate is for other backends
