"""training.mixed_precision: the policy each setting gives, auto resolved from the CPU's flags,
the backend and the device; and the model build_model makes under it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from dltrain.backend import keras_module, precision
from dltrain.backend.precision import cpu_flags, precision_policy
from dltrain.config.load import validate
from dltrain.errors import RunError
from dltrain.model.build import build_model

# The head of a real /proc/cpuinfo entry (an AMD EPYC with AVX-512 BF16), flags cut short.
CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC
flags\t\t: fpu sse2 avx2 fma avx512f avx512_vnni avx512_bf16 avx512_vbmi2
bugs\t\t: sysret_ss_attrs
"""
NATIVE = frozenset({"avx2", "avx512f", "avx512_bf16"})
EMULATED = frozenset({"avx2", "fma", "avx512f"})


def test_cpu_flags_are_read_from_the_flags_line(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text(CPUINFO)
    flags = cpu_flags(tmp_path / "cpuinfo")
    assert "avx512_bf16" in flags and "avx2" in flags
    assert "sysret_ss_attrs" not in flags and "AuthenticAMD" not in flags


def test_no_cpuinfo_means_no_flags(tmp_path: Path) -> None:
    assert cpu_flags(tmp_path / "absent") == frozenset()
    (tmp_path / "cpuinfo").write_text("processor\t: 0\n")
    assert cpu_flags(tmp_path / "cpuinfo") == frozenset()


@pytest.mark.parametrize(("setting", "policy"), [
    ("none", "float32"), ("bf16", "mixed_bfloat16"), ("fp16", "mixed_float16")])
def test_an_explicit_setting_is_its_policy_everywhere(setting: str, policy: str) -> None:
    for backend in ("tensorflow", "jax", "torch"):
        for on_gpu in (False, True):
            assert precision_policy(setting, backend, on_gpu, EMULATED) == policy


def test_auto_is_bf16_only_for_tensorflow_on_a_cpu_that_computes_it_natively() -> None:
    assert precision_policy("auto", "tensorflow", False, NATIVE) == "mixed_bfloat16"
    assert precision_policy("auto", "tensorflow", False, frozenset({"amx_bf16"})) \
        == "mixed_bfloat16"
    assert precision_policy("auto", "tensorflow", False, EMULATED) == "float32"
    assert precision_policy("auto", "tensorflow", True, NATIVE) == "float32"
    assert precision_policy("auto", "jax", False, NATIVE) == "float32"
    assert precision_policy("auto", "torch", False, NATIVE) == "float32"


def small(mixed_precision: str) -> object:
    return validate({
        "name": "tiny", "dataset": {"name": "fashion_mnist_mini"},
        "model": {"input_shape": [28, 28, 1], "layers": [
            {"Conv2D": {"filters": 4, "kernel_size": 3}}, {"Flatten": {}},
            {"Dense": {"units": 10, "activation": "softmax"}}]},
        "loss": "sparse_categorical_crossentropy",
        "training": {"mixed_precision": mixed_precision}}, "test.yaml")


@pytest.fixture
def policy_restored() -> Iterator[None]:
    yield
    keras_module().mixed_precision.set_global_policy("float32")


@pytest.mark.parametrize(("flags", "hidden"), [(NATIVE, "mixed_bfloat16"), (EMULATED, "float32")])
def test_auto_builds_the_policy_the_cpu_calls_for_with_a_float32_output(
        monkeypatch: pytest.MonkeyPatch, policy_restored: None, flags: frozenset[str],
        hidden: str) -> None:
    keras = keras_module()  # as dltrain imports it (pytest's collection would load it whole)
    if keras.backend.backend() != "tensorflow":
        pytest.skip("auto chooses bf16 on TensorFlow only")
    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    model = build_model(small("auto"))
    assert keras.mixed_precision.global_policy().name == hidden
    assert model.layers[0].dtype_policy.name == hidden
    assert model.layers[0].compute_dtype == ("bfloat16" if hidden != "float32" else "float32")
    assert model.layers[-1].dtype_policy.name == "float32"
    assert keras.ops.convert_to_numpy(model(np.zeros((2, 28, 28, 1), "float32"))).dtype \
        == np.float32


def test_a_resume_on_a_machine_that_resolves_auto_otherwise_keeps_the_checkpoint_s_model(
        monkeypatch: pytest.MonkeyPatch, policy_restored: None, tmp_path: Path) -> None:
    """auto is the machine's choice, not the config's: a run trained in bfloat16 resumes where
    auto means float32 (another CPU, a GPU) with its own model. An explicit setting that
    differs from the checkpoint's is still a change of model."""
    from dltrain.runs.architecture import check_architecture

    keras = keras_module()
    if keras.backend.backend() != "tensorflow":
        pytest.skip("auto chooses bf16 on TensorFlow only")
    monkeypatch.setattr(precision, "cpu_flags", lambda: NATIVE)
    checkpoint = tmp_path / "last.keras"
    build_model(small("auto")).save(checkpoint)
    monkeypatch.setattr(precision, "cpu_flags", lambda: EMULATED)
    loaded = keras.saving.load_model(checkpoint)
    assert loaded.layers[0].dtype_policy.name == "mixed_bfloat16"
    check_architecture(tmp_path / "config.yaml", small("auto"), loaded, checkpoint)
    with pytest.raises(RunError, match=r"config.yaml: its model differs .* at layer 1 "
                                        r"\(Conv2D\): dtype is 'float32' in config.yaml, "
                                        r"'mixed_bfloat16' in last.keras"):
        check_architecture(tmp_path / "config.yaml", small("none"), loaded, checkpoint)
