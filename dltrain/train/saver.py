"""last.keras (and best.keras) written in a background thread, so the next epoch starts at once.

A save of fashion_mnist_gpu's model takes 70-100 ms here (Keras's HDF5 and zip writing), which
the accelerator spent idle at every epoch's end; a host copy of the model's state takes 4-6 ms.
Keras saves whole models only, and the live model's device buffers are reused by the next
training step, so the first checkpoint is written by Keras and the later ones from a host copy
of the state, by `FileTemplate`: the first file's bytes with each variable's values put where
its HDF5 dataset keeps them. That writer is mostly memory copies, which leave Python's lock to
the training loop: a thread running Keras's own save held it for about 0.1 s an epoch, which cost
a hand-written script's fashion_mnist_gpu epoch on an H200 0.28 -> 0.39 s (BENCHMARKS.md).
One write at a time: the next epoch's waits for the one before, so the files are never more
than one epoch behind, and `close` waits for the last one. Each file is still written whole or
not at all (runs.files.atomic_target); `saved` hears an epoch once its file is in place.
"""

from __future__ import annotations

import datetime
import io
import json
import tempfile
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from dltrain.backend import keras_module
from dltrain.runs.files import atomic_target, copy_file, save_model

WEIGHTS_MEMBER = "model.weights.h5"  # where a .keras file keeps its variables (Keras's name)
METADATA_MEMBER = "metadata.json"  # Keras's: its version and the date the file was saved


def now() -> str:
    """The time as Keras writes a file's date_saved."""
    return datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")


def state_variables(model: Any) -> list[Any]:
    """Every variable a resume needs: the weights, in layer order, and the optimizer's."""
    optimizer = getattr(model, "optimizer", None)
    return [*model.weights, *(optimizer.variables if optimizer is not None else [])]


def signature(variables: list[Any]) -> list[tuple[tuple[int, ...], str]]:
    return [(tuple(v.shape), str(v.dtype)) for v in variables]


class FileTemplate:
    """A .keras file of a model, and where in it each state variable's bytes are: a later state
    of the same model is written by putting its values there, without Keras.

    Made by saving the model once with marker values (variable i holds i + 1 everywhere) and
    finding each marker's HDF5 dataset; the model's own values are put back after. None, where
    that does not map every dataset to one variable and back (a format Keras might change, a
    bfloat16 variable, which Keras stores under another dtype): the caller then saves with Keras.
    """

    def __init__(self, members: list[tuple[zipfile.ZipInfo, bytes]],
                 slots: list[tuple[int, int]]) -> None:
        self.members = members  # the file's zip members, in order
        contents = {info.filename: member for info, member in members}
        self.weights = contents[WEIGHTS_MEMBER]
        self.metadata = json.loads(contents.get(METADATA_MEMBER, b"{}"))
        self.slots = slots  # per variable: its data's offset in the weights member, its size

    @classmethod
    def of(cls, model: Any, variables: list[Any], values: list[np.ndarray]) -> FileTemplate | None:
        try:  # a marker a dtype cannot hold (int8 past 127) raises here too: Keras writes then
            markers = [np.full(value.shape, index + 1, dtype=value.dtype)
                       for index, value in enumerate(values)]
            for variable, marker in zip(variables, markers, strict=True):
                variable.assign(marker)
            with tempfile.TemporaryDirectory(prefix="dltrain-template-") as scratch:
                save_model(model, Path(scratch) / "template.keras")
                data = (Path(scratch) / "template.keras").read_bytes()
            return cls._read(data, markers)
        except Exception:  # noqa: BLE001 - the template only saves time: Keras writes instead
            return None
        finally:  # the model's own state back, exactly
            for variable, value in zip(variables, values, strict=True):
                variable.assign(value)

    @classmethod
    def _read(cls, data: bytes, markers: list[np.ndarray]) -> FileTemplate | None:
        import h5py

        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = [(info, archive.read(info)) for info in archive.infolist()]
        weights = {info.filename: member for info, member in members}.get(WEIGHTS_MEMBER)
        if weights is None or any(info.compress_type != zipfile.ZIP_STORED
                                  for info, _ in members):
            return None
        found: dict[int, tuple[int, int]] = {}
        datasets: list[Any] = []
        with h5py.File(io.BytesIO(weights), "r") as h5:
            h5.visititems(lambda _, item: datasets.append(item)
                          if isinstance(item, h5py.Dataset) else None)
            for dataset in datasets:
                content = np.asarray(dataset[()])
                index = int(content.flat[0]) - 1 if content.size else -1
                if not 0 <= index < len(markers) or index in found:
                    return None
                marker = markers[index]
                offset = dataset.id.get_offset()
                if (offset is None or "dtype" in dataset.attrs or content.dtype != marker.dtype
                        or content.shape != marker.shape or not np.array_equal(content, marker)):
                    return None
                found[index] = (offset, marker.nbytes)
        if len(found) != len(markers):
            return None
        return cls(members, [found[index] for index in range(len(markers))])

    def write(self, values: list[np.ndarray], path: Path) -> None:
        """The file of the model holding `values`, at `path`, whole or not at all; dated now,
        as Keras's own save dates its file."""
        weights = np.frombuffer(self.weights, dtype=np.uint8).copy()
        for (offset, size), value in zip(self.slots, values, strict=True):
            weights[offset:offset + size] = np.ascontiguousarray(value).reshape(-1).view(np.uint8)
        replaced: dict[str, bytes | memoryview] = {
            WEIGHTS_MEMBER: weights.data,
            METADATA_MEMBER: json.dumps({**self.metadata, "date_saved": now()}).encode()}
        with atomic_target(path, suffix=path.suffix) as tmp, zipfile.ZipFile(tmp, "w") as archive:
            for info, member in self.members:
                fresh = zipfile.ZipInfo(info.filename, info.date_time)  # writestr fills it in
                fresh.external_attr = info.external_attr
                archive.writestr(fresh, replaced.get(info.filename, member))


class Saver:
    """Writes one file, `path`, from a model's state at each `save`, in the background.

    The first save is written here by Keras, and makes the template the later ones are written
    from; a model whose variables change shape or number (a fine-tuning phase recompiles with a
    new optimizer) is saved here again, with a new template.
    """

    def __init__(self, path: Path, saved: Callable[[int], None], background: bool = True,
                 write: Callable[[Any, Path], None] | None = None) -> None:
        self.path = path
        self.background = background  # False: every save is written here, at once
        self.saved = saved
        self.write = write or (lambda model, path: save_model(model, path))
        self.template: FileTemplate | None = None
        self.template_signature: list[tuple[tuple[int, ...], str]] = []  # its variables' shapes
        self.thread: threading.Thread | None = None
        self.failure: BaseException | None = None
        self.lock = threading.Lock()
        self.pending_epoch: int | None = None  # the epoch being written in the background
        self.copies: list[Path] = []  # where the pending epoch's file is copied once written

    def save(self, model: Any, epoch: int) -> None:
        self.wait()
        variables = state_variables(model) if self.background else []
        values = [np.array(keras_module().ops.convert_to_numpy(v), copy=True) for v in variables]
        if self.template is None or self.template_signature != signature(variables):
            self.write(model, self.path)
            self.saved(epoch)
            if self.background:
                self.template = FileTemplate.of(model, variables, values)
                self.template_signature = signature(variables)
                self.background = self.template is not None  # else Keras writes, here, each time
            return
        with self.lock:
            self.pending_epoch, self.copies = epoch, []
        self.thread = threading.Thread(target=self._write_values, args=(values, epoch),
                                       name="dltrain-checkpoint", daemon=True)
        self.thread.start()

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

    def _write_values(self, values: list[np.ndarray], epoch: int) -> None:
        try:
            assert self.template is not None  # save made it before any write in the background
            self.template.write(values, self.path)
            self.saved(epoch)
            with self.lock:
                self.pending_epoch, copies = None, self.copies
            for target in copies:
                copy_file(self.path, target)
        except BaseException as exc:  # handed to the training thread at its next wait
            self.failure = exc
            with self.lock:
                self.pending_epoch = None
