"""Score a saved model on the test split its run used, with the same data preparation."""

from __future__ import annotations

import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dltrain.backend import Device, keras_module, prepare_runtime
from dltrain.config.load import load_config
from dltrain.config.schema import Config
from dltrain.data.pipeline import pipeline
from dltrain.data.prepare import Splits, check_fits_model, load_splits
from dltrain.errors import RunError
from dltrain.runs import layout as runs
from dltrain.runs import lock, names, records
from dltrain.tasks.base import Figure


def evaluate(model: Any, splits: Splits, batch_size: int) -> dict[str, float]:
    results = model.evaluate(pipeline(splits.x_test, splits.y_test, batch_size), verbose=0,
                             return_dict=True)
    return {key: float(value) for key, value in results.items()}


def predict_whole_batches(model: Any, x: Any, y: Any, batch_size: int) -> np.ndarray:
    """model.predict with the last, partial batch padded to a whole one (repeating its last
    sample) and the padding's outputs dropped: predictions do not depend on the rest of their
    batch, and the model is compiled for one batch shape instead of two; each costs seconds of
    compilation on a GPU from cold (issue #14)."""
    whole = len(x) // batch_size * batch_size
    if whole in (0, len(x)):
        return np.asarray(model.predict(pipeline(x, y, batch_size), verbose=0))
    rest = len(x) - whole
    pad = batch_size - rest
    tail_x = np.concatenate([x[whole:], np.repeat(x[-1:], pad, axis=0)])
    tail_y = np.concatenate([y[whole:], np.repeat(y[-1:], pad, axis=0)])
    head = model.predict(pipeline(x[:whole], y[:whole], batch_size), verbose=0)
    tail = model.predict(pipeline(tail_x, tail_y, batch_size), verbose=0)
    return np.concatenate([np.asarray(head), np.asarray(tail)[:rest]])


class Picture(Protocol):
    """Draws one PNG file into a run directory, returning its name: the run's own, or with
    `model_stem`, named after another model file (names.for_model)."""

    def __call__(self, folder: Path, model_stem: str | None = None) -> str: ...


# The run file of each picture a task's evaluation draws, by its report.plots function.
PICTURE_FILES = {"confusion_matrix": runs.CONFUSION_FILE,
                 "predicted_vs_actual": runs.PREDICTED_FILE, "residuals": runs.RESIDUALS_FILE}


def score(model: Any, splits: Splits, config: Config, folder: Path | None, title: str,
          pictures: list[Picture] | None = None) -> dict[str, Any]:
    """Test metrics, and for classifiers the per-class report and the confusion matrix, for a
    regression MAE, RMSE and R² in the targets' units and their plots.

    The plots are drawn into `folder` when given, else added to `pictures` for later.
    """
    result: dict[str, Any] = {"test": evaluate(model, splits, config.training.batch_size),
                              "test_samples": len(splits.x_test)}
    drawings: list[Picture] = []
    task = config.task_spec
    if task.report_key is not None:
        outputs = predict_whole_batches(model, splits.x_test, splits.y_test,
                                        config.training.batch_size)
        report, figures = task.evaluate(splits.y_test, outputs, splits.class_names,
                                        splits.preparation, config.from_logits, title)
        result[task.report_key] = report
        drawings += [drawing(figure) for figure in figures]
    for draw in drawings if folder is not None else ():
        draw(folder)  # type: ignore[arg-type]
    if pictures is not None and folder is None:
        pictures.extend(drawings)
    return result


def drawing(figure: Figure) -> Picture:
    """The picture drawn into a run directory, in the file its plot is saved as."""
    def draw(folder: Path, model_stem: str | None = None) -> str:
        from dltrain.report import plots

        name = file_for(PICTURE_FILES[figure.plot], model_stem)
        getattr(plots, figure.plot)(*figure.args, folder / name)
        return name

    return draw


def file_for(name: str, model_stem: str | None) -> str:
    """A run file of a model's scores: the run's own, or named after another model file."""
    return name if model_stem is None else names.for_model(name, model_stem)


@dataclass
class Evaluation:
    """A model's scores, shown first and saved after (`save`)."""

    result: dict[str, Any]
    title: str
    pictures: list[Picture] = field(default_factory=list)
    # The model file whose scores these are, where not the run's own model.keras (best.keras:
    # "best"): they go in files named after it, and the run's own stay its model's.
    model_stem: str | None = None

    def save(self, run_dir: Path) -> list[str]:
        """eval.json, then the plots, once the scores are shown: a folder that cannot be
        written (full, read-only) costs the files, never the scores. Returns their names."""
        record = records.Evaluation.of(self.result)
        name = file_for(runs.EVAL_FILE, self.model_stem)
        records.write(run_dir, record, name)
        return [name, *(draw(run_dir, self.model_stem) for draw in self.pictures)]


def evaluate_run(run_dir: Path, *, model_path: Path | None = None,
                 config_path: Path | None = None, device: Device = "auto",
                 backend: str | None = None) -> Evaluation:
    """Reload a saved model (safe_mode) and score it on the test split its run used; nothing
    is written until `Evaluation.save`, and a link where it would write is refused first.
    A model file other than the run's model.keras has its files named after it."""
    if model_path is None:
        check_single_run(run_dir)
    path = model_path or completed_model(run_dir, "Evaluate")
    # A folder that is no run (a bare model file with --config) has no model of its own.
    own = (path.resolve() == (run_dir / runs.MODEL_FILE).resolve()
           or not (run_dir / runs.STATE_FILE).is_file())
    model_stem = None if own else path.stem
    for name in (runs.EVAL_FILE, *PICTURE_FILES.values()):
        runs.refuse_link(run_dir / file_for(name, model_stem))
    config = run_config(config_path or run_dir / runs.CONFIG_FILE)
    prepare_runtime(device, config.seed, config.training.deterministic, backend or config.backend)
    model = load_model(path, config.training.jit_compile)
    splits = load_splits(config.dataset, config.seed, config.task_spec)
    check_fits_model(splits, model.input_shape[1:], model.output_shape[-1], config.task_spec)
    title = f"{config.name}: {path.name} on the test split"
    pictures: list[Picture] = []
    result = score(model, splits, config, None, title, pictures)
    return Evaluation({**result, "model": str(path)}, title, pictures, model_stem)


PARENT_KINDS = {"cv": "a cross-validation", "tune": "a search"}  # run.json kinds that hold runs


# What eval, predict and export would do with one of the runs inside such a folder.
USE_ONE = {"eval": ("evaluate one", ""), "predict": ("predict with one", " FILE..."),
           "export": ("export one", " --format FORMAT")}


def check_single_run(run_dir: Path, command: str = "eval") -> None:
    """A cross-validation's or a search's folder holds runs, not a model of its own."""
    kind = runs.recorded_kind(run_dir)
    if kind not in PARENT_KINDS:
        return
    inside = sorted(path.name for path in run_dir.iterdir() if (path / runs.STATE_FILE).is_file())
    verb, rest = USE_ONE[command]
    first = f"dltrain {command} {run_dir / inside[0]}{rest}" if inside else "none is complete yet"
    raise RunError(f"{run_dir}: {PARENT_KINDS[kind]}, whose models are in the runs inside it "
                   f"({', '.join(inside) or 'none yet'}); {verb}: {first}")


def completed_model(run_dir: Path, verb: str) -> Path:
    """model.keras of a completed run; an unfinished run's may be missing or stale, so eval,
    predict and export refuse it and name the checkpoints to `verb` (Evaluate, ...) instead."""
    state = lock.state_now(run_dir, records.read(run_dir, records.RunState).state)
    if state != "completed":
        raise RunError(f"{run_dir}: the run is '{state}', not completed; its {runs.MODEL_FILE} "
                       f"may be missing or stale. {_checkpoints(run_dir, verb, state)}")
    return run_dir / runs.MODEL_FILE


def _checkpoints(run_dir: Path, verb: str, state: str | None) -> str:
    """What an unfinished run offers instead, by the files that exist. A failed run is not
    resumed (it would fail again from the same start): it is started again once changed."""
    kept = [name for name in (runs.BEST_FILE, runs.LAST_FILE) if (run_dir / name).is_file()]
    if not kept and state == "failed":
        return ("It kept no checkpoint: no epoch completed. Start it again with dltrain fit once "
                f"its config is changed (the error is in {run_dir / runs.STATE_FILE}).")
    if not kept:
        return ("It kept no checkpoint: no epoch completed. Finish it with dltrain fit --resume "
                f"{run_dir}, or change its config and start it again.")
    return f"{verb} a checkpoint instead: " + " or ".join(f"--model {name}" for name in kept) + "."


def model_in_run(run_dir: Path, model: Path) -> Path:
    """`--model` for a run: a relative path is looked up in the run first, then the working
    directory (`--model best.keras` means the run's own); an absolute path is taken as it is."""
    if model.is_absolute():
        return model
    for candidate in (run_dir / model, model):
        if candidate.is_file():
            return candidate
    raise RunError(f"--model {model}: no such file in the run ({run_dir / model}) or the working "
                   f"directory ({Path.cwd() / model}).")


def run_config(path: Path) -> Config:
    if not path.is_file():
        raise RunError(f"{path}: missing; pass a run directory made by dltrain fit, or --config.")
    return load_config(path).config


def load_model(path: Path, jit_compile: bool | str | None = None) -> Any:
    """Load with safe_mode, so a model file carrying code (a Lambda layer) is refused.
    `jit_compile`: the run's training.jit_compile, for a model scored on whichever backend this
    process runs (compiled_here); None keeps the file's own (a resume, on the run's backend)."""
    model = _loaded(path)
    if jit_compile is not None:
        compiled_here(model, jit_compile)
    return model


def compiled_here(model: Any, jit_compile: bool | str) -> None:
    """Compile the loaded model again as its run's config says, resolved on this backend, with
    the optimizer it was loaded with. A .keras file holds what `auto` became on the backend that
    saved it: a JAX-trained model loaded on torch ran every step through torch.compile (17 s
    to score 100 images, 0.4 s without), and a TensorFlow-trained one ran op by op on JAX."""
    saved = model.get_compile_config()
    if not saved:
        return
    keras = keras_module()
    rest = keras.saving.deserialize_keras_object(
        {key: value for key, value in saved.items() if key != "optimizer"})
    model.compile(**{**rest, "optimizer": model.optimizer, "jit_compile": jit_compile})


def _loaded(path: Path) -> Any:
    if not path.is_file():
        raise RunError(f"{path}: no such model file.{_other_models(path)}")
    if not zipfile.is_zipfile(path):  # Keras says "File not found" of a truncated one
        raise RunError(f"{path}: not a whole .keras file (a zip archive): truncated or damaged."
                       f"{_other_models(path)}")
    try:
        return keras_module().saving.load_model(path, safe_mode=True,
                                                custom_objects=public_optimizers())
    except (ValueError, TypeError) as exc:  # TypeError: a class Keras cannot find
        raise RunError(f"{path}: refused or unreadable model file: {str(exc).splitlines()[0]}") \
            from None


def _other_models(path: Path) -> str:
    """The run's other model files, whole ones, that --model can name instead."""
    others = [name for name in (runs.MODEL_FILE, runs.BEST_FILE, runs.LAST_FILE)
              if name != path.name and zipfile.is_zipfile(path.parent / name)]
    if not others:
        return ""
    return (f" Its other model files: {', '.join(others)} (dltrain eval and export take one "
            f"with --model {others[0]}).")


def public_optimizers() -> dict[str, Any]:
    """Keras's optimizer classes by name. On torch, Keras compiles with its own subclass of each
    (keras.src.backend.torch.optimizers) and saves it under that module, which imports torch and
    is nothing on another backend; the file also gives the class's name, which this maps back to
    the public class, so a model trained on torch loads on TensorFlow and JAX."""
    optimizers = keras_module().optimizers
    return {name: value for name, value in vars(optimizers).items()
            if isinstance(value, type) and issubclass(value, optimizers.Optimizer)}
