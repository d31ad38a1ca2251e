"""The CLI end to end on each backend: fit, eval, predict, resume, determinism, smoke.

A process runs one Keras backend, so every command here runs in a real subprocess with a timeout
(a fit is a `dltrain` process of its own; the commands that only read the shared fits run
several to a process of their backend, `sessions`); the same tests run on TensorFlow, JAX and
PyTorch. A backend this interpreter lacks runs in the TensorFlow-free environment (`make
tf-free-env`: JAX and PyTorch's CPU build, as on the GPU machines) where that has it, and is
skipped with the reason where neither does.
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
from cli_batch import run_several

from conftest import CONFIGS, ROOT, copy_run, wait_for_history
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
    f'install -e ".[{name}]", or make tf-free-env')) for name in ("tensorflow", "jax", "torch")]


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
def fit_cache(cache: Path) -> Path:
    """The JAX compilation cache of the shared fits alone: empty when the first one starts (the
    cold fit), filled for the deterministic reruns (the warm ones)."""
    return cache.parent / "jax-fit-cache"


def fit_each_backend(cache: Path, prefix: str) -> dict[str, subprocess.CompletedProcess[str]]:
    """One deterministic 2-epoch quickstart run per installed backend, with augmentation."""
    fits = {}
    for backend in PYTHONS:
        run = cache.parent / f"{prefix}-{backend}"
        fits[backend] = done = dltrain(cache, "fit", QUICKSTART, "--backend", backend,
                                       "--run-dir", run, *SMALL, "--epochs", "2", *SEEDED)
        assert done.returncode == 0, done.stdout + done.stderr
    return fits


@pytest.fixture(scope="module")
def fits(fit_cache: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    return fit_each_backend(fit_cache, "run")


@pytest.fixture(scope="module")
def reruns(fit_cache: Path, fits: dict) -> dict[str, subprocess.CompletedProcess[str]]:
    """The same fits again, after them (on JAX: from the compilation cache they filled)."""
    return fit_each_backend(fit_cache, "rerun")


def run_of(done: subprocess.CompletedProcess[str]) -> Path:
    return Path(done.args[done.args.index("--run-dir") + 1])


@pytest.fixture(scope="module")
def trained(fits: dict[str, subprocess.CompletedProcess[str]]) -> dict[str, Path]:
    return {backend: run_of(done) for backend, done in fits.items()}


@pytest.fixture(scope="module")
def bf16(cache: Path) -> dict[str, subprocess.CompletedProcess[str]]:
    """One epoch in mixed precision per installed backend (asserted by its test)."""
    runs = {}
    for backend in PYTHONS:
        runs[backend] = dltrain(
            cache, "fit", QUICKSTART, "--backend", backend, "--run-dir",
            cache.parent / f"bf16-{backend}", "--epochs", "1", "--set", "dataset.train_limit=300",
            "--set", "dataset.test_limit=100", "--set", "training.mixed_precision=bf16")
    return runs


# Several commands in one process of a backend: each `dltrain ARGS` is main(ARGS) with its own
# stdout and stderr; then the dtype policy of a model loaded by Keras on that backend.
SESSION = """
import contextlib, io, json, sys
from dltrain.cli import main
done = {}
for name, args in json.loads(sys.argv[1]).items():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)
    done[name] = {"code": code, "stdout": out.getvalue(), "stderr": err.getvalue()}
try:  # the bf16 fit's test says why it is missing
    import keras
    model = keras.saving.load_model(sys.argv[2])
    done["policy"] = {"backend": keras.backend.backend(), "name": model.layers[0].dtype_policy.name}
except Exception as exc:
    done["policy"] = {"error": repr(exc)}
print(json.dumps(done))
"""


def pngs(folder: Path) -> list[Path]:
    from PIL import Image

    rng = np.random.default_rng(0)
    files = []
    for index, size in enumerate((28, 28, 40, 19)):  # two need resizing, up and down
        files.append(folder / f"{index}.png")
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(files[-1])
    return files


def session_commands(backend: str, trained: dict[str, Path], files: list[Path]) -> dict:
    """What a process of `backend` runs: first (the backend not yet imported) a fit on
    `--device gpu`, then eval of its own run, the runs listing, eval of the previous backend's
    model (TF -> JAX -> torch -> TF) on a copy (eval writes eval.json), predict with each
    backend's model, and smoke."""
    names = list(trained)
    commands = {"gpu": ["fit", QUICKSTART, "--backend", backend, "--device", "gpu", "--run-dir",
                        trained[backend].parent / f"gpu-{backend}"],
                "eval": ["eval", trained[backend], "--json"],
                "runs": ["runs", trained[backend].parent, "--json"]}
    if len(names) > 1:
        previous = names[names.index(backend) - 1]
        copy = copy_run(trained[previous], trained[previous].parent / f"eval-on-{backend}")
        commands["eval other"] = ["eval", copy, "--backend", backend, "--json"]
    for name, run in trained.items():
        commands[f"predict {name}"] = ["predict", run, *files, "--backend", backend, "--json"]
    commands["smoke"] = ["smoke", QUICKSTART, "--backend", backend]
    return {key: [str(arg) for arg in args] for key, args in commands.items()}


@pytest.fixture(scope="module")
def sessions(trained: dict[str, Path], bf16: dict, cache: Path) -> dict[str, dict]:
    """Per installed backend, one process that runs session_commands and loads the bf16 model."""
    files = pngs(cache.parent)
    done = {}
    for backend in PYTHONS:
        commands = session_commands(backend, trained, files)
        process = subprocess.run(
            [PYTHONS[backend], "-c", SESSION, json.dumps(commands), str(run_of(bf16[backend])
                                                                         / "model.keras")],
            capture_output=True, text=True, timeout=TIMEOUT * 2, env=environment(cache),
            cwd=cache.parent)
        assert process.returncode == 0, process.stdout + process.stderr
        done[backend] = json.loads(process.stdout.splitlines()[-1])
    return done


def accuracy(path: Path) -> float:
    return float(json.loads(path.read_text())["test"]["accuracy"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_records_its_backend_and_eval_agrees(backend: str, trained: dict[str, Path],
                                                 sessions: dict[str, dict]) -> None:
    run = trained[backend]
    env = json.loads((run / "environment.json").read_text())
    manifest = json.loads((run / "manifest.json").read_text())
    assert env["backend"] == manifest["versions"]["backend"] == backend
    assert env.get("keep_freed_memory", False) is (backend == "torch")  # allocator.py
    # steps_per_execution auto at quickstart's batch 64: 4 a call; torch runs one.
    assert env["steps_per_execution"] == (1 if backend == "torch" else 4)
    assert backend in env and "backend: " + backend in (run / "config.yaml").read_text()
    done = sessions[backend]["eval"]
    assert done["code"] == 0, done["stderr"]
    assert accuracy(run / "eval.json") == pytest.approx(accuracy(run / "metrics.json"), abs=0.001)
    listed = sessions[backend]["runs"]
    assert {row["name"]: row["backend"] for row in json.loads(listed["stdout"])}[run.name] \
        == backend


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_model_evaluates_the_same_on_the_other_backend(backend: str, trained: dict[str, Path],
                                                         sessions: dict[str, dict]) -> None:
    if len(trained) < 2:
        pytest.skip("needs two backends installed")
    names = list(trained)  # each scores the next one's model: TF -> JAX -> torch -> TF
    other = names[(names.index(backend) + 1) % len(names)]
    run = trained[backend]
    done = sessions[other]["eval other"]
    assert done["code"] == 0, done["stderr"]
    assert json.loads(done["stdout"])["test"]["accuracy"] == pytest.approx(
        accuracy(run / "metrics.json"), abs=0.001)


@pytest.mark.parametrize("backend", BACKENDS)
def test_predict_on_pngs_is_the_same_on_every_backend(backend: str, trained: dict[str, Path],
                                                      sessions: dict[str, dict]) -> None:
    tops = {}
    for name in trained:
        done = sessions[name][f"predict {backend}"]
        assert done["code"] == 0, done["stderr"]
        tops[name] = [[round(top["probability"], 4) for top in result["top"]]
                      for result in json.loads(done["stdout"])]
    first = next(iter(tops.values()))
    assert all(np.allclose(top, first, atol=1e-3) for top in tops.values()), tops


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_deterministic_rerun_repeats_the_history(backend: str, trained: dict[str, Path],
                                                   reruns: dict) -> None:
    done = reruns[backend]
    assert done.returncode == 0, done.stderr

    def losses(path: Path) -> list[float]:
        return [row["loss"] for row in read_history(path / "history.csv")]

    assert losses(run_of(done)) == losses(trained[backend])


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
def test_smoke_runs_on_the_backend(backend: str, sessions: dict[str, dict]) -> None:
    done = sessions[backend]["smoke"]
    assert done["code"] == 0, done["stdout"] + done["stderr"]
    assert "1 passed, 0 failed" in done["stdout"]


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
                                          sessions: dict[str, dict]) -> None:
    done = sessions[backend]["gpu"]  # the first command of its process
    if done["code"] == 0:
        pytest.skip("this machine has a GPU")
    assert done["code"] == 2
    name = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}[backend]
    assert f"--device gpu: {name} sees no GPU here. Use --device cpu or auto." \
        in " ".join(done["stderr"].split())
    assert not (trained[backend].parent / f"gpu-{backend}").exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_mixed_precision_is_applied_and_recorded(backend: str, bf16: dict,
                                                 sessions: dict[str, dict]) -> None:
    done = bf16[backend]
    assert done.returncode == 0, done.stdout + done.stderr
    run = run_of(done)
    assert json.loads((run / "environment.json").read_text())["mixed_precision"] == "mixed_bfloat16"
    assert json.loads((run / "manifest.json").read_text())["versions"]["mixed_precision"] \
        == "mixed_bfloat16"
    assert 0 <= accuracy(run / "metrics.json") <= 1
    # Loaded by Keras on the same backend, in a process of its own (sessions).
    assert sessions[backend]["policy"] == {"backend": backend, "name": "mixed_bfloat16"}


def diverging_fit(run: Path, backend: str, good_epochs: int) -> list[object]:
    rate = ("optimizer.learning_rate=1e12" if good_epochs == 0 else
            # 540 training samples at batch 64: 9 steps an epoch, the 10th diverges.
            "optimizer.schedule={name: PiecewiseConstantDecay, boundaries: [9], "
            "values: [0.001, 1.0e+12]}")
    return ["fit", QUICKSTART, "--backend", backend, "--run-dir", run, *SMALL, "--epochs", "3",
            "--set", rate, "--set", "training.tensorboard=false"]


@pytest.fixture(scope="module")
def diverged(cache: Path) -> dict[tuple[str, int], subprocess.CompletedProcess[str]]:
    """Per installed backend, one process (cli_batch) that fits twice into a NaN: at once, and
    after one good epoch. The second fit starts in the process the first one failed in."""
    done = {}
    for backend in PYTHONS:
        folder = cache.parent / f"diverged-{backend}"
        commands = [diverging_fit(folder / f"run-{good}", backend, good) for good in (0, 1)]
        finished = run_several(folder, commands, environment(cache), 2 * TIMEOUT,
                               python=PYTHONS[backend])
        done.update({(backend, good): result for good, result in zip((0, 1), finished,
                                                                      strict=True)})
    return done


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("good_epochs", [0, 1])
def test_a_diverging_loss_fails_the_run_and_keeps_only_good_epochs(
        diverged: dict[tuple[str, int], subprocess.CompletedProcess[str]], backend: str,
        good_epochs: int) -> None:
    # On JAX the NaN check runs in Keras's worker thread and raises (StopOnNonFinite); setting
    # stop_training from there instead crashed on donated buffers.
    done = diverged[(backend, good_epochs)]
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
        fits: dict, reruns: dict, fit_cache: Path) -> None:
    runs = [(json.loads((run_of(done) / "metrics.json").read_text())["compilation"],
             " ".join((done.stdout + done.stderr).split())) for done in (fits["jax"], reruns["jax"])]
    (cold, cold_text), (warm, warm_text) = runs
    assert cold["programs"] > 0 and cold["from_cache"] == 0 and cold["seconds"] > 0
    assert f"compilation: {cold['programs']} programs" in cold_text
    assert warm["programs"] == cold["programs"] and warm["from_cache"] == warm["programs"]
    said = f"{warm['from_cache']} loaded from the compilation cache ({fit_cache})"
    assert "".join(said.split()) in "".join(warm_text.split())  # a long path may wrap mid-word
    assert "went to compiling the model" not in warm_text  # the estimate is for other backends
