"""The backends dltrain runs on, by name, and the devices it can be told to use."""

from __future__ import annotations

from typing import Literal

Device = Literal["auto", "cpu", "gpu"]
BACKENDS = ("tensorflow", "jax", "torch")
NAMES = {"tensorflow": "TensorFlow", "jax": "JAX", "torch": "PyTorch"}
# TensorFlow is a dependency of dltrain itself; the others are extras (GPU wheels: see README).
INSTALL = {"tensorflow": 'pip install "tensorflow>=2.21,<2.22"', "jax": 'pip install "dltrain[jax]"',
           "torch": 'pip install "dltrain[torch]"'}
