"""Training behaviour: callbacks, divergence, progress display, what the saved model holds."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest
from rich.console import Console

from conftest import CONFIGS, ROOT, run_cli, write_yaml
from dltrain.cli import main
from dltrain.config.load import load_config
from dltrain.train.fit import fit

pytestmark = pytest.mark.slow  # every test here trains a model

QUICKSTART = CONFIGS / "quickstart.yaml"


def history(run: Path) -> list[dict[str, str]]:
    with (run / "history.csv").open() as handle:
        return list(csv.DictReader(handle))


def test_diverging_loss_stops_marks_the_run_failed_and_says_what_to_try(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    # Inputs scaled to ~1e30 overflow the first layer: the loss is NaN on the first batch.
    code, out, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", run,
                             "--set", "dataset.rescale=1e30", "--epochs", "3", "--json")
    assert code == 2
    assert "the loss became NaN or infinite" in err and "learning_rate" in err
    assert out == ""  # Keras's "Batch 1: Invalid loss, terminating training" was on stdout
    state = json.loads((run / "run.json").read_text())
    assert state["state"] == "failed" and "NaN" in state["error"]
    assert not (run / "model.keras").exists()
    assert len(history(run)) == 1  # stopped in the first epoch, not after three
    message = " ".join(err.split())
    assert "No epoch completed, so no checkpoint was kept" in message and "kept in" not in message
    # The epoch line and the final word agree with history.csv's one row (issue 27).
    assert "epoch 1/3 stopped: the loss became NaN, not a completed epoch" in message
    assert "epoch 1/3 loss nan" not in message
    assert "Epoch 1 stopped at the non-finite loss; history.csv's row 1 holds its figures" \
        in message
    assert not (run / "last.keras").exists() and not (run / "best.keras").exists()
    code, _, err = run_cli(capsys, "eval", run)
    message = " ".join(err.split())
    assert code == 2 and "the run is 'failed', not completed" in message
    assert "It kept no checkpoint: no epoch completed." in message and "--model" not in message
    # Resuming would start from the same weights into the same NaN.
    assert "--resume" not in message
    assert "Start it again with dltrain fit once its config is changed (the error is in" in message


def test_early_stopping_ends_training_early(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    # No epoch can improve val_loss by 10, so patience 0 stops after the second epoch.
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", run,
                           "--epochs", "6", "--set",
                           "training.early_stopping={monitor: val_loss, patience: 0, "
                           "min_delta: 10}")
    assert code == 0, err
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2
    assert [row["epoch"] for row in history(run)] == ["1", "2"]


def test_reduce_lr_on_plateau_lowers_the_learning_rate(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", QUICKSTART, "--smoke", "--run-dir", run,
                           "--epochs", "3", "--set", "training.reduce_lr_on_plateau="
                           "{monitor: val_loss, patience: 0, factor: 0.5, min_delta: 10}")
    assert code == 0, err
    # Each row holds the rate its epoch trained with: epoch 1 sets the best val_loss, epoch 2
    # cannot beat it by 10, so the rate halves from epoch 3 on.
    rates = [float(row["learning_rate"]) for row in history(run)]
    assert rates == pytest.approx([0.001, 0.001, 0.0005])


def test_steps_per_execution_above_one_records_every_epoch_and_shows_live_progress(
        tmp_path: Path) -> None:
    # 230 smoke training samples at batch 64 are 4 batches; 3 a call leaves a partial last call,
    # which Keras numbers 6 and the bar showed as 6/4 (issue 27).
    run = tmp_path / "run"
    loaded = load_config(QUICKSTART, ["training.epochs=2", "training.steps_per_execution=3"],
                         smoke=True)
    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, width=120)
    fit(loaded, run_dir=run, device="cpu", console=console, live=True)
    rows = history(run)
    assert [row["epoch"] for row in rows] == ["1", "2"]
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 2
    # --resume counts epochs by the optimizer's steps: the partial call still makes 4 per epoch.
    import keras

    assert int(keras.saving.load_model(run / "last.keras").optimizer.iterations.numpy()) == 2 * 4
    text = buffer.getvalue()
    assert "batches" in text and "epochs" in text
    assert "loss" in text and "accuracy" in text and "epoch 1/2" in text and "epoch 2/2" in text
    assert "4/4" in text and "6/4" not in text and "5/4" not in text
    # Each epoch line's seconds are history.csv's, to the printed precision.
    for epoch, row in enumerate(rows, 1):
        printed = re.search(rf"epoch {epoch}/2  \w[^\n]*  (\d+\.\d)s\n", text)
        assert printed is not None and printed.group(1) == f"{float(row['seconds']):.1f}"


def test_validating_on_test_is_never_silent(tmp_path: Path) -> None:
    text = QUICKSTART.read_text().replace("validation_split: 0.1", "validation_split: test")
    loaded = load_config(write_yaml(tmp_path / "c.yaml", text))
    assert any("validating on the test split" in note for note in loaded.notes)


def op_determinism() -> tuple[bool, bool]:
    """Whether TensorFlow's op determinism and PyTorch's deterministic algorithms are on in this
    process (False for a framework not imported: nothing here switched it on)."""
    tensorflow = torch = False
    if "tensorflow" in sys.modules:
        from tensorflow.python.framework import config as tf_config

        tensorflow = bool(tf_config.is_op_determinism_enabled())
    if "torch" in sys.modules:
        torch = bool(sys.modules["torch"].are_deterministic_algorithms_enabled())
    return tensorflow, torch


def restore_op_determinism(before: tuple[bool, bool]) -> None:
    """Switch off what a deterministic run switched on (op_determinism's `before`)."""
    tensorflow, torch = op_determinism()
    if tensorflow and not before[0]:
        from tensorflow.python.framework import config as tf_config

        tf_config.disable_op_determinism()
    if torch and not before[1]:
        sys.modules["torch"].use_deterministic_algorithms(False)


@pytest.mark.slow
def test_deterministic_runs_write_identical_histories(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    args = ["fit", str(QUICKSTART), "--smoke", "--epochs", "2", "--set",
            "training.deterministic=true", "--set", "augmentation.horizontal_flip=true",
            "--run-dir"]
    # Run a here (no second start of the framework) and b in a process of its own, so the two
    # runs still share no process state. What a deterministic run switches on for its process
    # is put back afterwards: JAX's XLA_FLAGS (monkeypatch restores the environment) and
    # TensorFlow's op determinism or PyTorch's deterministic algorithms, so the later tests
    # here train as they did.
    monkeypatch.setenv("XLA_FLAGS", os.environ.get("XLA_FLAGS", ""))
    before = op_determinism()
    try:
        code, _, err = run_cli(capsys, *args, tmp_path / "a")
    finally:
        restore_op_determinism(before)
    assert code == 0, err
    script = Path(sys.executable).with_name("dltrain")
    subprocess.run([str(script), *args, str(tmp_path / "b")], check=True, capture_output=True,
                   env={**os.environ, "CI": "1"}, timeout=300)
    # The promise: the files are identical, byte for byte, but for the wall-clock `seconds`.
    texts = [(tmp_path / name / "history.csv").read_text().splitlines() for name in ("a", "b")]
    column = texts[0][0].split(",").index("seconds")

    def without_seconds(lines: list[str]) -> list[list[str]]:
        return [line.split(",")[:column] + line.split(",")[column + 1:] for line in lines]

    assert texts[0][0] == texts[1][0] and len(texts[0]) == 3  # the same header, two epochs
    assert without_seconds(texts[0]) == without_seconds(texts[1])


@pytest.mark.slow
def test_best_epoch_is_the_epoch_with_the_highest_val_precision(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", CONFIGS / "tabular_binary.yaml", "--run-dir", run,
                           "--epochs", "6", "--set", "metrics=[accuracy, precision, recall]",
                           "--set", "training.checkpoint.monitor=val_precision")
    assert code == 0, err
    precision = [float(row["val_precision"]) for row in history(run)]
    assert len(set(precision)) > 1  # else every direction picks epoch 1
    best = precision.index(max(precision)) + 1
    assert json.loads((run / "metrics.json").read_text())["best_epoch"] == best


@pytest.mark.slow
def test_early_stopping_and_the_checkpoint_watch_metrics_by_the_names_keras_logs(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    run = tmp_path / "run"
    # Keras logs Precision as written and Recall, made with arguments, as recall; the checkpoint
    # names Precision by its class's own name, precision, which watches val_Precision. No epoch
    # can improve val_recall by 10, so patience 0 stops after the second epoch: were val_recall
    # missing from the logs, Keras's EarlyStopping would only warn and train all 4.
    code, _, err = run_cli(capsys, "fit", CONFIGS / "tabular_binary.yaml", "--run-dir", run,
                           "--epochs", "4",
                           "--set", "metrics=[Precision, {name: Recall, thresholds: 0.4}]",
                           "--set", "training.early_stopping={monitor: val_recall, patience: 0, "
                           "min_delta: 10}", "--set", "training.checkpoint.monitor=val_precision")
    assert code == 0, err
    rows = history(run)
    assert len(rows) == 2 and {"val_Precision", "val_recall"} <= set(rows[0])
    precision = [float(row["val_Precision"]) for row in rows]
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs_run"] == 2
    assert metrics["best_epoch"] == precision.index(max(precision)) + 1


@dataclass
class SmokeRun:
    run: Path
    read_in: list[threading.Thread]  # the threads that read the data


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory: pytest.TempPathFactory) -> SmokeRun:
    """One `fit --smoke --epochs 2` with a horizontal flip, for the tests that read what a fit
    wrote and which thread read its data: read it, never change it."""
    import dltrain.train.fit as fit_module

    run = tmp_path_factory.mktemp("smoke") / "run"
    read_in: list[threading.Thread] = []
    load = fit_module.load_splits

    def noting(*args: object, **kwargs: object) -> object:
        read_in.append(threading.current_thread())
        return load(*args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fit_module, "load_splits", noting)
        assert main(["fit", str(QUICKSTART), "--smoke", "--run-dir", str(run), "--epochs", "2",
                     "--set", "augmentation.horizontal_flip=true"]) == 0
    return SmokeRun(run, read_in)


def test_fit_reads_the_data_beside_the_backends_start(smoke_run: SmokeRun) -> None:
    assert len(smoke_run.read_in) == 1 and smoke_run.read_in[0] is not threading.main_thread()


def test_augmentation_does_not_end_up_in_the_saved_model(smoke_run: SmokeRun) -> None:
    import keras

    model = keras.saving.load_model(smoke_run.run / "model.keras")
    names = [type(layer).__name__ for layer in model.layers]
    assert names == ["Conv2D", "MaxPooling2D", "Flatten", "Dense", "Dense"]


def test_metrics_json_says_where_the_commands_time_went(smoke_run: SmokeRun) -> None:
    metrics = json.loads((smoke_run.run / "metrics.json").read_text())
    phases = metrics["phase_seconds"]
    assert list(phases) == ["start", "build", "data", "setup", "train", "model_file", "curves",
                            "score", "smoke", "total"]
    assert all(seconds >= 0 for seconds in phases.values())
    # fit itself and the note after it; each is rounded to the ms on its own, so allow 1 ms.
    assert phases["train"] >= metrics["train_seconds"] - 0.002
    laps = round(sum(seconds for name, seconds in phases.items() if name != "total"), 3)
    assert phases["total"] - 0.05 <= laps <= phases["total"]  # the laps cover the whole fit
    assert "compilation" not in metrics  # TensorFlow gives no account of it (JAX: backends_e2e)


def test_a_fits_json_files_carry_their_schema_version_and_read_back_as_records(
        smoke_run: SmokeRun) -> None:
    from dltrain.runs import records

    run = smoke_run.run
    written = sorted(path.name for path in run.glob("*.json"))
    assert written == ["environment.json", "manifest.json", "metrics.json", "preprocessing.json",
                       "run.json"]
    for name in written:
        on_disk = json.loads((run / name).read_text())
        assert next(iter(on_disk)) == "schema_version", name
        assert on_disk["schema_version"] == records.SCHEMA_VERSION, name
        record = records.read(run, records.RECORD_OF[name])  # every key of the type it declares
        assert {"schema_version": records.SCHEMA_VERSION, **record.as_json()} == on_disk, name
    assert records.read(run, records.RunState).state == "completed"
    assert records.read(run, records.Metrics).epochs_run == 2
    assert records.read(run, records.Preprocessing).input_shape == [28, 28, 1]
    assert records.read(run, records.Environment).steps_per_execution == load_config(
        run / "config.yaml").config.steps_per_execution()


def test_a_later_fit_in_the_same_process_counts_from_its_own_call(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from dltrain.train.timing import Clock

    monkeypatch.setattr(Clock, "started_once", False)
    first = Clock.for_command()
    import dltrain

    assert first.origin == dltrain.STARTED
    before = time.perf_counter()
    assert Clock.for_command().origin >= before


def test_the_rounded_laps_never_add_up_to_more_than_the_total(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Each lap rounded on its own could: three laps of 0.6 ms made 3 ms of a 2 ms total (CI
    failed on 1.354 s of laps in 1.353 s)."""
    import time

    from dltrain.train.timing import Clock

    ticks = iter([0.0006, 0.0012, 0.0018, 0.0018])
    clock = Clock(origin=0.0)
    monkeypatch.setattr(time, "perf_counter", lambda: next(ticks))
    for phase in ("build", "data", "setup"):
        clock.lap(phase)
    phases = clock.phases()
    assert phases == {"build": 0.001, "data": 0.0, "setup": 0.001, "total": 0.002}


def test_a_background_call_gives_its_value_or_raises_its_error() -> None:
    from dltrain.errors import DataError
    from dltrain.train.timing import Background

    assert Background(lambda: 42).result() == 42

    def fail() -> None:
        raise DataError("dataset.path: no such file")

    with pytest.raises(DataError, match="no such file"):
        Background(fail).result()


@pytest.mark.slow
def test_loss_like_metrics_of_a_binary_classifier_give_the_losss_figures(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # Labels of shape (n,) against outputs (n, 1): binary_crossentropy was an internal error,
    # hinge an n-by-n broadcast, and Keras 3 knows Keras 2's `crossentropy` no more.
    import keras
    import numpy as np

    from dltrain.data.prepare import load_splits

    text = (CONFIGS / "tabular_binary.yaml").read_text().replace(
        "metrics: [accuracy]", "metrics: [accuracy, binary_crossentropy, crossentropy, hinge]")
    config_path = tmp_path / "metrics.yaml"
    config_path.write_text(text.replace("../dltrain", str(CONFIGS.parent / "dltrain")))
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", config_path, "--run-dir", run, "--epochs", "3")
    assert code == 0, err
    for row in history(run):
        assert float(row["binary_crossentropy"]) == pytest.approx(float(row["loss"]), abs=1e-4)
        assert float(row["crossentropy"]) == pytest.approx(float(row["loss"]), abs=1e-4)
    test = json.loads((run / "metrics.json").read_text())["test"]
    config = load_config(run / "config.yaml").config
    splits = load_splits(config.dataset, config.seed, config.loss_kind)
    output = keras.saving.load_model(run / "model.keras").predict(splits.x_test, verbose=0)[:, 0]
    signs = 2 * splits.y_test.reshape(-1) - 1  # Keras's hinge reads labels 0/1 as -1/1
    assert test["hinge"] == pytest.approx(float(np.mean(np.maximum(1 - signs * output, 0))),
                                          abs=1e-4)


def test_off_the_training_loop_no_callback_makes_keras_wait_for_every_batch(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """JAX and torch: Keras turns each batch's logs into Python floats, waiting for the device,
    unless every batch-level callback is async_safe. TensorBoard (written where TensorFlow is
    installed) was not, so a JAX run with TensorFlow beside it synchronised at every step."""
    from keras.src.utils.python_utils import is_default

    from dltrain.backend import tensorboard_available
    from dltrain.config.load import load_config
    from dltrain.train import keras_events
    from dltrain.train.events import Stream
    from dltrain.train.signals import Signals
    from dltrain.train.start import Start
    from dltrain.train.wiring import run_subscribers, wire

    if not tensorboard_available():
        pytest.skip("TensorBoard logs need TensorFlow")
    config = load_config(CONFIGS / "quickstart.yaml").config
    assert config.training.tensorboard
    monkeypatch.setattr(keras_events, "batches_run_ahead", lambda backend: True)  # as on JAX
    stream = Stream(run_subscribers(tmp_path, Console()))
    made = wire(stream, config, tmp_path, Console(), True, Start(None), 1, Signals()).callbacks
    assert "TensorBoard" in [type(callback).__name__ for callback in made]
    waiting = [type(callback).__name__ for callback in made
               if not getattr(callback, "async_safe", False)
               and not (is_default(callback.on_train_batch_end)
                        and is_default(callback.on_batch_end))]
    assert waiting == []
    # The stream's callbacks (the writers', then the pending-signal check's, heard last) say
    # themselves whether they may hear the batches off the loop.
    assert [type(c).__name__ for c in made if not is_default(c.on_train_batch_end)] == [
        "KerasEvents", "TensorBoard", "KerasEvents"]
    assert all(c.async_safe for c in made if type(c).__name__ == "KerasEvents")


INTERRUPTED_AS_EPOCH_2_ENDS = """
import sys
from dltrain.train.signals import PendingSignalCheck
def ctrl_c(self, event):
    if event.epoch == 2:
        raise KeyboardInterrupt
PendingSignalCheck.epoch_ended = ctrl_c
from dltrain.cli import run
run()
"""


@pytest.mark.slow
def test_an_interrupted_run_s_tensorboard_holds_its_completed_epochs(tmp_path: Path) -> None:
    """An interrupted command leaves without the interpreter's teardown (cli.run), where the
    summary writers were flushed: Keras closes them only when training ends."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader

    run = tmp_path / "run"
    done = subprocess.run(
        [sys.executable, "-c", INTERRUPTED_AS_EPOCH_2_ENDS, "fit", str(QUICKSTART), "--run-dir",
         str(run), "--set", "dataset.train_limit=300", "--set", "dataset.test_limit=100",
         "--set", "training.tensorboard=true"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "CI": "true", "PYTHONPATH": str(CONFIGS.parent)})
    assert done.returncode == 130, done.stderr[-2000:]
    [events] = (run / "tensorboard" / "train").glob("events.out.tfevents.*")
    steps = {(value.tag, event.step) for event in EventFileLoader(str(events)).Load()
             for value in event.summary.value}
    assert ("epoch_loss", 0) in steps


def test_the_training_modules_import_no_keras_before_a_backend_is_chosen() -> None:
    # `fit --resume` imports train.resume, then chooses the run's own backend: Keras imported
    # on the way (by a module that subclasses a Keras callback) would pin TensorFlow.
    code = ("import sys; import dltrain.train.resume, dltrain.train.fit, dltrain.train.loop; "
            "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
