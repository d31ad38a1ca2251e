"""Data-parallel training on the engines Keras already ships, never on dltrain's own.

JAX: `keras.distribution.DataParallel` over a `DeviceMesh`, set for the process before the model
is built (Keras lays each variable out on the mesh when it is created). TensorFlow:
`tf.distribute.MirroredStrategy`, whose scope must hold the model's build and compile (Keras's
own integration_tests/tf_distribute_training_test.py). torch: single device only (the config
refuses data_parallel there). Several processes: `jax.distributed`, one process per machine.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from dltrain.backend import active_backend, keras_module, tensorflow_module
from dltrain.config.schema import DistributionConfig
from dltrain.errors import ConfigError

BATCH_AXIS = "batch"


@dataclass(frozen=True)
class Placement:
    """Where a model trains: its strategy, the devices of its mesh, and the processes."""

    strategy: str
    devices: tuple[str, ...] = ()
    processes: int = 1
    process_id: int = 0
    engine: Any = field(default=None, compare=False, repr=False)  # TF: the MirroredStrategy

    @contextlib.contextmanager
    def scope(self) -> Iterator[None]:
        """Where the model is built, compiled or loaded: TensorFlow's strategy scope."""
        if self.engine is None:
            yield
            return
        with self.engine.scope():
            yield

    @property
    def writes(self) -> bool:
        """Only process 0 writes the run directory."""
        return self.process_id == 0

    def describe(self) -> str:
        if self.strategy == "none":
            return "distribution: none (one device, the backend's default)"
        processes = f", {self.processes} processes" if self.processes > 1 else ", 1 process"
        return (f"distribution: data_parallel, device mesh [{BATCH_AXIS}: {len(self.devices)}] "
                f"over {', '.join(self.devices)}{processes}")

    def to_json(self) -> dict[str, Any]:
        return {"strategy": self.strategy, "devices": list(self.devices),
                "processes": self.processes, "process_id": self.process_id}


_placed: list[Placement] = []  # the last placement, for environment.json


def current() -> Placement:
    """The placement of this process's last run (none before any)."""
    return _placed[-1] if _placed else Placement("none")


def place(chosen: DistributionConfig) -> Placement:
    """Set the distribution up for the active backend; call before the model is built.

    Raises:
        ConfigError: more devices asked for than this machine has.
    """
    name = active_backend()
    keras = keras_module()
    if name == "jax" and keras.distribution.distribution() is not None:
        keras.distribution.set_distribution(None)  # a run before, in this process (search)
    if chosen.strategy == "none":
        placement = Placement("none", processes=_processes()[0], process_id=_processes()[1])
    elif name == "jax":
        placement = _jax_data_parallel(keras, chosen.devices)
    else:
        names = _count(chosen.devices, local_devices(), "TensorFlow")
        placement = Placement("data_parallel", tuple(names), engine=_mirrored(tuple(names)))
    _placed[:] = [placement]
    return placement


def local_devices() -> list[str]:
    """This machine's devices the backend trains on: its GPUs, else its CPU devices."""
    if active_backend() == "jax":
        import jax

        return [f"{d.platform}:{d.id}" for d in jax.local_devices()]
    tf = tensorflow_module()
    found = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
    return [device.name for device in found]


def _count(devices: str | int, available: list[str], engine: str) -> list[str]:
    if devices == "all":
        return available
    if int(devices) > len(available):
        raise ConfigError(f"distribution.devices: {devices} devices asked for, but {engine} sees "
                          f"{len(available)} here ({', '.join(available)}). Use devices: all, or "
                          f"a number up to {len(available)}.")
    return available[:int(devices)]


def _processes() -> tuple[int, int]:
    if active_backend() != "jax":
        return 1, 0
    import jax

    return jax.process_count(), jax.process_index()


def _jax_data_parallel(keras: Any, devices: str | int) -> Placement:
    """The first N local devices of every process, in process order, as one batch axis."""
    import jax

    count = len(_count(devices, local_devices(), "JAX"))
    mesh = [device for index in range(jax.process_count())
            for device in [d for d in jax.devices() if d.process_index == index][:count]]
    names = tuple(f"{d.platform}:{d.id}" for d in mesh)
    distribution = keras.distribution.DataParallel(
        device_mesh=keras.distribution.DeviceMesh((len(mesh),), [BATCH_AXIS], list(names)),
        # Each process reads its own slice of every batch (dltrain.data.pipeline); Keras's
        # own sharding takes only tf.data.
        auto_shard_dataset=False)
    keras.distribution.set_distribution(distribution)
    processes, index = _processes()
    return Placement("data_parallel", names, processes, index)


@functools.cache
def _mirrored(names: tuple[str, ...]) -> Any:
    # One strategy per device list: a search builds many models on the same devices.
    return tensorflow_module().distribute.MirroredStrategy(list(names))


def check_even_batches(placement: Placement, batch_size: int, sizes: dict[str, int]) -> None:
    """On JAX every batch, the last one of each split too, must split evenly over the mesh
    (XLA shards whole rows); TensorFlow's MirroredStrategy splits uneven batches itself.

    Raises:
        ConfigError: a split whose last batch the devices cannot share.
    """
    count = len(placement.devices)
    if placement.strategy == "none" or active_backend() != "jax" or count < 2:
        return
    for split, size in sizes.items():
        last = size % batch_size
        if batch_size % count or last % count:
            rows = batch_size if batch_size % count else last
            raise ConfigError(
                f"distribution: on jax every batch is split evenly over the {count} devices, but "
                f"the {split} split ({size} samples, batches of {batch_size}) has a batch of "
                f"{rows}. Choose training.batch_size (and dataset.train_limit/test_limit) so "
                f"that every batch, the last one too, is a multiple of {count}.")
