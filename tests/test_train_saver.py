"""The background checkpoint writer: the file holds each epoch's state, written off the loop."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dltrain.backend import keras_module
from dltrain.report.evaluate import load_model
from dltrain.runs.files import save_model
from dltrain.train.saver import FileTemplate, Saver, state_variables

RNG = np.random.default_rng(0)
X = RNG.random((16, 4), dtype=np.float32)
Y = (X[:, :1] > 0.5).astype("float32")


def trained(optimizer: str = "adam") -> Any:
    keras = keras_module()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, activation="relu"),
                              keras.layers.BatchNormalization(),
                              keras.layers.Dense(1, activation="sigmoid")])
    # Eagerly: one batch a fit, where tracing a graph would cost more than the step (the
    # saver reads variables, which move alike either way).
    model.compile(optimizer=optimizer, loss="binary_crossentropy", run_eagerly=True)
    step(model)
    return model


def step(model: Any) -> None:
    """One epoch of one batch: every variable (weights, moving statistics, optimizer) moves."""
    model.fit(X, Y, batch_size=16, epochs=1, verbose=0)


def values(model: Any) -> list[np.ndarray]:
    return [np.array(keras_module().ops.convert_to_numpy(v)) for v in state_variables(model)]


def assert_same(left: list[np.ndarray], right: list[np.ndarray]) -> None:
    assert len(left) == len(right)
    for a, b in zip(left, right, strict=True):
        np.testing.assert_array_equal(a, b)


class Held:
    """Holds every background write (FileTemplate.write) until `release`."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[int] = []
        self.gate = threading.Event()
        self.started = threading.Event()
        write = FileTemplate.write

        def held(template: FileTemplate, values: list[np.ndarray], path: Path) -> None:
            self.calls.append(len(values))
            self.started.set()
            assert self.gate.wait(60), "the test never released the write"
            write(template, values, path)

        monkeypatch.setattr(FileTemplate, "write", held)


def failing_in_the_background(monkeypatch: pytest.MonkeyPatch) -> None:
    """Background writes fail as on a full disk."""
    def failing(template: FileTemplate, values: list[np.ndarray], path: Path) -> None:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(FileTemplate, "write", failing)


def in_place(writes: list[Any]) -> Any:
    """Keras's save, here, with a note of each model it wrote."""
    return lambda model, path: (writes.append(model), save_model(model, path))


def test_the_first_save_is_written_at_once_and_later_ones_in_the_background(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, held, saved, writes = trained(), Held(monkeypatch), [], []
    saver = Saver(tmp_path / "last.keras", saved.append, write=in_place(writes))
    saver.save(model, 1)
    assert saved == [1] and writes == [model] and held.calls == []
    step(model)
    saver.save(model, 2)  # returns while the write is held
    assert held.started.wait(60)
    assert saved == [1]
    assert held.calls == [len(state_variables(model))] and writes == [model]  # not Keras's save
    held.gate.set()
    saver.wait()
    assert saved == [1, 2]


def test_making_the_template_leaves_the_model_as_it_was(tmp_path: Path) -> None:
    """The template is saved from the live model with marker values, then the values go back."""
    model = trained()
    before = values(model)
    saver = Saver(tmp_path / "last.keras", lambda epoch: None)
    saver.save(model, 1)
    assert saver.template is not None
    assert_same(values(model), before)
    assert_same(values(load_model(tmp_path / "last.keras")), before)


def test_the_file_holds_the_state_at_its_epochs_end_not_what_training_did_after(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, held = trained(), Held(monkeypatch)
    saver = Saver(tmp_path / "last.keras", lambda epoch: None)
    saver.save(model, 1)
    step(model)
    at_epoch_2 = values(model)
    saver.save(model, 2)
    assert held.started.wait(60)
    step(model)  # the next epoch trains while epoch 2 is being written
    assert int(model.optimizer.iterations.numpy()) == 3
    held.gate.set()
    saver.wait()
    reloaded = load_model(tmp_path / "last.keras")
    assert_same(values(reloaded), at_epoch_2)
    assert int(reloaded.optimizer.iterations.numpy()) == 2


def test_a_background_file_equals_what_keras_saves_of_the_model(tmp_path: Path) -> None:
    model = trained()
    saver = Saver(tmp_path / "last.keras", lambda epoch: None)
    saver.save(model, 1)
    for epoch in (2, 3):
        step(model)
        saver.save(model, epoch)
    saver.wait()
    save_model(model, tmp_path / "direct.keras")
    assert_same(values(load_model(tmp_path / "last.keras")),
                values(load_model(tmp_path / "direct.keras")))


def test_a_failed_background_write_is_raised_at_the_next_wait(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_in_the_background(monkeypatch)
    model, saved = trained(), []
    saver = Saver(tmp_path / "last.keras", saved.append)
    saver.save(model, 1)
    step(model)
    saver.save(model, 2)
    with pytest.raises(OSError, match="No space left on device"):
        saver.wait()
    assert saved == [1]
    saver.wait()  # raised once, then cleared


def test_a_copy_waits_for_its_epochs_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model, held = trained(), Held(monkeypatch)
    saver = Saver(tmp_path / "last.keras", lambda epoch: None)
    saver.save(model, 1)
    saver.copy_when_written(1, tmp_path / "best1.keras")  # epoch 1 is written: copied at once
    assert (tmp_path / "best1.keras").read_bytes() == (tmp_path / "last.keras").read_bytes()
    step(model)
    saver.save(model, 2)
    assert held.started.wait(60)
    saver.copy_when_written(2, tmp_path / "best.keras")
    assert not (tmp_path / "best.keras").exists()
    held.gate.set()
    saver.wait()
    assert (tmp_path / "best.keras").read_bytes() == (tmp_path / "last.keras").read_bytes()
    assert int(load_model(tmp_path / "best.keras").optimizer.iterations.numpy()) == 2


def test_a_copy_after_a_failed_write_raises_instead_of_copying_the_older_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failing_in_the_background(monkeypatch)
    model = trained()
    saver = Saver(tmp_path / "last.keras", lambda epoch: None)
    saver.save(model, 1)
    step(model)
    saver.save(model, 2)
    saver.thread.join(60)  # type: ignore[union-attr]
    with pytest.raises(OSError, match="No space left"):
        saver.copy_when_written(2, tmp_path / "best.keras")
    assert not (tmp_path / "best.keras").exists()


def test_a_recompiled_model_is_saved_in_place_with_a_new_template(tmp_path: Path) -> None:
    """Fine-tuning recompiles with a new optimizer: other variables, so the template is stale."""
    keras = keras_module()
    model, writes, saved = trained("adam"), [], []
    saver = Saver(tmp_path / "last.keras", saved.append, write=in_place(writes))
    saver.save(model, 1)
    step(model)
    saver.save(model, 2)
    saver.wait()
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9), loss="binary_crossentropy")
    step(model)
    saver.save(model, 3)
    assert writes == [model, model]  # epochs 1 and 3 by Keras, 2 from the template
    step(model)
    saver.save(model, 4)  # from the new template
    saver.wait()
    assert writes == [model, model]
    reloaded = load_model(tmp_path / "last.keras")
    assert type(reloaded.optimizer).__name__ == "SGD"
    assert_same(values(reloaded), values(model))
    assert saved == [1, 2, 3, 4]


def test_without_background_every_save_is_written_at_once(tmp_path: Path) -> None:
    model, writes = trained(), []
    saver = Saver(tmp_path / "last.keras", lambda epoch: None, background=False,
                  write=in_place(writes))
    for epoch in (1, 2):
        saver.save(model, epoch)
        assert saver.thread is None
    assert writes == [model, model]


def test_an_epochs_history_row_waits_for_the_previous_epochs_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kill must never find history.csv two rows ahead of last.keras (--resume mends one)."""
    from dltrain.runs.files import read_history
    from dltrain.train.checkpoints import LastCheckpoint
    from dltrain.train.events import EpochEnded
    from dltrain.train.history import HistoryFile

    model, held = trained(), Held(monkeypatch)
    rows_when_written: list[int] = []

    def write(m: Any, path: Path) -> None:
        save_model(m, path)
        rows_when_written.append(len(read_history(tmp_path / "history.csv")))

    write_values = FileTemplate.write  # Held's

    def write_held(template: FileTemplate, values: list[np.ndarray], path: Path) -> None:
        write_values(template, values, path)
        rows_when_written.append(len(read_history(tmp_path / "history.csv")))

    monkeypatch.setattr(FileTemplate, "write", write_held)
    last = LastCheckpoint(tmp_path, lambda epoch: None)
    last.saver.write = write
    entered = threading.Event()
    history = HistoryFile(tmp_path / "history.csv", [],
                          wait_for=lambda: (entered.set(), last.close()))
    for epoch in (1, 2):  # epoch 2's checkpoint is held in the background
        history.epoch_ended(EpochEnded(epoch, {"loss": 1.0}, 0.0, model))
        last.epoch_ended(EpochEnded(epoch, {"loss": 1.0}, 0.0, model))
        step(model)
    third = threading.Thread(target=history.epoch_ended,
                             args=(EpochEnded(3, {"loss": 1.0}, 0.0, model),))
    third.start()
    assert entered.wait(60)  # the third row's writer is waiting for epoch 2's checkpoint
    held.gate.set()
    third.join(60)
    assert rows_when_written == [1, 2]  # epoch 2's file was in place before row 3 was written
    assert len(read_history(tmp_path / "history.csv")) == 3


def test_fit_makes_history_wait_for_its_last_checkpoint(tmp_path: Path) -> None:
    from rich.console import Console

    from conftest import CONFIGS
    from dltrain.config.load import load_config
    from dltrain.train.checkpoints import LastCheckpoint
    from dltrain.train.events import Stream
    from dltrain.train.signals import Signals
    from dltrain.train.start import Start
    from dltrain.train.wiring import wire

    config = load_config(CONFIGS / "quickstart.yaml").config
    stream = Stream()
    wired = wire(stream, config, tmp_path, Console(), False, Start(None), 1, Signals())
    history, last = wired.history, wired.last
    assert isinstance(last, LastCheckpoint) and last in stream.subscribers
    assert history.wait_for == last.close
    assert stream.subscribers.index(history) < stream.subscribers.index(last)


def test_a_model_the_template_cannot_map_is_saved_by_keras_every_time(tmp_path: Path) -> None:
    """Keras keeps a bfloat16 variable's values under another dtype: no template; Keras saves."""
    keras = keras_module()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, dtype="bfloat16"),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="adam", loss="binary_crossentropy")
    step(model)
    writes, saved = [], []
    saver = Saver(tmp_path / "last.keras", saved.append, write=in_place(writes))
    for epoch in (1, 2, 3):
        saver.save(model, epoch)
        assert saver.thread is None
    assert writes == [model] * 3 and saved == [1, 2, 3]  # each written in place
    assert saver.template is None and not saver.background
    assert_same(values(load_model(tmp_path / "last.keras")), values(model))


STAYS_ON_ITS_DEVICE = """
import jax, numpy as np, keras
from pathlib import Path
from dltrain.train.saver import Saver
jax.config.update("jax_default_device", jax.devices()[1])  # training runs on the second device
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
x = np.ones((8, 4), "float32")
model.fit(x, x[:, :1], epochs=1, verbose=0)
devices = lambda m: sorted({str(d) for v in m.weights for d in v.value.devices()})
before = devices(model)
saver = Saver(Path(OUT) / "last.keras", lambda epoch: None)
saver.save(model, 1)  # the template: markers put into the model's variables, then its values
print(before, devices(model))
"""


FIRST_SAVE_COMPILES = """
import jax, numpy as np, keras
from jax import monitoring
from pathlib import Path
from dltrain.train.saver import Saver
compiles = []
monitoring.register_event_duration_secs_listener(
    lambda event, seconds, **kw: compiles.append(event)
    if event == "/jax/core/compile/backend_compile_duration" else None)
model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
x = np.ones((8, 4), "float32")
model.fit(x, x[:, :1], epochs=1, verbose=0)
before = len(compiles)
saver = Saver(Path(OUT) / "last.keras", lambda epoch: None)
saver.save(model, 1)  # written here, and the template made
assert saver.template is not None
print(len(compiles) - before)
"""


# Each program runs in its own namespace, OUT its own folder, and prints its answer last. The
# first save's compile count comes first: the second program moves JAX's default device.
BOTH_PROGRAMS = (
    "import sys\n"
    "from pathlib import Path\n"
    "for name, program in zip(('first', 'device'), sys.argv[2:], strict=True):\n"
    "    out = Path(sys.argv[1]) / name\n"
    "    out.mkdir()\n"
    "    exec(program, {'OUT': str(out)})\n")


@pytest.fixture(scope="module")
def jax_answers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """FIRST_SAVE_COMPILES's and STAYS_ON_ITS_DEVICE's answers, from one JAX process with two
    host devices (one start of JAX and Keras, not two)."""
    import importlib.util
    import os
    import subprocess
    import sys

    if importlib.util.find_spec("jax") is None:
        pytest.skip("JAX is not installed")
    folder = tmp_path_factory.mktemp("jax-saver")
    done = subprocess.run([sys.executable, "-c", BOTH_PROGRAMS, str(folder), FIRST_SAVE_COMPILES,
                           STAYS_ON_ITS_DEVICE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu",
                               "XLA_FLAGS": f"{os.environ['XLA_FLAGS']} "
                                            "--xla_force_host_platform_device_count=2"})
    assert done.returncode == 0, done.stderr[-3000:]
    first, device = done.stdout.splitlines()[-2:]
    return {"first": first, "device": device}


@pytest.mark.slow  # a JAX process: seconds of CPU
def test_the_first_save_compiles_nothing(jax_answers: dict[str, str]) -> None:
    """A twin loaded back from the first file (the writer before the template) compiled every
    weight initializer on the host: fashion_mnist_gpu's second epoch on an H200 3.8 s cold."""
    assert jax_answers["first"] == "0"


@pytest.mark.slow  # a JAX process: seconds of CPU
def test_the_template_leaves_the_model_on_its_device(jax_answers: dict[str, str]) -> None:
    """JAX with two host devices stands in for a host and a GPU: the training model is on the
    second, and stays there after its variables held the markers."""
    assert jax_answers["device"] == "['cpu:1'] ['cpu:1']"


def test_a_marker_a_variables_dtype_cannot_hold_means_keras_writes() -> None:
    """Variable 201 of int8 cannot hold its marker 201: no template (and no error), and every
    variable keeps its value."""

    class Variable:
        def __init__(self) -> None:
            self.assigned: list[np.ndarray] = []

        def assign(self, value: np.ndarray) -> None:
            self.assigned.append(value)

    values = [np.zeros((), np.float32) for _ in range(200)] + [np.zeros((2,), np.int8)]
    variables = [Variable() for _ in values]
    assert FileTemplate.of(None, variables, values) is None
    assert all(v.assigned[-1] is value for v, value in zip(variables, values, strict=True))


def test_a_file_from_the_template_is_dated_when_it_was_written(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keras's metadata.json says when the file was saved; the template's date stayed in every
    later file, so last.keras of epoch 30 claimed epoch 1's time."""
    import json
    import zipfile

    import dltrain.train.saver as saver_module

    model = trained()
    saver = Saver(tmp_path / "last.keras", lambda epoch: None)
    saver.save(model, 1)
    monkeypatch.setattr(saver_module, "now", lambda: "2031-01-02@03:04:05")
    step(model)
    saver.save(model, 2)
    saver.wait()
    with zipfile.ZipFile(tmp_path / "last.keras") as archive:
        metadata = json.loads(archive.read("metadata.json"))
    assert metadata["date_saved"] == "2031-01-02@03:04:05"
    assert metadata["keras_version"] == keras_module().__version__
    assert int(load_model(tmp_path / "last.keras").optimizer.iterations.numpy()) == 2
