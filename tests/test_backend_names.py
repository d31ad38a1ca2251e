"""The one list of backends and what each can do (dltrain.backend.names), and the registry
that picks a backend's module by the same names."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conftest import CONFIGS, run_cli
from dltrain.backend import names, runtime
from dltrain.config.schema import Config


def test_the_backends_are_listed_once_and_everything_follows_that_list() -> None:
    assert names.BACKENDS == ("tensorflow", "jax", "torch")
    assert tuple(names.FACTS) == names.BACKENDS
    assert tuple(runtime.REGISTRY) == names.BACKENDS
    assert Config.model_json_schema()["properties"]["backend"]["enum"] == list(names.BACKENDS)
    assert names.NAMES == {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
    assert names.INSTALL["jax"].startswith('pip install "dltrain-keras[jax]"')


def test_each_backend_module_has_the_interface() -> None:
    wanted = [name for name in vars(runtime.Backend) if not name.startswith("_")]
    assert "gpu_names" in wanted and "before_import" in wanted
    for name, module in runtime.REGISTRY.items():
        assert module.__name__ == f"dltrain.backend.{name}"
        assert [n for n in wanted if not callable(getattr(module, n, None))] == [], name


@pytest.mark.parametrize(("backend", "alone", "data_parallel"), [
    ("tensorflow", True, False), ("jax", True, True), ("torch", False, False)])
def test_steps_per_call_by_backend(backend: str, alone: bool, data_parallel: bool) -> None:
    assert names.runs_steps_per_call(backend) is alone
    assert names.runs_steps_per_call(backend, data_parallel=True) is data_parallel


def test_data_parallel_input_and_compilations_by_backend() -> None:
    assert [names.supports_data_parallel(b) for b in names.BACKENDS] == [True, True, False]
    assert names.data_parallel_backends() == ("tensorflow", "jax")
    assert [names.feeds_tf_data(b) for b in names.BACKENDS] == [True, False, False]
    assert [names.dispatches_ahead(b) for b in names.BACKENDS] == [False, True, True]
    assert [names.counts_compilations(b) for b in names.BACKENDS] == [False, True, False]


def test_the_backends_each_export_format_comes_from() -> None:
    assert names.exporting_backends("saved_model") == ("tensorflow", "jax", "torch")
    assert names.exporting_backends("tflite") == ("tensorflow", "torch")
    assert names.exporting_backends("pickle") == ()


def test_a_runs_backend_from_its_environment_record() -> None:
    assert names.backend_of_environment({"backend": "jax", "tensorflow": "2.21.0"}) == "jax"
    # Written before backends were a choice: only TensorFlow's version.
    assert names.backend_of_environment({"tensorflow": "2.16.1"}) == "tensorflow"
    assert names.backend_of_environment({"python": "3.11"}) is None


def test_the_config_reads_the_names_without_a_framework() -> None:
    done = subprocess.run([sys.executable, "-c", "import sys, dltrain.config.schema; print("
                           "sorted(m for m in ('keras', 'tensorflow', 'jax', 'torch') "
                           "if m in sys.modules))"],
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "[]", done.stderr


def test_the_command_line_offers_the_same_devices_and_backends(
        capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "fit", CONFIGS / "quickstart.yaml", "--device", "tpu")
    assert code == 2 and "'tpu' is not one of 'auto', 'cpu', 'gpu'" in " ".join(
        err.replace("│", " ").split())
    code, _, err = run_cli(capsys, "fit", CONFIGS / "quickstart.yaml", "--backend", "mxnet")
    assert code == 2 and "'mxnet' is not one of 'tensorflow', 'jax', 'torch'" in " ".join(
        err.replace("│", " ").split())
