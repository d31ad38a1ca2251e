"""The config file's schema: pydantic models that are the single source of truth for its keys."""

from __future__ import annotations

import os
from typing import Any, Literal

from pydantic import (
    Field,
    PrivateAttr,
    model_validator,
)

from dltrain import install_line
from dltrain.backend.names import (
    DEFAULT_BACKEND,
    NAMES,
    BackendName,
    data_parallel_backends,
    runs_steps_per_call,
    supports_data_parallel,
    traces_step_loop,
)
from dltrain.config.dataset_section import AugmentationConfig, DatasetConfig
from dltrain.config.fields import NamedObject, Strict, key_error
from dltrain.config.model_section import ModelConfig
from dltrain.config.names import did_you_mean, logged_metric_name, meant_metrics, numbered
from dltrain.config.search_section import SearchConfig
from dltrain.config.tracking_section import TrackingConfig
from dltrain.config.training_section import DistributionConfig, OptimizerConfig, OutputConfig, TrainingConfig
from dltrain.tasks.base import LossKind, Task
from dltrain.tasks.registry import default_metrics, task_for

# Steps an epoch below which auto runs one step a call where several cost a second tracing of
# the train step (TensorFlow). Measured on a 2-core CPU, quickstart with dataset.train_limit,
# steps_per_execution 4 against 1, CPU seconds of the whole fit (3 runs each): 5 steps x 3
# epochs 1.87-2.05 against 1.49-1.74; 15 x 10: 3.28-4.10 against 2.85-3.17; 31 x 10:
# 4.79-5.09 against 4.18-4.70.
SHORT_EPOCH_STEPS = 32


def default_backend() -> str:
    """KERAS_BACKEND when set (an unknown name fails validation like a written one), else TF."""
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND



class Config(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Run name.")
    backend: BackendName = Field(
        default_factory=default_backend, validate_default=True,  # type: ignore[arg-type]
        description="The Keras backend that trains the model (default: $KERAS_BACKEND, else "
        "tensorflow). jax and torch need their extra: " + install_line("jax") + ".")
    seed: int = Field(42, ge=0, lt=2**32)
    dataset: DatasetConfig
    augmentation: AugmentationConfig = AugmentationConfig()
    model: ModelConfig
    optimizer: OptimizerConfig = OptimizerConfig()
    loss: str | NamedObject
    task: Literal["classification", "regression"] | None = Field(
        None, description="Default: from the loss (mse, mae, huber, ... are regression losses). "
        "Needed for a loss dltrain does not classify, or to keep a sigmoid output on a "
        "regression of fractions.")
    metrics: list[str | NamedObject] = Field(
        ["accuracy"], description="Keras metric names; default [accuracy], [mae] for a regression.")
    training: TrainingConfig = TrainingConfig()
    output: OutputConfig = OutputConfig()
    distribution: DistributionConfig = DistributionConfig()
    # Left out of a dump when absent, so a run's config.yaml is as before searches existed.
    search: SearchConfig | None = Field(None, exclude_if=lambda value: value is None,
                                        description="What `dltrain tune` searches; `dltrain "
                                        "fit` trains the config as written.")
    tracking: TrackingConfig | None = Field(None, exclude_if=lambda value: value is None,
                                            description="Experiment tracking (MLflow).")
    _task: Task = PrivateAttr()  # set by _resolve_task: the config's task, decided once

    @model_validator(mode="before")
    @classmethod
    def _task_metrics(cls, data: Any) -> Any:
        # The task's own default metrics (a regression's mae), written into the config so
        # config.yaml shows them.
        if isinstance(data, dict) and "metrics" not in data:
            loss = data.get("loss")
            name = loss.get("name") if isinstance(loss, dict) else loss
            task = data.get("task")
            metrics = (default_metrics(name if isinstance(name, str) else "", task)
                       if task is None or isinstance(task, str) else None)
            if metrics is not None:
                return {**data, "metrics": list(metrics)}
        return data

    @model_validator(mode="after")
    def _resolve_task(self) -> Config:
        """The task is decided once, here: every later step asks `task_spec`."""
        self._task = task_for(self.loss_name, self.task)
        return self

    @model_validator(mode="after")
    def _distribution_on_its_backend(self) -> Config:
        if (self.distribution.strategy == "data_parallel"
                and not supports_data_parallel(self.backend)):
            able = " and ".join(sorted(data_parallel_backends()))
            raise key_error("distribution.strategy", f"data_parallel runs on the {able} "
                            f"backends; Keras's {self.backend} distribution is not in a release. "
                            f"Received: backend {self.backend}. Use backend: jax (or tensorflow), "
                            "or strategy: none.")
        return self

    @model_validator(mode="after")
    def _steps_per_execution_on_its_backend(self) -> Config:
        steps = self.training.steps_per_execution
        if steps == "auto" or steps == 1:
            return self
        if not runs_steps_per_call(self.backend):
            raise key_error("training.steps_per_execution", f"Keras's {self.backend} trainer "
                            f"runs one step per call. Received: {steps} on backend "
                            f"{self.backend}. Use auto (the default) or 1, or backend: jax or "
                            "tensorflow.")
        if not runs_steps_per_call(self.backend, self.distribution.strategy == "data_parallel"):
            # Keras's multi-step loop failed in MirroredStrategy's graph (InvalidArgumentError).
            raise key_error("training.steps_per_execution", f"Keras's {NAMES[self.backend]} "
                            "trainer runs one step per call under distribution.strategy "
                            f"data_parallel. Received: {steps}. Use auto (the default) or 1, or "
                            "backend: jax.")
        return self

    @model_validator(mode="after")
    def _columns_apart(self) -> Config:
        """A label among the features is the answer given as an input: it trained to 99% on
        Pima and R² 1.000 on Auto MPG, exit 0."""
        labels, features = self.dataset.label_columns, self.dataset.feature_columns or []
        for key, columns in (("label_column", labels), ("feature_columns", features)):
            twice = sorted({column for column in columns if columns.count(column) > 1})
            if twice:
                raise key_error(f"dataset.{key}", f"names {', '.join(map(repr, twice))} twice. "
                                "Name each column once.")
        leaked = [column for column in labels if column in features]
        if leaked:
            raise key_error("dataset.feature_columns", "lists the label column "
                            f"{', '.join(map(repr, leaked))}: the model would be given the answer "
                            "as an input. Remove it from feature_columns.")
        return self

    @model_validator(mode="after")
    def _one_hot_fits_the_loss(self) -> Config:
        # Keras's loss then fails in the first step on labels of the wrong rank.
        one_hot, kind = self.dataset.one_hot, self.loss_kind
        if one_hot is False and kind == "categorical":
            raise key_error("dataset.one_hot", f"{self.loss_name} compares one-hot labels with "
                            "the outputs, and one_hot: false gives class ids. Use loss: "
                            "sparse_categorical_crossentropy for class ids, or drop one_hot: false.")
        if one_hot is True and kind == "sparse_categorical":
            raise key_error("dataset.one_hot", f"{self.loss_name} takes class ids, and one_hot: "
                            "true gives one-hot vectors. Use loss: categorical_crossentropy for "
                            "one-hot labels, or drop one_hot: true.")
        return self

    @model_validator(mode="after")
    def _mixed_labels_are_one_hot(self) -> Config:
        # MixUp and CutMix blend two labels: class ids cannot hold the blend.
        for key in self.augmentation.mixes_labels:
            if self.loss_kind != "categorical":
                raise key_error(f"augmentation.{key}", f"mixes the labels of two images, so it "
                                f"needs one-hot labels, and loss {self.loss_name} "
                                f"{_labels_of(self.loss_kind)}. Use loss: "
                                "categorical_crossentropy (dltrain one-hot encodes the class "
                                f"ids for it), or drop {key}.")
        return self

    @model_validator(mode="after")
    def _monitors_exist(self) -> Config:
        for section in ("early_stopping", "reduce_lr_on_plateau", "checkpoint"):
            callback = getattr(self.training, section)
            if callback is not None and callback.monitor is not None:
                callback.monitor = self._logged(f"training.{section}.monitor", callback.monitor)
        return self

    @model_validator(mode="after")
    def _objective_exists(self) -> Config:
        if self.search is not None and self.search.objective is not None:
            self.search.objective = self._logged("search.objective", self.search.objective)
        return self

    def _logged(self, key: str, name: str) -> str:
        """The name Keras logs that a monitor means: EarlyStopping only warns when it is
        missing. Keras's own name for a metric's class is taken for the name compile logs."""
        known = self.monitorable()
        if name in known:
            return name
        meant = meant_metrics(name, known, self.logged_metrics())
        if len(meant) == 1:
            return meant[0]
        if meant:
            hint = f" It could mean {' or '.join(repr(m) for m in meant)}: name one."
        elif name.startswith("val_") and not self.dataset.has_validation:
            hint = " val_* metrics need dataset.validation_split."
        else:
            hint = did_you_mean(name, known)
        raise key_error(key, f"must be one of {', '.join(known)}. Received: '{name}'.{hint}")

    def monitorable(self) -> list[str]:
        """Names Keras will log each epoch, as far as the config can tell."""
        names = ["loss"] + [logged for _, logged in self.logged_metrics()]
        if self.dataset.has_validation:
            names += [f"val_{name}" for name in names]
        return names

    def logged_metrics(self) -> list[tuple[str, str]]:
        """Each metric as the config names it, with the name Keras logs it under."""
        written = [m if isinstance(m, str) else m.name for m in self.metrics]
        logged = [m if isinstance(m, str) else logged_metric_name(m.name, bool(m.kwargs))
                  for m in self.metrics]
        return list(zip(written, numbered(logged), strict=True))

    @property
    def loss_name(self) -> str:
        return self.loss if isinstance(self.loss, str) else self.loss.name

    @property
    def task_spec(self) -> Task:
        """The task this config means (tasks.registry.task_for), resolved as it loaded."""
        return self._task

    @property
    def loss_kind(self) -> LossKind:
        """The loss's kind; a loss of kind "other" is a regression when `task` says so."""
        return self._task.kind

    @property
    def from_logits(self) -> bool:
        """The loss takes logits (`loss: {name: ..., from_logits: true}`), so the model's outputs
        are not probabilities: reports, predict and exports turn them into probabilities."""
        return isinstance(self.loss, NamedObject) and self.loss.kwargs.get("from_logits") is True

    @property
    def is_classifier(self) -> bool:
        return self._task.classes

    @property
    def is_regression(self) -> bool:
        return self._task.numeric_targets

    def steps_per_execution(self) -> int:
        """training.steps_per_execution, auto resolved: each call into the backend trains about
        256 samples. Measured on a 2-core CPU (BENCHMARKS.md), against 1 step a call: 13-20%
        faster at batch 32, 10% at 64, 6% at 128, on TensorFlow and JAX alike. On TensorFlow,
        1 where dataset.train_limit makes an epoch shorter than SHORT_EPOCH_STEPS: the loop's
        second tracing costs more than its fewer round trips save (the same for a resume, since
        train_limit and batch_size cannot change)."""
        steps = self.training.steps_per_execution
        if steps != "auto":
            return steps
        if not runs_steps_per_call(self.backend, self.distribution.strategy == "data_parallel"):
            return 1  # where Keras runs one step a call (_steps_per_execution_on_its_backend)
        if self._short_epochs() and traces_step_loop(self.backend):
            return 1
        return min(max(256 // self.training.batch_size, 1), 16)

    def _short_epochs(self) -> bool:
        """Whether the config caps an epoch below SHORT_EPOCH_STEPS (the data's own size is not
        known until it is read, after the model is compiled)."""
        limit = self.dataset.train_limit
        return limit is not None and -(-limit // self.training.batch_size) < SHORT_EPOCH_STEPS

    @property
    def checkpoint_monitor(self) -> str:
        chosen = self.training.checkpoint.monitor
        return chosen or ("val_loss" if self.dataset.has_validation else "loss")


def _labels_of(kind: str) -> str:
    return ("takes class ids" if kind == "sparse_categorical"
            else f"makes this a {kind} task, not a single-label classification")


def json_schema() -> dict[str, Any]:
    """The config's JSON Schema, for `dltrain schema` and the editors' yaml-language-server."""
    schema = Config.model_json_schema()
    # The section may also be a bare name (`optimizer: adam`), which validation expands.
    section = schema["properties"]["optimizer"]
    schema["properties"]["optimizer"] = {"anyOf": [
        {"type": "string", "description": "A keras.optimizers name, with its defaults."},
        {key: value for key, value in section.items() if key != "default"}],
        "default": section.get("default")}
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema,
            "title": "dltrain experiment config"}
