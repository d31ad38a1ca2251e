"""The JAX backend: what it needs around Keras's import, its devices, its versions and its op
errors; its persistent compilation cache and its own account of its compilations."""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

from dltrain.backend.names import Device


def jax_cache_dir() -> Path | None:
    """JAX's persistent compilation cache: on by default in the user's cache folder, so a second
    run of the same net skips XLA's compilation. DLTRAIN_JAX_CACHE=0 turns it off; a path moves it.
    """
    chosen = os.environ.get("DLTRAIN_JAX_CACHE", "")
    if chosen.lower() in ("0", "off", "false", "no"):
        return None
    if chosen and chosen != "1":
        return Path(chosen).expanduser()
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dltrain" / "jax"


def _jax_compilation_cache() -> None:
    folder = jax_cache_dir()
    if folder is None:
        return
    import jax

    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return  # a read-only home: run without the cache rather than fail
    jax.config.update("jax_compilation_cache_dir", str(folder))
    if "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS" not in os.environ:
        # JAX keeps only compilations over 1 s by default: on a CPU none of a small net's are,
        # so nothing was cached (quickstart: 24 entries, 352 KB with 0; first epoch 2.3 s
        # instead of 3.7 s in the second run).
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)


@dataclasses.dataclass
class Compilations:
    """JAX's own account of its compilations (jax.monitoring): the programs XLA compiled or
    loaded from the persistent cache, how many it loaded, and the seconds spent tracing,
    lowering and compiling or loading them."""

    programs: int = 0
    from_cache: int = 0
    seconds: float = 0.0

    def since(self, earlier: Compilations) -> Compilations:
        return Compilations(self.programs - earlier.programs,
                            self.from_cache - earlier.from_cache,
                            round(self.seconds - earlier.seconds, 3))


_COMPILED = Compilations()  # the process's, since Keras was imported on JAX
_COMPILE_STEPS = ("/jax/core/compile/jaxpr_trace_duration",
                  "/jax/core/compile/jaxpr_to_mlir_module_duration",
                  "/jax/core/compile/backend_compile_duration")  # the last: once per program


def _listen_to_jax_compilations() -> None:
    from jax import monitoring

    def timed(event: str, duration_secs: float, **kwargs: str | int) -> None:
        if event in _COMPILE_STEPS:
            _COMPILED.seconds += duration_secs
            _COMPILED.programs += event == _COMPILE_STEPS[-1]

    def counted(event: str, **kwargs: str | int) -> None:
        _COMPILED.from_cache += event == "/jax/compilation_cache/cache_hits"

    monitoring.register_event_duration_secs_listener(timed)
    monitoring.register_event_listener(counted)


def compilations_so_far() -> Compilations:
    """The process's compilations since Keras was imported on JAX (a copy)."""
    return dataclasses.replace(_COMPILED)


def before_import(device: Device) -> None:
    """`--device cpu` hides the GPUs from JAX here, since it reads them at import."""
    if device == "cpu":
        os.environ["JAX_PLATFORMS"] = "cpu"


def deterministic_before_import() -> None:
    """XLA reads its flags once, when JAX starts: GPU reductions in a fixed order."""
    if "jax" in sys.modules:
        return
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_gpu_deterministic_ops" not in flags:
        os.environ["XLA_FLAGS"] = f"{flags} --xla_gpu_deterministic_ops=true".strip()


def after_import() -> None:
    _jax_compilation_cache()
    _listen_to_jax_compilations()


def gpu_names() -> list[str]:
    """The GPUs JAX can use, by model name (one entry per GPU)."""
    import jax

    try:
        return [str(d.device_kind) for d in jax.devices("gpu")]
    except RuntimeError:  # no GPU platform (or JAX_PLATFORMS=cpu)
        return []


def hide_gpus(gpus: list[str]) -> list[str]:
    """Nothing to hide now: before_import did, where JAX reads it."""
    return gpus


def set_deterministic() -> None:
    """Nothing more: deterministic_before_import set XLA's flag."""


def determinism_notes() -> list[str]:
    return ["training.deterministic on jax: seeds fixed and XLA's deterministic GPU ops on "
            "(XLA_FLAGS=--xla_gpu_deterministic_ops=true); on a CPU, JAX's ops are "
            "deterministic already."]


def versions() -> dict[str, Any]:
    import jax
    import jaxlib

    cache = jax_cache_dir()
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "jax_compilation_cache": None if cache is None else str(cache)}


def op_errors() -> tuple[type[BaseException], ...]:
    return (ValueError, TypeError)
