"""The search section: the hyperparameter space, the sampler and the pruner of `dltrain tune`."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    model_validator,
)

from dltrain.config.fields import Strict

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
