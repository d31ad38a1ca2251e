"""last.keras (and best.keras) written in a background thread, so the next epoch starts at once.

A save of fashion_mnist_gpu's model takes 70-100 ms here (Keras's HDF5 and zip writing), which
the accelerator spent idle at every epoch's end; a host copy of the model's state takes 4-6 ms.
Keras saves whole models only, and the live model's device buffers are reused by the next
training step, so the thread saves a twin: the first checkpoint loaded back, given the copied
values, in host memory. One write at a time: the next epoch's waits for the one before, so the
files are never more than one epoch behind, and `close` waits for the last one. Each file is
still written whole or not at all (runs.files.atomic_target); `saved` hears an epoch once its
file is in place.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.backend import host_device, keras_module
from dltrain.runs.layout import copy_file, save_model


def state_variables(model: Any) -> list[Any]:
    """Every variable a resume needs: the weights, in layer order, and the optimizer's."""
    optimizer = getattr(model, "optimizer", None)
    return [*model.weights, *(optimizer.variables if optimizer is not None else [])]


def signature(variables: list[Any]) -> list[tuple[tuple[int, ...], str]]:
    return [(tuple(v.shape), str(v.dtype)) for v in variables]


class Saver:
    """Writes one file, `path`, from a model's state at each `save`, in the background.

    The first save is written here, as before; a model whose variables change shape or number
    (a fine-tuning phase recompiles with a new optimizer) is saved here again and twinned anew.
    """

    def __init__(self, path: Path, saved: Callable[[int], None], background: bool = True,
                 write: Callable[[Any, Path], None] | None = None) -> None:
        self.path = path
        self.background = background  # False: every save is written here, at once
        self.saved = saved
        self.write = write or (lambda model, path: save_model(model, path))
        self.twin: Any = None
        self.twin_signature: list[tuple[tuple[int, ...], str]] = []  # its variables' shapes
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        self.lock = threading.Lock()
        self.pending_epoch: int | None = None  # the epoch being written in the background
        self.copies: list[Path] = []  # where the pending epoch's file is copied once written

    def save(self, model: Any, epoch: int) -> None:
        self.wait()
        variables = state_variables(model) if self.background else []
        if self.twin is None or self.twin_signature != signature(variables):
            self.write(model, self.path)
            self.saved(epoch)
            if self.background:
                self.twin, self.twin_signature = self._load_twin(), signature(variables)
            return
        values = [np.array(keras_module().ops.convert_to_numpy(v), copy=True) for v in variables]
        with self.lock:
            self.pending_epoch, self.copies = epoch, []
        self.thread = threading.Thread(target=self._write_twin, args=(values, epoch),
                                       name="dltrain-checkpoint", daemon=True)
        self.thread.start()

    def _load_twin(self) -> Any:
        """The file just written, loaded back into host memory; None (and saves in place from
        now on) when it cannot be: the twin only saves time, it must never fail a run that could
        be saved. Loaded here, not in the background: loading runs the weight initializers, and
        computations from a second thread beside a step's all-reduce over several devices are
        the 1-process-multi-device set-up that XLA's collectives can hang in."""
        try:
            with host_device():  # never a second copy of the model in the accelerator's memory
                return keras_module().saving.load_model(self.path, safe_mode=True)
        except Exception:  # noqa: BLE001 - any failure only means: keep saving in place
            self.background = False
            return None

    def copy_when_written(self, epoch: int, target: Path) -> None:
        """Copy `path` to `target` once it holds `epoch` (at once when it already does)."""
        if self.failure is not None:  # `path` never got that epoch: fail, do not copy an older one
            self.wait()
        with self.lock:
            if self.pending_epoch == epoch:
                self.copies.append(target)
                return
        copy_file(self.path, target)

    def wait(self) -> None:
        """Until the write under way is done; its error, if it failed, is raised here."""
        if self.thread is not None:
            self.thread.join()
            self.thread = None
        if self.failure is not None:
            failure, self.failure = self.failure, None
            raise failure

    def _write_twin(self, values: list[np.ndarray], epoch: int) -> None:
        try:
            with host_device():
                for variable, value in zip(state_variables(self.twin), values, strict=True):
                    variable.assign(value)
                self.write(self.twin, self.path)
            self.saved(epoch)
            with self.lock:
                self.pending_epoch, copies = None, self.copies
            for target in copies:
                copy_file(self.path, target)
        except BaseException as exc:  # handed to the training thread at its next wait
            self.failure = exc
            with self.lock:
                self.pending_epoch = None
