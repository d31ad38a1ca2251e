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
from typing import Any, NoReturn

from dltrain.backend import active_backend, keras_module, tensorflow_module
from dltrain.config.training_section import DistributionConfig
from dltrain.errors import ConfigError, RunError

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
        if len(self.devices) == 1:
            return (f"distribution: data_parallel over 1 device ({self.devices[0]}): trained as "
                    "with none, no engine needed")
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
        names = tuple(_count(chosen.devices, local_devices(), "TensorFlow"))
        # One device has nothing to share, and MirroredStrategy over it still cost 26% of an
        # epoch (quickstart, CPU: bench/distribution.py); JAX's DataParallel 5%.
        engine = _mirrored(names) if len(names) > 1 else None
        placement = Placement("data_parallel", names, engine=engine)
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
    if len(mesh) == 1:  # nothing to share: no engine, no cost (see place)
        return Placement("data_parallel", names)
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


def steps_may_run_ahead() -> bool:
    """Whether the training loop may dispatch steps before the devices finished the last ones
    (Keras's batch-end callbacks on its worker threads); False over several JAX CPU devices.

    There XLA launches each device's half of a step on its own pool thread, and a device takes
    at most 32 computations in flight (its launch semaphore). A loop 32 steps ahead let later
    steps take one device's slots before its half of an earlier step: the other half waited in
    that step's all-reduce, and XLA aborted the process after 40 s ("Expected 2 threads to join
    the rendezvous"): quickstart at its shipped size, 85 steps an epoch, every time; 22 steps
    an epoch never got that far ahead. Waiting for each step's logs keeps one step in flight;
    the CPU computes the step either way.
    """
    placed = current()
    cpus = [name for name in placed.devices if name.startswith("cpu:")]
    return not (active_backend() == "jax" and len(placed.devices) > 1 and cpus)


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


@dataclass(frozen=True)
class Cluster:
    """The processes that train one model together (jax.distributed), one per machine."""

    coordinator: str
    processes: int
    process_id: int


def cluster(coordinator: str | None, processes: int | None,
            process_id: int | None) -> Cluster | None:
    """The cluster the options (or KERAS_DISTRIBUTION_*) describe; None for one process.

    Raises:
        ConfigError: an option missing, an address that is no HOST:PORT, an id out of range.
    """
    given = {"--coordinator": coordinator, "--num-processes": processes,
             "--process-id": process_id}
    if all(value is None for value in given.values()):
        return None
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise ConfigError(f"several processes need --coordinator, --num-processes and "
                          f"--process-id together (or KERAS_DISTRIBUTION_JOB_ADDRESSES, _NUM_"
                          f"PROCESSES and _PROCESS_ID). Missing: {', '.join(missing)}.")
    address = str(coordinator).split(",")[0].strip()
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise ConfigError(f"--coordinator must be HOST:PORT of process 0, e.g. 10.0.0.1:1234. "
                          f"Received: {coordinator!r}.")
    if not 0 <= int(process_id or 0) < int(processes or 0):
        raise ConfigError(f"--process-id must be 0 to {int(processes or 0) - 1} for "
                          f"--num-processes {processes}. Received: {process_id}.")
    return Cluster(address, int(processes or 0), int(process_id or 0))


def check_cluster(joined: Cluster, backend: str, strategy: str) -> None:
    """Several processes train one model on JAX only, and only data_parallel shares it."""
    if backend != "jax":
        raise ConfigError(f"several processes (--num-processes) run on the jax backend only "
                          f"(jax.distributed); TensorFlow's MultiWorkerMirroredStrategy is broken "
                          f"under Keras 3 (keras#20585). Received: backend {backend}. Use "
                          f"--backend jax.")
    if strategy != "data_parallel":
        raise ConfigError("several processes (--num-processes) share one model only with "
                          "distribution.strategy: data_parallel. Received: "
                          f"{strategy}. Add --set distribution.strategy=data_parallel.")


def join(joined: Cluster, timeout: int) -> None:
    """Join the cluster before JAX starts: process 0 serves as its coordinator.

    JAX ends a process that cannot reach the coordinator with an abort (SIGABRT and a stack
    trace), so the other processes first check that it answers, and stop with a message.

    Raises:
        RunError: the coordinator did not answer within `timeout` seconds.
    """
    if joined.process_id != 0:
        _wait_for(joined.coordinator, timeout)
    import threading

    import jax

    # CPU devices of several processes exchange gradients over gloo; GPUs use NCCL anyway.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    # JAX aborts when the others do not come in time: stop first, with a message and exit 2.
    watchdog = threading.Timer(timeout, _exit_with, [
        f"process {joined.process_id} of {joined.processes}: the {joined.processes} processes "
        f"did not all join at {joined.coordinator} within {timeout} s. Start every process "
        f"(--process-id 0 to {joined.processes - 1}) with the same --coordinator and "
        "--num-processes, or raise --join-timeout."])
    watchdog.daemon = True
    watchdog.start()
    jax.distributed.initialize(joined.coordinator, joined.processes, joined.process_id,
                               initialization_timeout=timeout + 30,
                               heartbeat_timeout_seconds=timeout)
    watchdog.cancel()
    if joined.process_id != 0:
        _exit_2_when_jax_aborts(joined)


_on_abort: list[Any] = []  # the SIGABRT handler: C holds a pointer to it, so Python keeps it


def _exit_2_when_jax_aborts(joined: Cluster) -> None:
    """Exit 2 with a message, not SIGABRT (134), once process 0 is gone; JAX's fatal error
    and its C++ trace still come first, the message last.

    The coordination service runs in process 0. When it goes, JAX's client in every other
    process reads the error from its polling thread and ends the process with LOG(FATAL), then
    abort(), before Python hears of it: no option of jax.distributed.initialize turns that off,
    and its client's missed_heartbeat_callback cannot be a Python function in jaxlib 0.10
    (converting the status to Python throws std::bad_cast, which aborts too). So a C handler of
    SIGABRT (ctypes) checks whether the coordinator still answers: if not, it says so and exits
    2; else it puts the default back and lets the abort go on, as before (another fault).
    """
    import ctypes
    import signal

    libc = ctypes.CDLL(None)
    libc.signal.restype = ctypes.c_void_p
    libc.signal.argtypes = [ctypes.c_int, ctypes.c_void_p]

    def on_abort(signum: int) -> None:
        if _answers(joined.coordinator):
            # The default back, so the abort goes on when this returns: through libc, since
            # JAX aborts from its own thread and signal.signal works in the main thread only.
            libc.signal(signal.SIGABRT, None)
            return
        _exit_with(_lost(joined, "JAX's distributed client stopped this process"), plain=True)

    handler = ctypes.CFUNCTYPE(None, ctypes.c_int)(on_abort)
    _on_abort[:] = [handler]
    libc.signal(signal.SIGABRT, ctypes.cast(handler, ctypes.c_void_p))


def _answers(address: str) -> bool:
    """Whether something listens at HOST:PORT (process 0's coordination service)."""
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=1):
            return True
    except OSError:
        return False


def _wait_for(address: str, timeout: int) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not _answers(address):
        if time.monotonic() >= deadline:
            raise RunError(f"--coordinator {address}: process 0 did not answer within "
                           f"{timeout} s. Start process 0 there first (or check the "
                           "address, port and firewall), or raise --join-timeout.")
        time.sleep(0.2)


def process_rows(count: int) -> slice:
    """This process's rows of a batch of `count`: each process reads its own contiguous part,
    which Keras joins into the global batch in process order."""
    placed = current()
    if placed.processes == 1:
        return slice(None)
    share = count // placed.processes
    return slice(placed.process_id * share, (placed.process_id + 1) * share)


def score_alone() -> bool:
    """Leave the mesh of several processes, so this one can score a model by itself: Keras's
    predict cannot gather outputs that other processes hold. True if there was a mesh to leave
    (then the model must be loaded again, off it)."""
    placed = current()
    if placed.processes == 1:
        return False
    keras_module().distribution.set_distribution(None)
    _placed[:] = [Placement("none", process_id=placed.process_id)]
    return True


def abandon(joined: Cluster, error: Exception, run_dir: object) -> NoReturn:
    """Stop this process when another of the cluster stopped: its collectives fail at once
    (gloo: "Connection reset by peer"). Exit 2 with a message, skipping JAX's shutdown barrier,
    which would wait for the lost process and then abort with a stack trace."""
    cause = f"{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}"
    _exit_with(_lost(joined, cause, run_dir))


def _lost(joined: Cluster, cause: str, run_dir: object = None) -> str:
    """What stopped this process of the cluster, and how to finish the run."""
    where = f"{run_dir}" if joined.process_id == 0 and run_dir else "process 0's run directory"
    gone = "another process"
    if joined.process_id != 0 and not _answers(joined.coordinator):
        gone = f"process 0, the coordinator at {joined.coordinator},"
    return (f"process {joined.process_id} of {joined.processes}: training stopped because "
            f"{gone} stopped or cannot be reached ({cause}). {where} keeps the completed epochs: "
            "finish the run on one machine with dltrain fit --resume RUN_DIR, or start all "
            f"{joined.processes} processes again with a new --run-dir.")


def _exit_with(message: str, plain: bool = False) -> NoReturn:
    """Print the error and exit 2 now: past jax.distributed.initialize, a normal exit waits in
    JAX's shutdown barrier for every process, then aborts. `plain`: written straight to the
    file descriptor, in a signal handler, where rich's lock may be held."""
    import os
    import sys

    from rich.markup import escape

    from dltrain.console import err

    if plain:
        os.write(2, f"error: {message}\n".encode(errors="replace"))
    else:
        err.print(f"[red]error:[/] {escape(message)}", soft_wrap=True)
        sys.stdout.flush()
        sys.stderr.flush()
    os._exit(2)
