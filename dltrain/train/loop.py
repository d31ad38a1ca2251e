"""The training loop of a prepared run: model.fit with the run's callbacks, then its final files."""

from __future__ import annotations


@dataclass
class Start:
    """Where training begins: a fresh model at epoch 0, or a resumed one with its history."""

    model: Any
    epoch: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    smoke: bool = False  # measure the training loss before and after, to see it fall
    kept: int = 0  # the epochs last.keras holds now: where a resume would start
    trained: int | None = None  # set when training is over (early stopping may end it sooner)
    callbacks: list[Any] = field(default_factory=list)  # the caller's own (a search's pruning)
    # An interrupted run's earlier epochs count for early stopping and ReduceLROnPlateau; a run
    # whose training was over and is extended with --epochs starts their counts afresh.
    interrupted: bool = False
    clock: Clock = field(default_factory=Clock)

    def __post_init__(self) -> None:
        self.kept = self.epoch


def _run(start: Start, splits: Splits, config: Config, path: Path, console: Console,
         live: bool) -> dict[str, Any]:
    """Train with the run marked running; interrupted or failed if it does not complete."""
    try:
        runs.set_state(path, "running", resumed_from_epoch=start.epoch or None)
        with Signals().installed() as signals:
            metrics = _train(start, splits, config, path, console, live, signals)
    except (KeyboardInterrupt, Terminated):
        done = start.kept
        runs.set_state(path, "interrupted", epochs_done=done, **ended(start))
        console.print(f"interrupted after {done} completed epoch(s); {path} keeps them. "
                      f"Resume with: {runs.resume_command(path)}", highlight=False, soft_wrap=True)
        raise
    except BaseException as exc:
        runs.set_state(path, "failed", error=f"{type(exc).__name__}: {exc}", **ended(start))
        raise
    runs.set_state(path, "completed")
    return metrics


def ended(start: Start) -> dict[str, int]:
    """run.json's mark that training is over, for a resume to finish the run, not train on."""
    return {} if start.trained is None else {"trained": start.trained}


def _train(start: Start, splits: Splits, config: Config, path: Path, console: Console,
           live: bool, signals: Signals) -> dict[str, Any]:
    from dltrain.model.augment import ReseedAugmentation, in_step
    from dltrain.train.callbacks import NonFiniteLoss, RaisePendingSignal
    from dltrain.train.finetune import fit_in_phases

    training = config.training
    value_max = float(splits.x_train.max(initial=1.0))
    # tf.data augments in its own parallel map (measured, tuned); elsewhere the compiled step does.
    trainer = (start.model if config.backend == "tensorflow"
               else in_step(start.model, config, value_max))
    # In the training step, the augmentation's seed state starts each epoch from (seed, epoch).
    reseed = [] if trainer is start.model else [ReseedAugmentation(config.seed)]
    augment_to = value_max if trainer is start.model else None
    inputs = fit_inputs(splits, config, start.epoch, augment_to)
    steps = math.ceil(len(splits.x_train) / training.batch_size)
    history, checkpoint, last, callbacks = _callbacks(config, path, console, live, start, steps)
    callbacks.append(RaisePendingSignal(signals))
    if config.backend != "tensorflow" and steps_may_run_ahead():  # not over JAX CPU devices
        callbacks = dispatch_off_the_loop(callbacks)
    loss_before = train_loss(start.model, splits, training.batch_size) if start.smoke else None
    start.clock.lap("setup")  # the run's files, the callbacks, the input pipeline
    started = time.perf_counter()
    diverged = False
    if start.trained is None and start.epoch < training.epochs:  # else a resume only finishes
        try:
            trainer = fit_in_phases(trainer, config, lambda model, first, last: fit_from(
                model, inputs if first == start.epoch else fit_inputs(splits, config, first,
                                                                      augment_to),
                first, last, [*reseed, *callbacks]),
                start.epoch, lambda text: print_notes(console, [text]),
                lambda model: model if augment_to is not None else in_step(model, config, value_max))
        except NonFiniteLoss:
            diverged = True
        finally:
            last.close()  # the last epoch's checkpoint is in place before anything reads it
    train_seconds = time.perf_counter() - started
    start.clock.lap("train")
    if config.backend != "jax":  # JAX's own account comes at the end (compiled_note)
        print_notes(console, compile_note(history.rows[start.epoch:]))
    if diverged or (history.rows and not all(math.isfinite(v) for v in history.rows[-1].values())):
        if (compiled := start.clock.compilations()) is not None:  # no end to print it at
            print_notes(console, [compiled_note(compiled)])
        raise RunError("the loss became NaN or infinite; training stopped. Try a lower "
                       "optimizer.learning_rate, optimizer.clipnorm, or check dataset.rescale. "
                       + kept_after_divergence(path, start.kept))
    start.trained = len(history.rows)
    runs.set_state(path, "running", resumed_from_epoch=start.epoch or None, **ended(start))
    runs.save_model(start.model, path / runs.MODEL_FILE)
    start.clock.lap("model_file")
    from dltrain.report.plots import learning_curves

    learning_curves(history.rows, checkpoint.best_epoch, checkpoint.monitor,
                    f"{config.name}: learning curves", path / runs.CURVES_FILE)
    start.clock.lap("curves")
    if score_alone():  # several processes: each scores the saved model on its own devices
        start.model = trainer = load_model(path / runs.MODEL_FILE)
    # The trainer scores as the model does (its augmentation runs in training calls only), with
    # the test step the validation compiled: one compilation fewer on JAX and torch.
    scored = score(trainer, splits, config, path, f"{config.name}: final model on the test split")
    start.clock.lap("score")
    if checkpoint.best_epoch is None and start.history:  # no epoch trained: weigh the run's own
        checkpoint.set_model(start.model)
        checkpoint.settle()
    epochs_now = len(history.rows) - start.epoch
    metrics = {
        **scored,
        "epochs_run": len(history.rows),
        "best_epoch": checkpoint.best_epoch,
        "resumed_at_epoch": start.epoch or None,
        "train_samples": len(splits.x_train),
        "validation_samples": 0 if splits.x_val is None else len(splits.x_val),
        "train_seconds": round(train_seconds, 3),
        # Every session's epochs, a resumed run's too (train_seconds: this command's only).
        "train_seconds_total": round(sum(row.get("seconds") or 0.0 for row in history.rows), 3),
        "samples_per_second": (round(len(splits.x_train) * epochs_now / train_seconds, 1)
                               if epochs_now else None),
        "final_epoch": history.rows[-1] if history.rows else {},
        **({"synthetic": True} if splits.synthetic else {}),
    }
    if loss_before is not None:
        after = train_loss(start.model, splits, training.batch_size)
        metrics["smoke"] = {"loss_before": loss_before, "loss_after": after,
                            "passed": math.isfinite(after) and after < loss_before}
        start.clock.lap("smoke")
    metrics["phase_seconds"] = start.clock.phases()
    compiled = start.clock.compilations()
    if compiled is not None:
        metrics["compilation"] = dataclasses.asdict(compiled)
        print_notes(console, [compiled_note(compiled)])
    runs.write_json(path / runs.METRICS_FILE, metrics)
    return metrics


def fit_from(model: Any, inputs: dict[str, Any], first: int, last: int,
             callbacks: list[Any]) -> Any:
    """model.fit from epoch `first` to `last`, the data's own callbacks first."""
    data = {key: value for key, value in inputs.items() if key != "callbacks"}
    return model.fit(**data, epochs=last, initial_epoch=first, verbose=0, shuffle=False,
                     callbacks=[*inputs["callbacks"], *callbacks])


def kept_after_divergence(path: Path, kept: int) -> str:
    """What a diverged run keeps, by the files that exist."""
    if kept == 0:
        return ("No epoch completed, so no checkpoint was kept; start the run again with dltrain "
                "fit once the config is changed.")
    best = (f" and the best one in {path / runs.BEST_FILE}" if (path / runs.BEST_FILE).is_file()
            else "")
    return f"The last good epoch ({kept}) is kept in {path / runs.LAST_FILE}{best}."


def fit_inputs(splits: Splits, config: Config, epoch: int,
               augment_to: float | None) -> dict[str, Any]:
    """model.fit's data arguments: shuffled training data and the validation data, the training
    data augmented here when `augment_to` gives its value range (None: the model augments),
    and the callbacks the data needs (`callbacks`). Each epoch's order and draws are functions
    of (seed, epoch), so a run resumed at `epoch` trains on what the uninterrupted run did.

    Endless datasets with steps per epoch keep one iterator for the whole fit (see pipeline).
    Keras runs whole executions, so with steps_per_execution > 1 an endless dataset would shift
    the epochs' boundaries: then each epoch gets its own iterator, told its epoch by a clock.
    """
    from dltrain.data.pipeline import epoch_clock
    from dltrain.model.augment import make_augmenter

    training = config.training
    batch = training.batch_size
    # tf.data only: other backends get one pass per epoch from a PyDataset (see pipeline).
    repeat = config.steps_per_execution() == 1 and config.backend == "tensorflow"
    augmenter = (None if augment_to is None
                 else make_augmenter(config.augmentation, config.seed, value_max=augment_to))
    clock = epoch_clock(epoch)
    inputs: dict[str, Any] = {"x": pipeline(
        splits.x_train, splits.y_train, batch, shuffle=training.shuffle, seed=config.seed,
        augmenter=augmenter, repeat=repeat, first_epoch=epoch, clock=clock), "callbacks": [clock]}
    if splits.validation is not None:
        inputs["validation_data"] = pipeline(*splits.validation, batch, repeat=repeat)
    if repeat:
        inputs["steps_per_epoch"] = math.ceil(len(splits.x_train) / batch)
        if splits.x_val is not None:
            inputs["validation_steps"] = math.ceil(len(splits.x_val) / batch)
    return inputs


def train_loss(model: Any, splits: Splits, batch_size: int) -> float:
    """The loss on the training data as it stands, without augmentation or dropout."""
    logs = model.evaluate(pipeline(splits.x_train, splits.y_train, batch_size), verbose=0,
                          return_dict=True)
    return float(logs["loss"])


def dispatch_off_the_loop(callbacks: list[Any]) -> list[Any]:
    """The callbacks, made safe for Keras's worker thread (JAX, torch).

    With any batch-level callback that is not `async_safe`, Keras turns every batch's logs into
    Python floats before the next step, waiting for the device: one such callback cost a plain
    Keras script 25-60% per epoch on an H200 (BENCHMARKS.md). The pending-signal check only
    reads a flag, the best checkpoint's batch hook (Keras's, for save_freq) does nothing at
    save_freq "epoch", the live progress bar's updates take rich's lock, TensorBoard's batch
    hook writes nothing at update_freq "epoch" (dltrain's) without a profiler, and
    TerminateOnNaN becomes StopOnNonFinite, which raises. A NaN or a signal then stops training
    a batch or two later; the last good epoch is kept as before. TensorFlow keeps the
    synchronous dispatch its tests pin down.
    """
    from dltrain.backend import keras_module
    from dltrain.train.callbacks import (
        BestCheckpoint,
        RaisePendingSignal,
        RichProgress,
        StopOnNonFinite,
    )

    stock = keras_module().callbacks
    made = [StopOnNonFinite() if isinstance(callback, stock.TerminateOnNaN) else callback
            for callback in callbacks]
    for callback in made:
        if isinstance(callback, (RaisePendingSignal, BestCheckpoint, RichProgress,
                                 stock.TensorBoard)):
            callback.async_safe = True
    return made


def _callbacks(config: Config, path: Path, console: Console, live: bool, start: Start,
               steps: int) -> tuple[Any, Any, Any, list[Any]]:
    from dltrain.backend import keras_module, tensorboard_available
    from dltrain.train.callbacks import (
        BestCheckpoint,
        HistoryFile,
        LastCheckpoint,
        PlainProgress,
        QuietTerminateOnNaN,
        ResumedEarlyStopping,
        ResumedReduceLROnPlateau,
        RichProgress,
        SettleBest,
    )

    stock = keras_module().callbacks
    training = config.training
    checkpoint = BestCheckpoint(path / runs.BEST_FILE, config.checkpoint_monitor,
                                training.checkpoint.save_best_only, start.history,
                                path / runs.LAST_FILE)
    progress = (RichProgress(console, training.epochs, steps, start.epoch) if live
                else PlainProgress(console, training.epochs))
    # At each epoch's end: the history row, then last.keras (the training state: --resume keeps
    # the rows it holds and drops a newer one), then best.keras (which --resume mends from
    # last.keras when a kill came between them: SettleBest, before last.keras moves).
    # Several processes: a variable laid out over all of them is not this host's alone to copy;
    # save in place.
    last = LastCheckpoint(path, lambda epoch: setattr(start, "kept", epoch), checkpoint,
                          background=current().processes == 1)
    history = HistoryFile(path / runs.HISTORY_FILE, start.history, wait_for=last.close)
    callbacks = [QuietTerminateOnNaN(), history, SettleBest(checkpoint), last, checkpoint,
                 progress]
    earlier = start.history if start.interrupted else []
    if training.early_stopping is not None:
        callbacks.insert(0, ResumedEarlyStopping(
            earlier, checkpoint if training.checkpoint.save_best_only else None,
            lambda text: print_notes(console, [text]), **training.early_stopping.model_dump()))
    if training.reduce_lr_on_plateau is not None:
        callbacks.insert(0, ResumedReduceLROnPlateau(
            earlier, **training.reduce_lr_on_plateau.model_dump()))
    if training.tensorboard and tensorboard_available():
        callbacks.append(stock.TensorBoard(log_dir=str(path / runs.TENSORBOARD_DIR), write_graph=False))
    elif training.tensorboard:
        print_notes(console, [f"training.tensorboard: no TensorBoard logs on the {config.backend} "
                              "backend without TensorFlow installed (Keras writes them through "
                              "tf.summary); pip install tensorflow to get them."])
    return history, checkpoint, last, [*callbacks, *start.callbacks]
