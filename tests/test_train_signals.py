"""Ctrl-C and SIGTERM at any instant: recorded from the command's start, raised again when
training's handler is installed even where Python dropped its exception, and recognised when a
native library hands it back as another error (issue 26)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from conftest import CONFIGS, ROOT, run_cli
from dltrain.errors import Terminated
from dltrain.train.signals import Signals, catch_early


@pytest.fixture
def sigterm_kept() -> Iterator[None]:
    """pytest's process is never killed by a test's SIGTERM, whatever the code under test does."""
    outer = signal.signal(signal.SIGTERM, lambda signum, frame: None)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, outer)


def wrapped(signum: int) -> None:
    """A signal whose exception a C extension turns into its own error, as TensorFlow's tracing
    did (a SystemError from a C callback's caller, a pybind11 error): the CLI called it an
    internal error, exit 1, and the run was marked failed."""
    try:
        os.kill(os.getpid(), signum)
        threading.Event().wait(5)  # the handler runs at the next bytecode; this is a bound
    except (KeyboardInterrupt, Terminated):
        raise SystemError("Objects/listobject.c:338: bad argument to internal function") from None
    pytest.fail("the signal's handler did not raise")


def test_a_ctrl_c_whose_exception_was_dropped_is_raised_when_training_starts() -> None:
    # Python drops an exception raised in a garbage collector's callback (JAX's, during `import
    # keras`): the fit then ran to its end and exited 0.
    with catch_early():
        try:
            os.kill(os.getpid(), signal.SIGINT)
        except KeyboardInterrupt:
            pass  # as the gc callback's caller drops it
        with pytest.raises(KeyboardInterrupt), Signals().installed():
            pytest.fail("training started after a Ctrl-C")


def test_without_an_early_ctrl_c_training_starts_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    with catch_early():
        with Signals().installed() as signals:
            assert signals.received is None
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.usefixtures("sigterm_kept")
@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt),
                                                (signal.SIGTERM, Terminated)])
def test_a_signal_handed_back_as_another_error_in_training_is_the_interruption(
        signum: int, raised: type[BaseException]) -> None:
    with pytest.raises(raised) as caught, Signals().installed():
        wrapped(signum)
    assert isinstance(caught.value.__cause__, SystemError)  # --debug still shows what it was


@pytest.mark.usefixtures("sigterm_kept")
@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt),
                                                (signal.SIGTERM, Terminated)])
def test_a_signal_handed_back_as_another_error_during_start_up_is_the_interruption(
        signum: int, raised: type[BaseException]) -> None:
    with pytest.raises(raised), catch_early():
        wrapped(signum)


def test_an_error_without_a_signal_stays_what_it_is() -> None:
    with pytest.raises(SystemError), catch_early(), Signals().installed():
        raise SystemError("a genuine failure")


def test_a_signal_inside_a_finaliser_lets_it_finish_and_is_raised_after() -> None:
    # Raised inside TensorFlow's __del__ of a C handle or an iterator, the exception was dropped
    # and the finaliser stopped half-way: the heap was corrupt at the next epoch (exit -11).
    finished: list[str] = []

    class Handle:
        def __del__(self) -> None:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.05)  # the handler runs in here (PEP 475), raising or not
            finished.append("freed")

    with pytest.raises(KeyboardInterrupt), Signals().installed():
        Handle()  # freed at once: refcount 0
        assert finished == ["freed"]
    assert finished == ["freed"]


def test_a_signal_dropped_after_the_last_batch_still_stops_the_command() -> None:
    # Raised in a __del__ (TensorFlow's AtomicFunction, after fit's last batch end): Python
    # printed "Exception ignored" and the fit went on to save, score and exit 0.
    with pytest.raises(KeyboardInterrupt), Signals().installed():
        try:
            os.kill(os.getpid(), signal.SIGINT)
            threading.Event().wait(5)
        except KeyboardInterrupt:
            pass


@pytest.mark.usefixtures("sigterm_kept")
def test_sigterm_during_start_up_exits_143_not_killed() -> None:
    # Before training's handler, SIGTERM's default action killed the process (returncode -15):
    # no "interrupted", and nothing a `finally` would have done.
    with pytest.raises(Terminated), catch_early():
        os.kill(os.getpid(), signal.SIGTERM)
        threading.Event().wait(5)


# --- real fits -----------------------------------------------------------------------------

QUICKSTART = CONFIGS / "quickstart.yaml"


def wrap_signal_at_train_begin(signum: int) -> Any:
    """A Keras callback: the signal arrives and comes back wrapped as training starts, as from
    TensorFlow's tracing of the first step."""
    from dltrain.backend import keras_module

    class WrapSignal(keras_module().callbacks.Callback):  # type: ignore[misc,name-defined]
        def on_train_begin(self, logs: Any = None) -> None:
            wrapped(signum)

    return WrapSignal()


@pytest.mark.slow
@pytest.mark.usefixtures("sigterm_kept")
@pytest.mark.parametrize(("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt),
                                                (signal.SIGTERM, Terminated)])
def test_a_wrapped_signal_in_fit_marks_the_run_interrupted_not_failed(
        tmp_path: Path, signum: int, raised: type[BaseException]) -> None:
    from dltrain.config.load import load_config
    from dltrain.train.fit import fit

    run = tmp_path / "run"
    with pytest.raises(raised):
        fit(load_config(QUICKSTART, smoke=True), run_dir=run, device="cpu",
            console=Console(file=io.StringIO()), live=False,
            callbacks=[wrap_signal_at_train_begin(signum)])
    recorded = json.loads((run / "run.json").read_text())
    assert recorded["state"] == "interrupted", recorded
    assert recorded["epochs_done"] == 0


def load_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_signals", ROOT / "bench" / "signals.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_signals_at_a_handful_of_instants_end_130_or_143_with_a_resumable_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """bench/signals.py's tries (it runs 30 and more): start-up, as run.json appears, and inside
    epoch 1, whose first seconds TensorFlow spends tracing the steps (the instants of issue 26).
    The last try's run is resumed here, as bench.resume checks it (exit 0, then `completed`),
    without a TensorFlow process of its own."""
    bench = load_bench()
    fit = bench.Fit()
    timeline = bench.measure(fit, tmp_path / "uninterrupted")
    assert timeline.tracing > 0.2, timeline  # epoch 1 is mostly tracing: the window is there
    start = timeline.run_json / timeline.epoch_one
    instants = [0.5 * start, start, start + (1 - start) * 0.1, start + (1 - start) * 0.4,
                start + (1 - start) * 0.8]
    results = [bench.attempt(fit, tmp_path / f"try-{index}", timeline, fraction,
                             (signal.SIGINT, signal.SIGTERM)[index % 2])
               for index, fraction in enumerate(instants)]
    assert [result.problem for result in results] == [None] * len(results), \
        [(result.phase, result.code, result.output[-2000:]) for result in results
         if result.problem]
    resumed = [index for index, result in enumerate(results) if result.phase != "start-up"]
    assert resumed, [result.phase for result in results]
    last = tmp_path / f"try-{resumed[-1]}"
    code, out, err = run_cli(capsys, "fit", "--resume", last)
    assert code == 0, f"resume exited {code}: {(out + err)[-2000:]}"
    assert json.loads((last / "run.json").read_text())["state"] == "completed"


@pytest.mark.slow
@pytest.mark.usefixtures("sigterm_kept")
def test_a_signal_handed_back_as_another_error_while_the_run_files_are_written_is_recorded(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # bench/signals.py's try as run.json appeared: a SIGTERM whose exception came back as
    # another error while environment.json was written ended the command 143 with not a word,
    # and left the run 'running' for ever.
    from dltrain.config.load import load_config
    from dltrain.train import fit as runner

    run = tmp_path / "run"
    output = io.StringIO()
    with monkeypatch.context() as patched, pytest.raises(Terminated), catch_early():
        patched.setattr(runner, "write_run_files", lambda *args, **kwargs: wrapped(signal.SIGTERM))
        runner.fit(load_config(QUICKSTART, smoke=True), run_dir=run, device="cpu",
                   console=Console(file=output, width=100), live=False)
    recorded = json.loads((run / "run.json").read_text())
    assert (recorded["state"], recorded.get("epochs_done")) == ("interrupted", 0)
    assert f"Resume with: dltrain fit --resume {run}" in output.getvalue()


@pytest.mark.slow
def test_a_signal_while_the_run_files_are_written_leaves_it_interrupted_and_resumable(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    # Between run.json's 'running' and training's handler: the run stayed 'running'.
    from dltrain.config.load import load_config
    from dltrain.train import fit as runner

    def ctrl_c(*args: Any, **kwargs: Any) -> None:
        raise KeyboardInterrupt

    run = tmp_path / "run"
    output = io.StringIO()
    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(runner, "write_run_files", ctrl_c)
        runner.fit(load_config(QUICKSTART, smoke=True), run_dir=run, device="cpu",
                   console=Console(file=output, width=100), live=False)
    recorded = json.loads((run / "run.json").read_text())
    assert (recorded["state"], recorded.get("epochs_done")) == ("interrupted", 0)
    assert f"Resume with: dltrain fit --resume {run}" in output.getvalue()
    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, err
    assert json.loads((run / "run.json").read_text())["state"] == "completed"
