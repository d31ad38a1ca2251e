"""Fit and evaluate: seed, build, load data, train with callbacks, write the run directory."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console

from dltrain import runs
from dltrain.build import build_model, keras_module, quiet_native_logs
from dltrain.config import Loaded, dump, load_config
from dltrain.data import Splits, check_fits_model, load_splits
from dltrain.errors import RunError
from dltrain.schema import Config

Device = Literal["auto", "cpu", "gpu"]


@dataclass
class FitResult:
    run_dir: Path
    metrics: dict[str, Any]
    notes: list[str] = field(default_factory=list)


def prepare_runtime(device: Device, seed: int, deterministic: bool) -> str:
    """Pick the device, seed Python/NumPy/TensorFlow; returns what will run the model."""
    keras_module()
    import tensorflow as tf

    with quiet_native_logs():
        gpus = tf.config.list_physical_devices("GPU")
    if device == "gpu" and not gpus:
        raise RunError("--device gpu: TensorFlow sees no GPU here. Use --device cpu or auto.")
    if device == "cpu" and gpus:
        tf.config.set_visible_devices([], "GPU")
        gpus = []
    keras_module().utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    return f"GPU ({', '.join(g.name for g in gpus)})" if gpus else "CPU"


def pipeline(x: Any, y: Any, batch_size: int, *, shuffle: bool = False, seed: int = 0,
             augmenter: Any = None) -> Any:
    """A tf.data pipeline: shuffle each epoch, batch, augment in parallel, prefetch."""
    import tensorflow as tf

    data = tf.data.Dataset.from_tensor_slices((x, y))
    if shuffle:
        data = data.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    data = data.batch(batch_size)
    if augmenter is not None:
        data = data.map(lambda images, labels: (augmenter(images), labels),
                        num_parallel_calls=tf.data.AUTOTUNE)
    return data.prefetch(tf.data.AUTOTUNE)


def fit(loaded: Loaded, *, run_dir: Path | None, device: Device, console: Console,
        live: bool) -> FitResult:
    """Everything that can fail on the user's input fails before the run directory exists."""
    config = loaded.config
    device_name = prepare_runtime(device, config.seed, config.training.deterministic)
    model = build_model(config)
    splits = load_splits(config.dataset, config.seed, config.loss_name)
    check_fits_model(splits, model.input_shape[1:], model.output_shape[-1], config.loss_name)
    from dltrain.augment import make_augmenter

    augmenter = make_augmenter(config.augmentation, config.seed,
                               value_max=float(splits.x_train.max(initial=1.0)))
    path = runs.new_run_dir(config, run_dir)
    runs.write_atomic(path / runs.CONFIG_FILE, dump(config))
    runs.write_json(path / runs.ENV_FILE, runs.environment(device_name))
    runs.set_state(path, "running")
    console.print(f"run directory: {path}", highlight=False)
    try:
        metrics = _train(model, splits, config, path, augmenter, console, live)
    except KeyboardInterrupt:
        runs.set_state(path, "interrupted")
        console.print(f"interrupted: {path} is marked interrupted; history.csv and best.keras "
                      "hold the epochs that finished.", highlight=False, soft_wrap=True)
        raise
    except BaseException as exc:
        runs.set_state(path, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    runs.set_state(path, "completed")
    return FitResult(path, metrics, loaded.notes)


def _train(model: Any, splits: Splits, config: Config, path: Path, augmenter: Any,
           console: Console, live: bool) -> dict[str, Any]:
    training = config.training
    train_data = pipeline(splits.x_train, splits.y_train, training.batch_size,
                          shuffle=training.shuffle, seed=config.seed, augmenter=augmenter)
    val = splits.validation
    val_data = None if val is None else pipeline(*val, training.batch_size)
    history, checkpoint, callbacks = _callbacks(config, path, console, live,
                                                math.ceil(len(splits.x_train) / training.batch_size))
    started = time.perf_counter()
    model.fit(train_data, validation_data=val_data, epochs=training.epochs, verbose=0, shuffle=False,
              callbacks=callbacks)
    train_seconds = time.perf_counter() - started
    if history.rows and not all(math.isfinite(v) for v in history.rows[-1].values()):
        raise RunError("the loss became NaN or infinite; training stopped. Try a lower "
                       "optimizer.learning_rate, optimizer.clipnorm, or check dataset.rescale.")
    test = evaluate(model, splits, training.batch_size)
    runs.save_model(model, path / runs.MODEL_FILE)
    epochs = len(history.rows)
    metrics = {
        "test": test,
        "epochs_run": epochs,
        "best_epoch": checkpoint.best_epoch,
        "train_samples": len(splits.x_train),
        "validation_samples": 0 if val is None else len(val[0]),
        "test_samples": len(splits.x_test),
        "train_seconds": round(train_seconds, 3),
        "samples_per_second": round(len(splits.x_train) * epochs / train_seconds, 1),
        "final_epoch": history.rows[-1] if history.rows else {},
    }
    runs.write_json(path / runs.METRICS_FILE, metrics)
    return metrics


def _callbacks(config: Config, path: Path, console: Console, live: bool,
               steps: int) -> tuple[Any, Any, list[Any]]:
    from dltrain.callbacks import BestCheckpoint, HistoryFile, PlainProgress, RichProgress

    stock = keras_module().callbacks
    training = config.training
    history = HistoryFile(path / runs.HISTORY_FILE)
    checkpoint = BestCheckpoint(path / runs.BEST_FILE, config.checkpoint_monitor,
                                training.checkpoint.save_best_only)
    progress = (RichProgress(console, training.epochs, steps) if live
                else PlainProgress(console, training.epochs))
    callbacks = [stock.TerminateOnNaN(), history, checkpoint, progress]
    if training.early_stopping is not None:
        callbacks.insert(0, stock.EarlyStopping(**training.early_stopping.model_dump()))
    if training.reduce_lr_on_plateau is not None:
        callbacks.insert(0, stock.ReduceLROnPlateau(**training.reduce_lr_on_plateau.model_dump()))
    return history, checkpoint, callbacks


def evaluate(model: Any, splits: Splits, batch_size: int) -> dict[str, float]:
    results = model.evaluate(pipeline(splits.x_test, splits.y_test, batch_size), verbose=0,
                             return_dict=True)
    return {key: float(value) for key, value in results.items()}


def evaluate_run(run_dir: Path, *, model_path: Path | None = None,
                 config_path: Path | None = None, device: Device = "auto") -> dict[str, Any]:
    """Reload a saved model (safe_mode) and score it on the test split its run used."""
    if model_path is None:
        state = runs.read_json(run_dir / runs.STATE_FILE).get("state")
        if state != "completed":
            raise RunError(f"{run_dir}: the run is '{state}', not completed; its model.keras may "
                           f"be missing or stale. Evaluate its checkpoint with --model "
                           f"{run_dir / runs.BEST_FILE}.")
    config = _run_config(config_path or run_dir / runs.CONFIG_FILE)
    prepare_runtime(device, config.seed, config.training.deterministic)
    model = load_model(model_path or run_dir / runs.MODEL_FILE)
    splits = load_splits(config.dataset, config.seed, config.loss_name)
    check_fits_model(splits, model.input_shape[1:], model.output_shape[-1], config.loss_name)
    return {"test": evaluate(model, splits, config.training.batch_size),
            "test_samples": len(splits.x_test), "model": str(model_path or run_dir / runs.MODEL_FILE)}


def _run_config(path: Path) -> Config:
    if not path.is_file():
        raise RunError(f"{path}: missing; pass a run directory made by dltrain fit, or --config.")
    return load_config(path).config


def load_model(path: Path) -> Any:
    """Load with safe_mode, so a model file carrying code (a Lambda layer) is refused."""
    if not path.is_file():
        raise RunError(f"{path}: no such model file.")
    keras = keras_module()
    try:
        return keras.saving.load_model(path, safe_mode=True)
    except ValueError as exc:
        raise RunError(f"{path}: refused or unreadable model file: {str(exc).splitlines()[0]}") \
            from None
