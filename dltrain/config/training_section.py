"""The optimizer and training sections (schedule, early stopping, plateaus, checkpoints), the
output and the distribution."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    Field,
    field_validator,
    model_validator,
)

from dltrain.config.fields import Open, Strict


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
        "data_parallel, which run one step a call; 1 on tensorflow where dataset.train_limit "
        "makes an epoch shorter than 32 steps, which never pay back the second tracing of the "
        "train step that several a call cost. "
        "Batch-level callbacks (the live progress bar, a stop signal's check) see every Nth "
        "batch.")
    mixed_precision: Literal["none", "bf16", "fp16", "auto"] = Field(
        "none", description="Compute in bfloat16 or float16 with float32 weights "
        "(keras.mixed_precision: mixed_bfloat16, mixed_float16 with loss scaling): faster on "
        "recent GPUs, slower on most CPUs. auto: bf16 on TensorFlow on a CPU that computes it "
        "natively (avx512_bf16 or amx_bf16), float32 elsewhere; environment.json records what "
        "ran.")
    jit_compile: bool | Literal["auto"] = Field(
        "auto", description="XLA compilation; auto is Keras's choice: on TensorFlow off on a "
        "CPU-only machine (measured 2x slower there) and on with a GPU when every layer "
        "supports it; on JAX on, the augmentation layers compiled into the step; on PyTorch off.")
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
