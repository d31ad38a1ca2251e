"""The PyTorch backend: what it needs around Keras's import, its devices, its versions and its
op errors."""

from __future__ import annotations

import os
from typing import Any

from dltrain.backend import allocator
from dltrain.backend.names import Device

KEPT_FREED_MEMORY: list[bool] = []  # whether a torch run set the allocator (allocator.py)


def before_import(device: Device) -> None:
    """`--device cpu` hides the GPUs from torch here, since it reads them at import."""
    if device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""


def deterministic_before_import() -> None:
    """Nothing: deterministic algorithms are switched on after import (set_deterministic)."""


def after_import() -> None:
    KEPT_FREED_MEMORY.append(allocator.keep_freed_memory())


def gpu_names() -> list[str]:
    """The GPUs torch can use, by model name (one entry per GPU)."""
    import torch

    if not torch.cuda.is_available():
        return []
    return [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]


def hide_gpus(gpus: list[str]) -> list[str]:
    """Nothing to hide now: before_import did, where torch reads it."""
    return gpus


def set_deterministic() -> None:
    import torch

    torch.use_deterministic_algorithms(True, warn_only=True)


def determinism_notes() -> list[str]:
    return ["training.deterministic on torch: seeds fixed and "
            "torch.use_deterministic_algorithms on (ops without a deterministic kernel warn)."]


def versions() -> dict[str, Any]:
    import torch

    return {"torch": torch.__version__,
            "keep_freed_memory": any(KEPT_FREED_MEMORY)}  # the allocator's settings (speed)


def op_errors() -> tuple[type[BaseException], ...]:
    return (ValueError, TypeError)
