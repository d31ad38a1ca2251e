"""dltrain's own callbacks, driven the way Keras drives them, on real compiled tiny models."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from dltrain.backend import keras_module
from dltrain.errors import ConfigError
from dltrain.train.checkpoints import BestCheckpoint, LastCheckpoint, SettleBest
from dltrain.train.events import EpochEnded, FitBegan, Stream
from dltrain.train.keras_events import KerasEvents

# Monitored values for four epochs: a metric that goes up is best at epoch 2, one that goes
# down at epoch 3; a guess from the name that gets the direction wrong picks the other one.
SCRIPT = [0.5, 0.9, 0.2, 0.7]
UP = ["accuracy", "precision", "recall", "auc", "binary_accuracy", "f1_score", "r2_score"]
DOWN = ["loss", "mae", "mean_squared_error", "mse", "binary_crossentropy"]


def compiled(metrics: list[Any]) -> Any:
    """A 3-input, 1-output sigmoid model, compiled and fitted once so its metrics are built."""
    keras = keras_module()
    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1, activation="sigmoid")])
    # Eagerly: one batch, where tracing a graph would cost more than the step.
    model.compile(optimizer="sgd", loss="binary_crossentropy", metrics=metrics, run_eagerly=True)
    x = np.random.default_rng(0).random((8, 3), dtype=np.float32)
    y = (x[:, :1] > 0.5).astype("float32")
    model.fit(x, y, validation_data=(x, y), epochs=1, verbose=0)
    return model


@pytest.fixture(scope="module")
def model() -> Any:
    return compiled([name for name in UP + DOWN if name != "loss"])


def drive(checkpoint: BestCheckpoint, model: Any, values: list[float], first: int = 0) -> None:
    """What model.fit does with a callback, with the monitored value scripted per epoch."""
    checkpoint.fit_began(FitBegan(model))
    for epoch, value in enumerate(values, start=first):
        checkpoint.epoch_ended(EpochEnded(epoch + 1, {"loss": 1.0, checkpoint.monitor: value},
                                          0.0, model))


@pytest.mark.parametrize("monitor", [prefix + name for name in UP + DOWN
                                     for prefix in ("", "val_")])
def test_best_checkpoint_takes_the_direction_from_the_metric(
        monitor: str, model: Any, tmp_path: Path) -> None:
    checkpoint = BestCheckpoint(tmp_path / "best.keras", monitor, True, [])
    drive(checkpoint, model, SCRIPT)
    up = monitor.removeprefix("val_") in UP
    assert checkpoint.best_epoch == (2 if up else 3)
    assert checkpoint.best == (0.9 if up else 0.2)
    assert (tmp_path / "best.keras").is_file()


def test_a_resumed_run_competes_with_its_earlier_epochs(model: Any, tmp_path: Path) -> None:
    earlier = [{"epoch": 1, "val_precision": 0.4}, {"epoch": 2, "val_precision": 0.8}]
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_precision", True, earlier)
    drive(checkpoint, model, [0.6, 0.7], first=2)
    assert checkpoint.best_epoch == 2 and checkpoint.best == 0.8
    assert not (tmp_path / "best.keras").exists()  # no later epoch beat epoch 2's
    drive(checkpoint, model, [0.85], first=4)
    assert checkpoint.best_epoch == 5 and (tmp_path / "best.keras").is_file()


@pytest.mark.parametrize(("earlier", "mended"), [([0.4, 0.8], True), ([0.8, 0.4], False)])
def test_a_resumed_run_mends_best_keras_from_last_keras(
        model: Any, tmp_path: Path, earlier: list[float], mended: bool) -> None:
    """A kill between last.keras and best.keras of the last epoch left best.keras older."""
    model.save(tmp_path / "last.keras")
    (tmp_path / "best.keras").write_bytes(b"epoch 1's")
    rows = [{"epoch": epoch, "val_precision": value} for epoch, value in enumerate(earlier, 1)]
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_precision", True, rows,
                                tmp_path / "last.keras")
    checkpoint.set_model(model)
    # the resumed run's first epoch end, before last.keras
    SettleBest(checkpoint).epoch_ended(EpochEnded(3, {}, 0.0, model))
    assert checkpoint.best_epoch == (2 if mended else 1)
    best = (tmp_path / "best.keras").read_bytes()
    assert (best == (tmp_path / "last.keras").read_bytes()) == mended
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras", "last.keras"]


def test_non_finite_values_are_never_the_best(model: Any, tmp_path: Path) -> None:
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_loss", True, [])
    drive(checkpoint, model, [math.nan, 0.5, math.inf])
    assert checkpoint.best_epoch == 2


def test_save_best_only_false_keeps_the_latest_finite_epoch(model: Any, tmp_path: Path) -> None:
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_accuracy", False, [])
    drive(checkpoint, model, [0.9, 0.1, math.nan])
    assert checkpoint.best_epoch == 2 and (tmp_path / "best.keras").is_file()


def test_the_checkpoint_is_written_whole_through_a_temporary_file(
        model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[str] = []
    original = type(model).save

    def save(self: Any, path: Any, *args: Any, **kwargs: Any) -> None:
        saved.append(Path(path).name)
        original(self, path, *args, **kwargs)

    monkeypatch.setattr(type(model), "save", save)
    drive(BestCheckpoint(tmp_path / "best.keras", "val_auc", True, []), model, [0.5, 0.6])
    assert len(saved) == 2 and all(name.startswith(".best.keras.") for name in saved)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.keras"]


def test_a_metric_without_a_direction_is_refused_before_the_first_epoch(tmp_path: Path) -> None:
    keras = keras_module()
    guess = keras.metrics.MeanMetricWrapper(lambda y_true, y_pred: y_pred, name="mean_output")
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_mean_output", True, [])
    with pytest.raises(ConfigError) as caught:
        drive(checkpoint, compiled([guess]), [0.5])
    assert str(caught.value) == (
        "training.checkpoint.monitor must name a metric whose direction Keras knows (loss or "
        "a built-in metric, val_ for validation). Received: 'val_mean_output'; the model's "
        "metrics are loss, mean_output.")


def test_an_improving_epoch_copies_last_keras_instead_of_saving_the_model_twice(
        model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dltrain.train.saver as saver

    saves: list[str] = []
    real_save = saver.save_model
    monkeypatch.setattr(saver, "save_model",
                        lambda m, path: (saves.append(path.name), real_save(m, path)))
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_loss", True, [],
                                tmp_path / "last.keras")
    last = LastCheckpoint(tmp_path, lambda epoch: None, best=checkpoint)
    checkpoint.fit_began(FitBegan(model))
    for epoch, value in enumerate([0.5, 0.7, 0.3], 1):  # epochs 1 and 3 improve
        ended = EpochEnded(epoch, {"loss": 1.0, "val_loss": value}, 0.0, model)
        last.epoch_ended(ended)  # fit's order: last.keras first, then best.keras
        checkpoint.epoch_ended(ended)
    last.close()
    # Keras saved last.keras once (and the template of the later writes); best.keras never.
    assert saves == ["last.keras", "template.keras"]
    assert (tmp_path / "best.keras").read_bytes() == (tmp_path / "last.keras").read_bytes()
    assert checkpoint.best_epoch == 3


def test_best_keras_is_saved_when_last_keras_skipped_the_epoch(
        model: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dltrain.train.checkpoints as callbacks

    saves: list[str] = []
    monkeypatch.setattr(callbacks, "save_model", lambda m, path: saves.append(path.name))
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_loss", True, [],
                                tmp_path / "last.keras")
    last = LastCheckpoint(tmp_path, lambda epoch: None, best=checkpoint)
    checkpoint.fit_began(FitBegan(model))
    ended = EpochEnded(1, {"loss": math.nan, "val_loss": 0.5}, 0.0, model)  # not a good epoch
    last.epoch_ended(ended)
    checkpoint.epoch_ended(ended)
    assert saves == ["best.keras"]


# Early stopping's best epoch from before a resume: its weights are in best.keras when the
# checkpoint watches the same metric; Keras alone kept the first resumed epoch's.
BEFORE = [{"epoch": 1, "val_loss": 0.9}, {"epoch": 2, "val_loss": 0.2}, {"epoch": 3, "val_loss": 0.5}]


def resumed_stopping(model: Any, tmp_path: Path, checkpoint_monitor: str,
                     notes: list[str]) -> list[Any]:
    """Epoch 2's weights in best.keras, the resume's (epoch 3's) in the model; then one more
    epoch, worse than epoch 2, with other weights. Returns the model's weights at the end."""
    from dltrain.train.plateau import ResumedEarlyStopping

    keras = keras_module()
    shapes = [w.shape for w in model.get_weights()]
    best, resumed, later = ([np.full(s, value, "float32") for s in shapes] for value in (2, 3, 4))
    model.set_weights(best)
    model.save(tmp_path / "best.keras")
    model.set_weights(resumed)
    rows = [{**row, "val_accuracy": 0.5} for row in BEFORE]
    checkpoint = BestCheckpoint(tmp_path / "best.keras", checkpoint_monitor, True, rows)
    stopping = ResumedEarlyStopping(rows, monitor="val_loss", patience=5,
                                    restore_best_weights=True, best=checkpoint,
                                    notify=notes.append)
    callbacks = keras.callbacks.CallbackList(
        [stopping, KerasEvents(Stream([SettleBest(checkpoint), checkpoint]), "tensorflow")],
        model=model)
    callbacks.on_train_begin()
    callbacks.on_epoch_begin(3)
    model.set_weights(later)
    callbacks.on_epoch_end(3, {"loss": 1.0, "val_loss": 0.6, "val_accuracy": 0.4})
    callbacks.on_train_end()
    return [float(w.flat[0]) for w in model.get_weights()]


def test_a_best_epoch_before_the_resume_ends_the_run_with_its_weights(
        model: Any, tmp_path: Path) -> None:
    notes: list[str] = []
    assert set(resumed_stopping(model, tmp_path, "val_loss", notes)) == {2.0}
    assert notes == []


def test_a_best_epoch_that_min_delta_kept_from_best_keras_is_told(
        model: Any, tmp_path: Path) -> None:
    from dltrain.train.plateau import ResumedEarlyStopping

    rows = [{"epoch": 1, "val_loss": 0.5}, {"epoch": 2, "val_loss": 0.45},
            {"epoch": 3, "val_loss": 0.7}]
    checkpoint = BestCheckpoint(tmp_path / "best.keras", "val_loss", True, rows)
    notes: list[str] = []
    stopping = ResumedEarlyStopping(rows, monitor="val_loss", patience=5, min_delta=0.1,
                                    restore_best_weights=True, best=checkpoint,
                                    notify=notes.append)
    callbacks = keras_module().callbacks.CallbackList(
        [stopping, KerasEvents(Stream([checkpoint]), "tensorflow")], model=model)
    callbacks.on_train_begin()
    callbacks.on_epoch_end(3, {"loss": 1.0, "val_loss": 0.6})
    assert notes == [
        "training.early_stopping.restore_best_weights: epoch 1 was the best by val_loss before "
        "the resume, and its weights were not kept (best.keras holds epoch 2, the best by "
        "val_loss, which early stopping's min_delta did not count as better); unless a later "
        "epoch does better, the final model holds the first resumed epoch's weights."]


def test_a_best_epoch_whose_weights_are_gone_is_told(model: Any, tmp_path: Path) -> None:
    notes: list[str] = []
    resumed_stopping(model, tmp_path, "val_accuracy", notes)
    assert notes == [
        "training.early_stopping.restore_best_weights: epoch 2 was the best by val_loss before "
        "the resume, and its weights were not kept (best.keras holds epoch 1, the best by "
        "val_accuracy); unless a later epoch does better, the final model holds the first "
        "resumed epoch's weights. A checkpoint.monitor of val_loss keeps them for a resume."]
