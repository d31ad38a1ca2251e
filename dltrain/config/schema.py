"""The config file's schema: pydantic models that are the single source of truth for its keys."""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from dltrain.backend.names import (
    DEFAULT_BACKEND,
    NAMES,
    BackendName,
    data_parallel_backends,
    runs_steps_per_call,
    supports_data_parallel,
)
from dltrain.config.names import did_you_mean, logged_metric_name, meant_metrics, numbered
from dltrain.tasks.base import LossKind, Task
from dltrain.tasks.registry import default_metrics, task_for

IMAGE_DATASETS = ("fashion_mnist_mini", "mnist_mini", "mnist", "fashion_mnist", "cifar10", "cifar100")
DATASET_NAMES = (*IMAGE_DATASETS, "npz", "csv", "image_folder")

# The optional dataset keys each dataset reads beyond those all of them read (validation_split,
# rescale, standardize, label_map, one_hot, train_limit, test_limit). A name not listed reads
# none: it ships with dltrain.
DATASET_KEYS: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(["mnist", "fashion_mnist", "cifar10", "cifar100"], ("data_dir",)),
    "npz": ("path",),
    "csv": ("path", "test_path", "label_column", "feature_columns", "test_split",
            "test_split_seed"),
    "image_folder": ("path", "test_path", "test_split", "test_split_seed", "image_size",
                     "color_mode"),
}
SOURCE_KEYS = sorted({key for keys in DATASET_KEYS.values() for key in keys})

# ImageDataGenerator arguments that have no Keras 3 preprocessing-layer equivalent here yet,
# with what to do instead.
UNSUPPORTED_AUGMENTATION = {
    "featurewise_center": "standardise the data before training instead",
    "samplewise_center": "standardise the data before training instead",
    "featurewise_std_normalization": "standardise the data before training instead",
    "samplewise_std_normalization": "standardise the data before training instead",
    "zca_whitening": "whiten the data before training instead",
    "zca_epsilon": "whiten the data before training instead",
    "shear_range": "use rotation_range or zoom_range instead",
    "channel_shift_range": "remove it",
    "preprocessing_function": "configs cannot run code; remove it",
    "rescale": "set dataset.rescale instead",
    "validation_split": "set dataset.validation_split instead",
    "data_format": "remove it: images are always channels-last",
}


class Strict(BaseModel):
    """A section whose unknown keys are errors."""

    model_config = ConfigDict(extra="forbid")


class Open(BaseModel):
    """A section whose extra keys are keyword arguments of a Keras class, checked at build time."""

    model_config = ConfigDict(extra="allow")

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


def _finite(value: float | None) -> float | None:
    if value is not None and not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


class DatasetConfig(Strict):
    name: Literal[DATASET_NAMES] = Field(description="Which dataset to train on.")  # type: ignore[valid-type]
    data_dir: Path | None = Field(
        None, description="Folder with the dataset's canonical files, read instead of downloading."
    )
    path: Path | None = Field(None, description="npz/csv file, or image_folder's training folder.")
    test_path: Path | None = Field(None, description="csv/image_folder: a separate test set.")
    label_column: str | list[str] | None = Field(
        None, description="csv: the column that holds the label, or a list of target columns "
        "for a regression with several outputs.")
    feature_columns: list[str] | None = Field(None, description="csv: feature columns (default all).")
    test_split: float = Field(0.2, gt=0, lt=1, description="Without test_path: test fraction.")
    test_split_seed: int = Field(0, ge=0, description="Seed of that split; fixed apart from `seed` "
                                 "so runs with different seeds test on the same rows.")
    image_size: tuple[int, int] = Field((64, 64), description="image_folder: [height, width].")
    color_mode: Literal["grayscale", "rgb", "rgba"] = Field("rgb", description="image_folder.")
    validation_split: float | Literal["test"] = Field(
        0.0, description="Fraction of the training data held out (seeded), or 'test'."
    )
    rescale: float | None = Field(
        None, description="Multiply inputs by this; default 1/255 for uint8 images, else 1."
    )
    standardize: bool = Field(False, description="Scale each feature to mean 0, std 1 (train stats).")
    standardize_target: bool = Field(
        False, description="Regression: train on targets scaled to mean 0, std 1 (train stats); "
        "reports and predict give values in the targets' own units.")
    label_map: dict[int, int] | None = Field(None, description="Relabel classes, e.g. even/odd.")
    one_hot: bool | None = Field(None, description="One-hot labels; default: derived from the loss.")
    train_limit: int | None = Field(None, gt=0, description="Stratified, seeded training subset.")
    test_limit: int | None = Field(None, gt=0, description="Stratified, seeded test subset.")

    @field_validator(*SOURCE_KEYS)
    @classmethod
    def _read_by_the_dataset(cls, value: Any, info: ValidationInfo) -> Any:
        # A key another dataset reads is a mistake the run would silently ignore. Its default
        # is no mistake: a saved run's config.yaml lists every key.
        name, key = info.data.get("name"), info.field_name
        if name is None or key is None or key in DATASET_KEYS.get(name, ()):
            return value
        if value == cls.model_fields[key].default:
            return value
        raise PydanticCustomError("key_not_read", "{name} does not read {key} ({why}). Remove it",
                                  {"name": name, "key": key, "why": _why_not_read(name, key)})

    @field_validator("label_column", "feature_columns", mode="before")
    @classmethod
    def _columns_by_name(cls, value: Any) -> Any:
        for column in value if isinstance(value, list) else [value]:
            if isinstance(column, int) and not isinstance(column, bool):  # pandas' iloc habit
                raise ValueError(f"columns are named by the CSV's header row, not numbered. "
                                 f"Received: {column}. Write the column's name (a file without "
                                 "a header row needs one added as its first line)")
        return value

    @field_validator("label_column")
    @classmethod
    def _some_columns(cls, value: str | list[str] | None) -> str | list[str] | None:
        if isinstance(value, list) and not value:
            raise ValueError("must name a column, or list at least one")
        return value

    @field_validator("validation_split")
    @classmethod
    def _split_range(cls, value: float | str) -> float | str:
        if isinstance(value, float) and not 0 <= value < 1:
            raise ValueError("must be in [0, 1) or 'test'")
        return value

    @field_validator("image_size")
    @classmethod
    def _size_positive(cls, value: tuple[int, int]) -> tuple[int, int]:
        if min(value) <= 0:
            raise ValueError("height and width must be positive")
        return value

    @field_validator("rescale")
    @classmethod
    def _rescale_finite(cls, value: float | None) -> float | None:
        return _finite(value)

    @model_validator(mode="after")
    def _source_needs_path(self) -> DatasetConfig:
        if self.name in ("npz", "csv", "image_folder") and self.path is None:
            raise ValueError(f"dataset '{self.name}' needs dataset.path")
        if self.name == "csv" and self.label_column is None:
            raise ValueError("dataset 'csv' needs dataset.label_column")
        return self

    @property
    def has_validation(self) -> bool:
        return self.validation_split == "test" or self.validation_split > 0

    @property
    def label_columns(self) -> list[str]:
        """label_column as a list: one name for a label, several for a regression's targets."""
        if self.label_column is None:
            return []
        return [self.label_column] if isinstance(self.label_column, str) else self.label_column


def _why_not_read(name: str, key: str) -> str:
    instead = {"path": "data_dir", "data_dir": "path"}.get(key)
    if instead in DATASET_KEYS.get(name, ()):
        return f"it reads {instead} instead"
    if key in ("data_dir", "path", "test_path") and not DATASET_KEYS.get(name):
        return "it ships with dltrain"
    readers = [other for other, keys in DATASET_KEYS.items() if key in keys]
    listed = ", ".join(readers[:-1]) + " and " + readers[-1] if len(readers) > 1 else readers[0]
    return f"only {listed} {'do' if len(readers) > 1 else 'does'}"


class AugmentationConfig(Strict):
    """ImageDataGenerator's vocabulary, implemented with Keras preprocessing layers."""

    horizontal_flip: bool = False
    vertical_flip: bool = False
    rotation_range: float = Field(0, ge=0, le=180, description="Degrees, as ImageDataGenerator.")
    width_shift_range: float = Field(0, ge=0, lt=1, description="Fraction of the width.")
    height_shift_range: float = Field(0, ge=0, lt=1, description="Fraction of the height.")
    zoom_range: float | tuple[float, float] = Field(0, description="z or [lower, upper].")
    fill_mode: Literal["nearest", "constant", "reflect", "wrap"] = "nearest"
    cval: float = Field(0, description="Fill value for fill_mode: constant.")
    brightness_range: tuple[float, float] | None = Field(
        None, description="[low, high]: multiply each image's brightness by a factor in it.")

    @model_validator(mode="before")
    @classmethod
    def _explain_unsupported(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in UNSUPPORTED_AUGMENTATION:
                    hint = UNSUPPORTED_AUGMENTATION[key]
                    raise ValueError(f"'{key}' is not supported by dltrain's augmentation; {hint}")
        return data

    @field_validator("zoom_range")
    @classmethod
    def _zoom_bounds(cls, value: float | tuple[float, float]) -> float | tuple[float, float]:
        low, high = (1 - value, 1 + value) if isinstance(value, (int, float)) else value
        if not 0 < low <= high:
            raise ValueError("must be z in [0, 1) or [lower, upper] with 0 < lower <= upper")
        return value

    @field_validator("brightness_range")
    @classmethod
    def _brightness_bounds(cls, value: tuple[float, float] | None) -> tuple[float, float] | None:
        if value is not None and not 0 <= value[0] <= value[1]:
            raise ValueError("must be [low, high] with 0 <= low <= high, e.g. [0.8, 1.2]")
        return value


# In the schema a layer is `Name` or `{Name: {arguments}}`; validation turns both into the latter.
LayerSpec = Annotated[dict[str, dict[str, Any]], WithJsonSchema({
    "anyOf": [{"type": "string", "description": "A keras.layers class without arguments."},
              {"type": "object", "minProperties": 1, "maxProperties": 1,
               "additionalProperties": {"type": ["object", "null"]},
               "description": "{LayerClass: {its keyword arguments}}"}]})]


class ModelConfig(Strict):
    input_shape: list[int] = Field(min_length=1, description="Shape of one sample, e.g. [28, 28, 1].")
    layers: list[LayerSpec] = Field(min_length=1, description="Keras layers in order: {Name: {args}}.")

    @field_validator("input_shape")
    @classmethod
    def _positive_dims(cls, value: list[int]) -> list[int]:
        if any(dim <= 0 for dim in value):
            raise ValueError("every dimension must be a positive integer")
        return value

    @field_validator("layers", mode="before")
    @classmethod
    def _normalise_layers(cls, value: Any) -> Any:
        if not isinstance(value, list):
            return value
        return [_normalise_layer(item, index) for index, item in enumerate(value)]


def _normalise_layer(item: Any, index: int) -> Any:
    """Accept `Flatten`, `{Flatten: null}` and `{Flatten: {}}` alike."""
    if isinstance(item, str):
        return {item: {}}
    if isinstance(item, dict) and len(item) != 1:
        names = ", ".join(map(str, item)) or "nothing"
        raise ValueError(
            f"layer {index} must name exactly one layer class, like '- Dense: {{units: 10}}'. "
            f"Received: {names}"
        )
    if isinstance(item, dict):
        ((name, args),) = item.items()
        if args is not None and not isinstance(args, dict):  # Keras's positional Dense(10)
            first = FIRST_ARGUMENT.get(str(name), "argument")
            raise ValueError(f"layer {index}: {name}'s arguments are a mapping, by name: "
                             f"'- {name}: {{{first}: {args!r}}}'. Received: {args!r}")
        return {name: {} if args is None else args}
    return item


# The first positional argument of the common layers, to write `- Dropout: 0.5` by name.
FIRST_ARGUMENT = {"Dense": "units", "Dropout": "rate", "Activation": "activation",
                  "Conv2D": "filters", "Conv1D": "filters", "MaxPooling2D": "pool_size",
                  "Reshape": "target_shape", "SpatialDropout2D": "rate",
                  "GaussianNoise": "stddev", "Embedding": "input_dim", "LSTM": "units",
                  "GRU": "units", "SimpleRNN": "units", "Rescaling": "scale"}


# A model may start with a keras.applications backbone: `- Backbone: {name: MobileNetV2, ...}`.
BACKBONE_LAYER = "Backbone"


class FineTuneConfig(Strict):
    """Unfreeze the backbone's top layers after `at_epoch` epochs, with a lower learning rate."""

    at_epoch: int = Field(gt=0, description="Epochs trained with the backbone frozen; its top "
                          "layers train from the next epoch on.")
    layers: int = Field(gt=0, description="How many of the backbone's last layers to unfreeze "
                        "(BatchNormalization layers stay frozen).")
    learning_rate: float = Field(gt=0, allow_inf_nan=False, description="The learning rate from "
                                 "then on (recompiled, as Keras's transfer-learning guide does).")


class BackboneConfig(Open):
    """A keras.applications model without its classifier; extra keys are its own arguments."""

    name: str = Field(description="A keras.applications name: MobileNetV2, ResNet50, ...")
    weights: str | None = Field("imagenet", description="imagenet (through Keras's cache, "
                                "$KERAS_HOME/models), null (random), or a weights file.")
    trainable: bool = Field(False, description="Train the backbone's weights too (default: "
                            "frozen, the transfer-learning recipe).")
    pooling: Literal["avg", "max"] | None = Field(None, description="Keras's pooling: avg or max "
                                                  "gives one vector per image.")
    input_size: tuple[int, int] | None = Field(None, description="[height, width] the images are "
                                               "resized to; default the backbone's own.")
    fine_tune: FineTuneConfig | None = None

    @model_validator(mode="after")
    def _fine_tune_needs_frozen(self) -> BackboneConfig:
        if self.fine_tune is not None and self.trainable:
            raise ValueError("fine_tune unfreezes a frozen backbone; with trainable: true it is "
                             "all trained from the start. Set trainable: false or drop fine_tune")
        return self


class ScheduleConfig(Open):
    """A keras.optimizers.schedules class; initial_learning_rate defaults to the optimizer's."""

    name: str


# Keras's own default rates where they are not 0.001 (keras.optimizers' signatures, 3.15): an
# optimizer named without one trains at the rate compile(optimizer="sgd") would.
KERAS_RATES = {"sgd": 0.01, "schedulefreeadamw": 0.0025}


class OptimizerConfig(Open):
    name: str = Field("adam", description="A keras.optimizers name: adam, sgd, rmsprop, ...")
    learning_rate: float = Field(0.001, gt=0, allow_inf_nan=False, description="Initial learning "
                                 "rate. Default: Keras's for the optimizer (0.01 for SGD, 0.001 "
                                 "for most).")
    schedule: ScheduleConfig | None = None
    clipnorm: float | None = Field(None, gt=0)
    clipvalue: float | None = Field(None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _bare_name(cls, data: Any) -> Any:
        # `optimizer: adam`, as Keras's compile(optimizer="adam") and as `loss:` accepts.
        data = {"name": data} if isinstance(data, str) else data
        if isinstance(data, dict) and "learning_rate" not in data and isinstance(
                data.get("name"), str):
            rate = KERAS_RATES.get(data["name"].replace("_", "").lower())
            data = data if rate is None else {**data, "learning_rate": rate}
        return data


class NamedObject(Open):
    """A loss or metric given with arguments: {name: categorical_crossentropy, label_smoothing: 0.1}."""

    name: str


class EarlyStoppingConfig(Strict):
    monitor: str = "val_loss"
    patience: int = Field(3, ge=0)
    min_delta: float = Field(0, ge=0)
    restore_best_weights: bool = True


class ReduceLROnPlateauConfig(Strict):
    monitor: str = "val_loss"
    factor: float = Field(0.1, gt=0, lt=1)
    patience: int = Field(2, ge=0)
    min_delta: float = Field(0.0001, ge=0)
    min_lr: float = Field(0, ge=0)


class CheckpointConfig(Strict):
    monitor: str | None = Field(None, description="Default: val_loss with validation, else loss.")
    save_best_only: bool = True


class TrainingConfig(Strict):
    epochs: int = Field(10, gt=0, le=100_000)
    batch_size: int = Field(32, gt=0, le=1_000_000)
    shuffle: bool = True
    deterministic: bool = Field(False, description="TensorFlow op determinism (slower).")
    tensorboard: bool = Field(True, description="Write TensorBoard logs to <run>/tensorboard.")
    steps_per_execution: Literal["auto"] | Annotated[int, Field(ge=1, le=10_000)] = Field(
        "auto", description="Training steps per call into TensorFlow or JAX (Keras's compile "
        "argument): fewer Python round trips a step. auto: about 256 samples a call (8 at "
        "batch 32, 2 at 128, 1 from 256; at most 16); 1 on torch, and on tensorflow under "
        "data_parallel, which run one step a call. "
        "Batch-level callbacks (the live progress bar, a stop signal's check) see every Nth "
        "batch.")
    mixed_precision: Literal["none", "bf16", "fp16"] = Field(
        "none", description="Compute in bfloat16 or float16 with float32 weights "
        "(keras.mixed_precision: mixed_bfloat16, mixed_float16 with loss scaling): faster on "
        "recent GPUs, slower on most CPUs.")
    jit_compile: bool | Literal["auto"] = Field(
        "auto", description="XLA compilation; auto is Keras's choice: off on a CPU-only machine "
        "(measured 2x slower there), on with a GPU when every layer supports it.")
    early_stopping: EarlyStoppingConfig | None = None
    reduce_lr_on_plateau: ReduceLROnPlateauConfig | None = None
    checkpoint: CheckpointConfig = CheckpointConfig()


class OutputConfig(Strict):
    runs_dir: Path = Field(Path("runs"), description="Runs go to <runs_dir>/<name>-<timestamp>/, "
                           "relative to the working directory.")

    @field_validator("runs_dir")
    @classmethod
    def _stays_inside(cls, value: Path) -> Path:
        # A shared config must not write outside the folder it is run from; --run-dir can.
        if value.is_absolute() or ".." in value.parts or str(value).startswith("~"):
            raise ValueError("must be a relative path inside the working directory (no '..', "
                             "no absolute path); use --run-dir to put a run elsewhere")
        return value


class DistributionConfig(Strict):
    """Data-parallel training on Keras's own engines: keras.distribution (JAX), MirroredStrategy
    (TensorFlow). training.batch_size stays the global batch, split across the devices."""

    strategy: Literal["none", "data_parallel"] = Field(
        "none", description="data_parallel: one model replica per device, each a slice of every "
        "batch (jax, tensorflow).")
    devices: Literal["all"] | Annotated[int, Field(gt=0)] = Field(
        "all", description="How many of this machine's accelerators (or CPU devices) to use: "
        "all, or the first N.")


# A searched range [low, high]; module-level so the field named `int` below cannot shadow it.
FloatRange = tuple[float, float]
IntRange = tuple[int, int]
SPACE_KINDS = ("choice", "uniform", "log_uniform", "int")


class SpaceConfig(Strict):
    """One searched key's values: exactly one of choice, uniform, log_uniform or int."""

    choice: list[Any] | None = Field(None, min_length=1, description="These values.")
    uniform: FloatRange | None = Field(None, description="[low, high]: a float.")
    log_uniform: FloatRange | None = Field(None, description="[low, high] > 0: a float, on a log scale.")
    int: IntRange | None = Field(None, description="[low, high]: an integer, both ends included.")
    step: float | None = Field(None, gt=0, description="int or uniform: only multiples of it "
                               "from low (int: default 1); makes uniform enumerable for grid.")

    @model_validator(mode="after")
    def _one_space(self) -> SpaceConfig:
        given = [kind for kind in SPACE_KINDS if getattr(self, kind) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(SPACE_KINDS)}; received "
                             f"{', '.join(given) or 'none'}")
        bounds = getattr(self, given[0])
        if given[0] != "choice" and bounds[0] > bounds[1]:
            raise ValueError(f"{given[0]}: low must not be above high")
        if given[0] == "log_uniform" and bounds[0] <= 0:
            raise ValueError("log_uniform: both bounds must be above 0 (a log scale)")
        if self.step is not None and given[0] not in ("int", "uniform"):
            raise ValueError(f"step goes with int or uniform, not {given[0]}")
        if given[0] == "int" and self.step is not None and self.step != round(self.step):
            raise ValueError("int: step must be a whole number")
        return self

    @property
    def kind(self) -> str:
        return next(kind for kind in SPACE_KINDS if getattr(self, kind) is not None)


class PruneConfig(Strict):
    after_epoch: int = Field(1, ge=1, description="Optuna's median rule stops a trial whose "
                             "objective is worse than the median of earlier trials at the same "
                             "epoch, from this epoch on.")


class SearchConfig(Strict):
    """Hyperparameter search (`dltrain tune`), with Optuna as the engine."""

    method: Literal["grid", "random", "tpe"] = Field("tpe", description="Optuna's sampler.")
    trials: int | None = Field(None, gt=0, le=100_000, description="How many trials; grid: "
                               "all combinations unless this caps them.")
    objective: str | None = Field(None, description="The metric to optimise, in the direction "
                                  "Keras gives it; default: the checkpoint monitor.")
    prune: PruneConfig | None = None
    parameters: dict[str, SpaceConfig] = Field(min_length=1, description="Key paths as --set "
                                               "takes them, each with its values.")

    @model_validator(mode="after")
    def _trials_given(self) -> SearchConfig:
        if self.trials is None and self.method != "grid":
            raise ValueError(f"trials is needed with method {self.method} (only grid "
                             "can count its trials); e.g. trials: 20, or dltrain tune --trials 20")
        return self


def default_backend() -> str:
    """KERAS_BACKEND when set (an unknown name fails validation like a written one), else TF."""
    return os.environ.get("KERAS_BACKEND") or DEFAULT_BACKEND


# The type of a cross-field rule's error that belongs to one key (its context names the key).
KEY_ERROR = "at_key"


def key_error(key: str, message: str) -> PydanticCustomError:
    """An error of a rule on the whole config that one key breaks: messages.describe shows it at
    that key's line, as the message says it (what was received included)."""
    return PydanticCustomError(KEY_ERROR, "{message}", {"key": key, "message": message})


class Config(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$", description="Run name.")
    backend: BackendName = Field(
        default_factory=default_backend, validate_default=True,  # type: ignore[arg-type]
        description="The Keras backend that trains the model (default: $KERAS_BACKEND, else "
        "tensorflow). jax and torch need their extra: pip install \"dltrain[jax]\".")
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
        faster at batch 32, 10% at 64, 6% at 128, on TensorFlow and JAX alike."""
        steps = self.training.steps_per_execution
        if steps != "auto":
            return steps
        if not runs_steps_per_call(self.backend, self.distribution.strategy == "data_parallel"):
            return 1  # where Keras runs one step a call (_steps_per_execution_on_its_backend)
        return min(max(256 // self.training.batch_size, 1), 16)

    @property
    def checkpoint_monitor(self) -> str:
        chosen = self.training.checkpoint.monitor
        return chosen or ("val_loss" if self.dataset.has_validation else "loss")


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
