"""Choosing a Keras backend: the config key, the --backend shortcut, and the guards around it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from conftest import CONFIGS, run_cli, write_yaml
from dltrain import backend
from dltrain.backend import runtime
from dltrain.config.load import load_config
from dltrain.errors import ConfigError, RunError

QUICKSTART = CONFIGS / "quickstart.yaml"


def test_backend_defaults_to_keras_backend_then_tensorflow(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    assert load_config(QUICKSTART).config.backend == "tensorflow"
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    assert load_config(QUICKSTART).config.backend == "jax"
    assert load_config(QUICKSTART, ["backend=torch"]).config.backend == "torch"


def test_an_unknown_backend_is_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    with pytest.raises(ConfigError, match="backend"):
        load_config(QUICKSTART, ["backend=numpy"])


def test_mixed_precision_is_a_training_switch() -> None:
    assert load_config(QUICKSTART).config.training.mixed_precision == "none"
    assert load_config(QUICKSTART, ["training.mixed_precision=bf16"]).config.training \
        .mixed_precision == "bf16"
    assert load_config(QUICKSTART, ["training.mixed_precision=auto"]).config.training \
        .mixed_precision == "auto"
    with pytest.raises(ConfigError, match="mixed_precision"):
        load_config(QUICKSTART, ["training.mixed_precision=fp8"])


def test_a_backend_that_is_not_installed_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "installed", lambda name: name != "torch")
    with pytest.raises(RunError) as caught:
        backend.use_backend("torch", "auto")
    assert str(caught.value) == (
        "backend torch: the torch package is not installed here. Install it with: "
        'pip install "dltrain-keras[torch]" (from a clone: pip install -e ".[torch]") '
        "(or choose --backend tensorflow or jax).")


def test_fit_with_a_missing_backend_exits_2_before_anything_is_loaded(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runtime, "installed", lambda name: name != "torch")
    code, out, err = run_cli(capsys, "fit", QUICKSTART, "--backend", "torch")
    assert code == 2, out + err
    assert 'pip install "dltrain-keras[torch]"' in " ".join(err.split())
    assert list(tmp_path.iterdir()) == []


def test_keras_already_loaded_on_another_backend_is_a_clear_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    backend.keras_module()  # this process runs Keras on TensorFlow, as the other tests do
    monkeypatch.setattr(runtime, "installed", lambda name: True)
    with pytest.raises(RunError) as caught:
        backend.use_backend("jax", "auto")
    assert str(caught.value) == (
        "backend jax: Keras is already loaded on the tensorflow backend in this process, and a "
        "process cannot switch; run dltrain again (a new process) with --backend jax.")


def test_show_checks_the_backend_too(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime, "installed", lambda name: name != "torch")
    path = write_yaml(tmp_path / "t.yaml", QUICKSTART.read_text() + "backend: torch\n")
    code, _, err = run_cli(capsys, "show", path)
    assert code == 2
    assert 'pip install "dltrain-keras[torch]"' in " ".join(err.split())


@pytest.mark.parametrize(("command", "config"), [
    ("show", QUICKSTART), ("cv", QUICKSTART), ("tune", CONFIGS / "mnist_cnn_search.yaml")])
def test_show_cv_and_tune_take_backend_as_fit_does(
        command: str, config: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(runtime, "installed", lambda name: name != "torch")
    code, out, err = run_cli(capsys, command, config, "--backend", "torch")
    assert code == 2, out + err
    assert 'pip install "dltrain-keras[torch]"' in " ".join(err.split())
    assert list(tmp_path.iterdir()) == []


def test_show_records_the_backend_it_was_given(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    code, out, err = run_cli(capsys, "show", QUICKSTART, "--backend", "jax", "--no-summary",
                             "--json")
    assert code == 0, err
    assert json.loads(out)["config"]["backend"] == "jax"


def test_fit_says_how_long_the_first_epoch_took_against_the_steady_ones() -> None:
    from dltrain.train.timing import compile_note

    rows = [{"epoch": 1, "seconds": 13.9}, {"epoch": 2, "seconds": 0.7},
            {"epoch": 3, "seconds": 0.64}, {"epoch": 4, "seconds": 0.66}]
    assert compile_note(rows) == ["first epoch 13.9 s, later epochs 0.7 s (median): about "
                                  "13.2 s went to compiling the model."]
    assert compile_note(rows[:1]) == []


def test_jax_fits_say_what_jax_compiled_and_what_the_cache_gave(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from dltrain.backend import Compilations
    from dltrain.train.timing import compiled_note

    monkeypatch.setenv("DLTRAIN_JAX_CACHE", str(tmp_path))
    now = Compilations(programs=30, from_cache=28, seconds=4.25)
    assert now.since(Compilations(2, 0, 1.0)) == Compilations(28, 28, 3.25)
    assert compiled_note(now) == (f"compilation: 30 programs, 4.2 s, 28 loaded from the "
                                  f"compilation cache ({tmp_path}).")
    assert compiled_note(Compilations(30, 0, 15.0)) == "compilation: 30 programs, 15.0 s."
    monkeypatch.setenv("DLTRAIN_JAX_CACHE", "0")
    assert compiled_note(Compilations(30, 0, 15.0)) == (
        "compilation: 30 programs, 15.0 s (none from a compilation cache: it is off).")


def test_resume_refuses_another_backend(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "fit", "--resume", tmp_path, "--backend", "jax")
    assert code == 2
    assert " ".join(err.split()) == ("error: --resume continues the run on the backend it was "
                                     "trained on (its config.yaml says which); drop --backend.")


def test_jax_compilation_cache_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("DLTRAIN_JAX_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert backend.jax_cache_dir() == tmp_path / "dltrain" / "jax"
    monkeypatch.setenv("DLTRAIN_JAX_CACHE", "0")
    assert backend.jax_cache_dir() is None
    monkeypatch.setenv("DLTRAIN_JAX_CACHE", str(tmp_path / "elsewhere"))
    assert backend.jax_cache_dir() == tmp_path / "elsewhere"


TWO_IMPORTS = """
import contextlib, os, threading
import dltrain.backend.runtime as backend  # where keras_module finds it
hidden = threading.Event()
quiet = backend.quiet_native_logs

@contextlib.contextmanager
def noting():
    with quiet():  # file descriptor 2 is hidden from here
        hidden.set()
        yield

backend.quiet_native_logs = noting
first = threading.Thread(target=backend.keras_module)
first.start()
assert hidden.wait(60)
second = threading.Thread(target=backend.keras_module)  # while the first one imports
second.start()
first.join()
second.join()
os.write(2, b"stderr still reaches the terminal\\n")
import gc, json  # what the import left to the garbage collector (the test below)
print(json.dumps({"frozen": gc.get_freeze_count(), "enabled": gc.isenabled(),
                  "tracked": len(gc.get_objects())}))
"""


@pytest.fixture(scope="module")
def two_imports() -> Any:
    """TWO_IMPORTS in a process of its own (one start of Keras for the tests that read it)."""
    import os
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", TWO_IMPORTS], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "KERAS_BACKEND": "tensorflow"})


@pytest.mark.slow  # a process that imports Keras: seconds
def test_two_threads_importing_keras_at_once_leave_stderr_open(two_imports: Any) -> None:
    """fit reads the data in a thread while the main one imports Keras; a reader may import it
    too. Two imports at once each hid file descriptor 2 and the second restored the hidden one,
    so every later error message was lost."""
    assert two_imports.returncode == 0, two_imports.stderr[-2000:]
    assert "stderr still reaches the terminal" in two_imports.stderr


@pytest.mark.slow  # a process that imports Keras: seconds
def test_what_keras_s_import_made_is_left_out_of_later_collections(two_imports: Any) -> None:
    """Each full collection walked the 300,000 objects Keras and TensorFlow's import made,
    for nothing: they live as long as the process. Frozen after the import, they are not
    walked again, and the collector is on again."""
    import json

    assert two_imports.returncode == 0, two_imports.stderr[-2000:]
    left = json.loads(two_imports.stdout.splitlines()[-1])
    assert left["enabled"] is True
    assert left["frozen"] > 100_000 and left["tracked"] < left["frozen"] / 10, left


def test_the_collector_is_paused_while_importing_and_left_as_it_was(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    frozen: list[bool] = []
    monkeypatch.setattr(gc, "freeze", lambda: frozen.append(gc.isenabled()))
    was = gc.isenabled()
    try:
        gc.enable()
        with pytest.raises(ImportError), runtime.collection_paused():
            assert not gc.isenabled()
            raise ImportError("no such backend")  # a failed import turns it on again too
        assert gc.isenabled() and frozen == [True]
        gc.disable()  # the user's choice stays theirs
        with runtime.collection_paused():
            assert not gc.isenabled()
        assert not gc.isenabled() and frozen == [True, False]
    finally:
        (gc.enable if was else gc.disable)()


# --- running out of memory: each library's own exception, as it raises it ---------------------


def raised(call: Any) -> BaseException:
    try:
        call()
    except BaseException as exc:  # noqa: BLE001 - the exception is what is tested
        return exc
    raise AssertionError("no exception")


def test_numpys_memory_error_is_out_of_memory() -> None:
    import numpy as np

    detail = backend.out_of_memory(raised(lambda: np.empty(2**50, dtype=np.uint8)))
    assert detail is not None and detail.startswith("Unable to allocate 1.00 PiB")


def test_tensorflows_resource_exhausted_is_out_of_memory() -> None:
    tf = pytest.importorskip("tensorflow")
    detail = backend.out_of_memory(raised(lambda: tf.zeros((2**40,), dtype=tf.float32)))
    assert detail is not None and detail.startswith(
        "OOM when allocating tensor with shape[1099511627776] and type float on ")
    assert "{{" not in detail and "[Op:" not in detail


def test_jaxs_resource_exhausted_is_out_of_memory() -> None:
    jnp = pytest.importorskip("jax.numpy")
    detail = backend.out_of_memory(raised(lambda: jnp.zeros((2**40,), dtype=jnp.float32)))
    assert detail == "RESOURCE_EXHAUSTED: Out of memory allocating 4398046511104 bytes."


def test_torchs_allocation_failures_are_out_of_memory() -> None:
    # torch is in the TensorFlow-free venv, not here: its exceptions as it words them.
    cuda = type("OutOfMemoryError", (RuntimeError,), {})(
        "CUDA out of memory. Tried to allocate 20.00 GiB. GPU 0 has a total capacity of 79.1 GiB")
    assert backend.out_of_memory(cuda) == "CUDA out of memory. Tried to allocate 20.00 GiB."
    cpu = RuntimeError("[enforce fail at alloc_cpu.cpp:117] data. DefaultCPUAllocator: can't "
                       "allocate memory: you tried to allocate 4398046511104 bytes.")
    assert backend.out_of_memory(cpu) is not None


def test_other_errors_are_not_out_of_memory() -> None:
    assert backend.out_of_memory(ValueError("Shapes (None, 10) and (None, 2) are incompatible")) \
        is None
    assert backend.out_of_memory(RuntimeError("CUDA error: device-side assert triggered")) is None


def test_tensorflows_retracing_warnings_are_dropped_and_its_others_kept() -> None:
    # smoke, cv and tune printed a paragraph of them for each model after the fifth.
    import logging

    from dltrain.backend import keras_module, tensorflow_module

    keras_module()
    logger = tensorflow_module().get_logger()
    seen: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logger.addHandler(handler)
    try:
        logger.warning("5 out of the last 9 calls to <function f> triggered tf.function "
                       "retracing. Tracing is expensive ...")
        logger.warning("something else")
    finally:
        logger.removeHandler(handler)
    assert seen == ["something else"]
