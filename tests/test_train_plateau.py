"""EarlyStopping and ReduceLROnPlateau in a resumed run count the epochs before the resume, so
the run stops and lowers its learning rate at the epochs the uninterrupted run would have."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from dltrain.backend import keras_module
from dltrain.train.plateau import ResumedEarlyStopping, ResumedReduceLROnPlateau


@pytest.fixture()
def model() -> Any:
    keras = keras_module()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    # Eagerly: one batch, where tracing a graph would cost more than the step.
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="binary_crossentropy",
                  run_eagerly=True)
    x = np.random.default_rng(0).random((8, 3), dtype=np.float32)
    model.fit(x, (x[:, :1] > 0.5).astype("float32"), epochs=1, verbose=0)
    return model


def drive(callback: Any, model: Any, values: list[float], first: int = 0) -> list[float]:
    """What model.fit does with the callback, val_loss scripted per epoch; the learning rates
    at each epoch's end (after the callback), and whether it stopped, as model.fit reads it."""
    callback.set_model(model)
    model.stop_training = False
    callback.on_train_begin()
    rates = []
    for epoch, value in enumerate(values, start=first):
        if model.stop_training:
            break
        logs = {"loss": 1.0, "val_loss": value}
        callback.on_epoch_end(epoch, logs)
        rates.append(float(np.asarray(model.optimizer.learning_rate)))
    return rates


def rows(values: list[float], rates: list[float] | None = None) -> list[dict[str, float]]:
    """history.csv's rows for these epochs (ReduceLROnPlateau logs each epoch's rate)."""
    return [{"epoch": i + 1, "loss": 1.0, "val_loss": v,
             **({"learning_rate": rates[i]} if rates else {})} for i, v in enumerate(values)]


VALUES = [0.5, 0.4, 0.45, 0.46, 0.47]  # best at epoch 2: patience 2 stops after epoch 4


def test_early_stopping_resumed_stops_where_the_uninterrupted_run_did(model: Any) -> None:
    whole = keras_module().callbacks.EarlyStopping(monitor="val_loss", patience=2)
    drive(whole, model, VALUES)
    assert whole.stopped_epoch == 3  # 0-based: after the 4th epoch
    resumed = ResumedEarlyStopping(rows(VALUES[:3]), monitor="val_loss", patience=2)
    drive(resumed, model, VALUES[3:], first=3)
    assert resumed.stopped_epoch == 3 and model.stop_training
    assert resumed.best == 0.4 and resumed.best_epoch == 1


def test_early_stopping_from_keras_forgets_the_epochs_before_the_resume(model: Any) -> None:
    """Why the replay: Keras's own callback restarts its patience at every fit."""
    plain = keras_module().callbacks.EarlyStopping(monitor="val_loss", patience=2)
    drive(plain, model, VALUES[3:], first=3)
    assert plain.stopped_epoch == 0 and not model.stop_training


def test_restore_best_weights_resumed_at_the_best_epoch_keeps_its_weights(model: Any) -> None:
    at_resume = model.get_weights()
    resumed = ResumedEarlyStopping(rows(VALUES[:2]), monitor="val_loss", patience=2,
                                   restore_best_weights=True)
    drive(resumed, model, VALUES[2:], first=2)
    assert resumed.best_epoch == 1
    for kept, weights in zip(resumed.best_weights, at_resume, strict=True):
        np.testing.assert_array_equal(kept, weights)


def test_reduce_lr_resumed_keeps_its_wait_and_cooldown(model: Any) -> None:
    """patience 1, cooldown 2: the uninterrupted run lowers the rate after epochs 2, 4 and 6."""
    values = [0.5, 0.6, 0.7, 0.8, 0.9, 1.0]
    keras = keras_module()
    model.optimizer.learning_rate = 0.1
    whole = drive(keras.callbacks.ReduceLROnPlateau(monitor="val_loss", patience=1, cooldown=2,
                                                    factor=0.5), model, values)
    assert whole == pytest.approx([0.1, 0.05, 0.05, 0.025, 0.025, 0.0125])
    model.optimizer.learning_rate = 0.05  # what last.keras holds after epoch 3
    resumed = drive(ResumedReduceLROnPlateau(
        rows(values[:3], [0.1, 0.1, 0.05]), monitor="val_loss", patience=1, cooldown=2,
        factor=0.5), model, values[3:], first=3)
    assert resumed == pytest.approx(whole[3:])


def twice_named(keras: Any) -> Any:
    """A model whose two metrics Keras logs as precision and precision_1."""
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=[
        "precision", keras.metrics.Precision(thresholds=0.9, name="precision")],
        run_eagerly=True)
    x = np.random.default_rng(0).random((8, 3), dtype=np.float32)
    model.fit(x, (x[:, :1] > 0.5).astype("float32"), epochs=1, verbose=0)
    return model


@pytest.mark.parametrize("kind", ["early_stopping", "reduce_lr", "checkpoint"])
def test_a_numbered_monitor_goes_the_way_of_the_metric_it_numbers(kind: str, tmp_path: Any) -> None:
    """Keras finds a monitor's direction by the metrics' own names, which are not numbered:
    val_precision_1 raised "Keras isn't able to automatically determine" (an internal error)."""
    from dltrain.train.checkpoints import BestCheckpoint

    keras = keras_module()
    model = twice_named(keras)
    callback = {
        "early_stopping": lambda: ResumedEarlyStopping([], monitor="val_precision_1", patience=1),
        "reduce_lr": lambda: ResumedReduceLROnPlateau([], monitor="val_precision_1"),
        "checkpoint": lambda: BestCheckpoint(tmp_path / "best.keras", "val_precision_1", True,
                                             []),
    }[kind]()
    callback.set_model(model)
    callback.on_train_begin()
    logs = {"loss": 1.0, "val_precision_1": 0.5}
    if kind == "checkpoint":  # a subscriber of the run's events, not a Keras hook
        from dltrain.train.events import EpochEnded

        callback.epoch_ended(EpochEnded(1, logs, 0.0, model))
    else:
        callback.on_epoch_end(0, logs)
    assert callback.monitor == "val_precision_1"
    assert callback.monitor_op(0.6, 0.5)  # up is better, as for precision


@pytest.mark.slow
def test_fit_monitors_a_numbered_metric(tmp_path: Any, capsys: pytest.CaptureFixture[str]) -> None:
    from conftest import CONFIGS, run_cli

    run = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "fit", CONFIGS / "tabular_binary.yaml", "--smoke", "--epochs", "2", "--run-dir",
        run, "--set", "metrics=[precision, {name: Precision, thresholds: 0.9}]", "--set",
        "training.early_stopping={monitor: val_precision_1, patience: 1}", "--set",
        "training.checkpoint={monitor: val_precision_1}")
    assert code == 0, err
    assert "val_precision_1" in (run / "history.csv").read_text().splitlines()[0]
    assert (run / "best.keras").is_file()
