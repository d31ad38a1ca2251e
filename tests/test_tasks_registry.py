"""The task registry: a config's task is its loss's, else its `task:`'s, decided once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import pytest

from dltrain.config.schema import Config
from dltrain.tasks import registry
from dltrain.tasks.base import LossKind, Task
from dltrain.tasks.classification import Classification
from dltrain.tasks.other import Other
from dltrain.tasks.regression import Regression


def config(loss: str, **extra: object) -> Config:
    return Config.model_validate({"name": "t", "dataset": {"name": "mnist_mini"}, "loss": loss,
                                  "model": {"input_shape": [4], "layers": [{"Dense": {"units": 2}}]},
                                  **extra})


@pytest.mark.parametrize(("loss", "task", "expected", "kind"), [
    ("binary_crossentropy", None, Classification, "binary"),
    ("CategoricalCrossentropy", None, Classification, "categorical"),
    ("sparse_categorical_crossentropy", "classification", Classification, "sparse_categorical"),
    ("huber", None, Regression, "regression"),
    ("my_loss", "regression", Regression, "regression"),
    ("my_loss", "classification", Classification, "other"),
    ("my_loss", None, Other, "other"),
    # The loss decides; the task's check then refuses the disagreement.
    ("mse", "classification", Regression, "regression"),
])
def test_the_task_is_the_losss_else_the_task_keys(loss: str, task: str | None,
                                                  expected: type, kind: str) -> None:
    resolved = registry.task_for(loss, task)
    assert type(resolved) is expected and resolved.kind == kind


def test_a_config_holds_its_task_from_loading_on() -> None:
    loaded = config("mae", metrics=["mse"])
    assert type(loaded.task_spec) is Regression
    assert loaded.model_copy(update={"seed": 1}).task_spec is loaded.task_spec
    # The properties train/fit.py still reads come from the same object.
    assert (loaded.loss_kind, loaded.is_regression, loaded.is_classifier) == (
        "regression", True, False)
    other = config("my_loss", task="classification")
    assert (other.loss_kind, other.is_classifier, other.is_regression) == ("other", True, False)


def test_default_metrics_come_from_the_task() -> None:
    assert config("mse").metrics == ["mae"]
    assert config("my_loss", task="regression").metrics == ["mae"]
    assert config("sparse_categorical_crossentropy").metrics == ["accuracy"]
    assert config("mse", task="classification", metrics=["accuracy"]).metrics == ["accuracy"]


@pytest.mark.parametrize(("kind", "expected"), [
    ("binary", Classification), ("sparse_categorical", Classification),
    ("regression", Regression), ("other", Other)])
def test_a_loss_kind_names_its_task_for_the_data_functions(kind: str, expected: type) -> None:
    task = registry.as_task(kind)
    assert type(task) is expected and task.kind == kind
    assert registry.as_task(task) is task


def test_stratification_follows_the_task() -> None:
    """Folds are stratified for classes only; subsets for all but numeric targets."""
    facts = {name: (task.classes, task.stratify_subsets) for name, task in
             (("classification", Classification()), ("regression", Regression()),
              ("other", Other()))}
    assert facts == {"classification": (True, True), "regression": (False, False),
                     "other": (False, True)}


def test_a_new_task_is_one_class_and_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    @dataclass(frozen=True)
    class Ranking(Task):
        kind: LossKind = "other"
        name: ClassVar[str] = "ranking"
        losses: ClassVar[dict[str, LossKind]] = {"listnetloss": "other"}
        default_metrics: ClassVar[list[str] | None] = ["ndcg"]

    monkeypatch.setitem(registry.TASKS, "ranking", Ranking())
    assert type(registry.task_for("ListNet_Loss", None)) is Ranking
    assert registry.default_metrics("listnet_loss", None) == ["ndcg"]
    assert registry.kind_of_loss("mse") == "regression"
