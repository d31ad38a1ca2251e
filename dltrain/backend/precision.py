"""training.mixed_precision as the Keras dtype policy that runs, auto resolved for this machine.

auto means bfloat16 only where it was measured faster: TensorFlow (oneDNN) on a CPU that
computes bfloat16 natively (the avx512_bf16 or amx_bf16 flag). There fashion_mnist_best's
steady epoch took 27.6 s against 37.8 s in float32 (bench/precision.py). Elsewhere a CPU
emulates bfloat16 and is slower, so auto is float32. On a GPU, auto is also float32: bf16
there is the user's choice, made knowing the card. The policy that ran is recorded in
environment.json (backend.runtime.versions)."""

from __future__ import annotations

from pathlib import Path

from dltrain.backend.names import computes_bf16_on_cpu

POLICIES = {"none": "float32", "bf16": "mixed_bfloat16", "fp16": "mixed_float16"}
NATIVE_BF16 = frozenset({"avx512_bf16", "amx_bf16"})  # /proc/cpuinfo's names
CPUINFO = Path("/proc/cpuinfo")


def cpu_flags(cpuinfo: Path = CPUINFO) -> frozenset[str]:
    """The CPU's feature flags as Linux lists them; none where that file is not to be read."""
    try:
        text = cpuinfo.read_text(encoding="ascii", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            return frozenset(value.split())
    return frozenset()


def precision_policy(setting: str, backend: str, on_gpu: bool,
                     flags: frozenset[str] | None = None) -> str:
    """The Keras dtype policy for training.mixed_precision `setting` on `backend`."""
    if setting != "auto":
        return POLICIES[setting]
    if on_gpu or not computes_bf16_on_cpu(backend):
        return POLICIES["none"]
    native = NATIVE_BF16 & (cpu_flags() if flags is None else flags)
    return POLICIES["bf16"] if native else POLICIES["none"]
