"""The schema's derived properties (the loss kind that data, model and reports all ask for)
and its cross-field rules (what a monitor may name)."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import write_yaml
from dltrain.config.load import load_config
from dltrain.errors import ConfigError
from dltrain.tasks.registry import kind_of_loss


@pytest.mark.parametrize(("loss", "kind"), [
    ("categorical_crossentropy", "categorical"), ("CategoricalCrossentropy", "categorical"),
    ("kl_divergence", "categorical"), ("categorical_hinge", "categorical"),
    ("sparse_categorical_crossentropy", "sparse_categorical"),
    ("SparseCategoricalCrossentropy", "sparse_categorical"),
    ("binary_crossentropy", "binary"), ("BinaryFocalCrossentropy", "binary"), ("hinge", "binary"),
    ("mse", "regression"), ("mean_absolute_error", "regression"), ("huber", "regression"),
    ("bce", "binary"), ("tversky", "other"),
])
def test_loss_kind_in_any_spelling(loss: str, kind: str) -> None:
    assert kind_of_loss(loss) == kind


# Monitors and search objectives: Keras logs a metric named by a string under that string as
# written (compile's get_metric), and a metric made with arguments under its instance's name,
# the class's default (Precision(thresholds=0.5).name == "precision").

MONITORED = """\
name: tiny
dataset: {name: fashion_mnist_mini, validation_split: 0.1}
model:
  input_shape: [28, 28, 1]
  layers: [Flatten, {Dense: {units: 10, activation: softmax}}]
loss: categorical_crossentropy
metrics: [Precision, {name: AUC}, {name: Recall, thresholds: 0.4}, acc,
          {name: LogCoshError, dtype: float32}]
"""


def monitored(tmp_path: Path, extra: str = "") -> Path:
    return write_yaml(tmp_path / "c.yaml", MONITORED + extra)


def refusal(path: Path) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def monitor_error(tmp_path: Path, extra: str) -> str:
    return refusal(monitored(tmp_path, extra))


def test_monitorable_lists_the_names_keras_logs(tmp_path: Path) -> None:
    logged = ["Precision", "AUC", "recall", "acc", "logcosh"]
    assert load_config(monitored(tmp_path)).config.monitorable() == [
        "loss", *logged, "val_loss", *(f"val_{name}" for name in logged)]


def test_a_name_given_twice_is_numbered_as_keras_logs_it(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", MONITORED.replace(
        "acc,", "acc, precision, {name: Precision, thresholds: 0.9},"))
    assert load_config(path).config.monitorable()[1:8] == [
        "Precision", "AUC", "recall", "acc", "precision", "precision_1", "logcosh"]


@pytest.mark.parametrize(("extra", "where", "name"), [
    ("training: {early_stopping: {monitor: val_Precision}}\n",
     "training.early_stopping.monitor", "val_Precision"),
    ("training: {reduce_lr_on_plateau: {monitor: val_AUC}}\n",
     "training.reduce_lr_on_plateau.monitor", "val_AUC"),
    ("training: {checkpoint: {monitor: val_recall}}\n", "training.checkpoint.monitor",
     "val_recall"),
    ("training: {early_stopping: {monitor: logcosh}}\n", "training.early_stopping.monitor",
     "logcosh"),
    ("search: {objective: val_recall, method: grid, parameters: {seed: {choice: [1, 2]}}}\n",
     "search.objective", "val_recall"),
])
def test_a_logged_name_may_be_monitored(tmp_path: Path, extra: str, where: str,
                                        name: str) -> None:
    value: object = load_config(monitored(tmp_path, extra)).config
    for part in where.split("."):
        value = getattr(value, part)
    assert value == name  # kept as written: the name Keras logs


@pytest.mark.parametrize(("key", "monitor", "logged"), [
    ("training.early_stopping", "val_precision", "val_Precision"),
    ("training.checkpoint", "val_auc", "val_AUC"),
    ("training.reduce_lr_on_plateau", "precision", "Precision"),
    ("training.checkpoint", "val_Recall", "val_recall"),
    ("training.early_stopping", "val_log_cosh_error", "val_logcosh"),
    ("training.early_stopping", "val_acc", "val_acc"),
    ("training.checkpoint", "val_Precision", "val_Precision"),
])
def test_keras_s_own_name_for_a_metric_monitors_the_name_it_logs(
        tmp_path: Path, key: str, monitor: str, logged: str) -> None:
    # Keras's docs name a metric class by its default name (Precision().name == "precision"),
    # while compile logs metrics: [Precision] as written: either spelling monitors what Keras logs.
    section = key.split(".")[1]
    config = load_config(monitored(tmp_path, f"training: {{{section}: {{monitor: {monitor}}}}}\n"))
    assert getattr(config.config.training, section).monitor == logged


def test_keras_s_own_name_for_a_metric_is_a_search_objective(tmp_path: Path) -> None:
    extra = "search: {objective: val_auc, method: grid, parameters: {seed: {choice: [1, 2]}}}\n"
    search = load_config(monitored(tmp_path, extra)).config.search
    assert search is not None and search.objective == "val_AUC"


def test_a_name_two_metrics_answer_to_is_refused_with_both(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", MONITORED.replace(
        "acc,", "acc, {name: AUC, num_thresholds: 50},") + "training: {checkpoint: "
        "{monitor: val_Auc}}\n")
    known = "loss, Precision, AUC, recall, acc, auc, logcosh"
    known += ", " + ", ".join(f"val_{name}" for name in known.split(", "))
    assert refusal(path) == (
        f"{path}: training.checkpoint.monitor (line 9): must be one of {known}. Received: "
        "'val_Auc'. It could mean 'val_AUC' or 'val_auc': name one.")


@pytest.mark.parametrize(("extra", "expected"), [
    ("training: {early_stopping: {monitor: val_accuracy}}\n",
     "training.early_stopping.monitor (line 9): must be one of {known}. Received: "
     "'val_accuracy'. Did you mean 'val_acc'?"),
    ("training: {early_stopping: {monitor: val_Precison}}\n",
     "training.early_stopping.monitor (line 9): must be one of {known}. Received: "
     "'val_Precison'. Did you mean 'val_Precision'?"),
    ("search: {objective: val_f1_score, method: grid, parameters: {seed: {choice: [1, 2]}}}\n",
     "search.objective (line 9): must be one of {known}. Received: 'val_f1_score'."),
])
def test_a_name_keras_does_not_log_is_refused_with_the_one_it_does(
        tmp_path: Path, extra: str, expected: str) -> None:
    known = ", ".join(load_config(monitored(tmp_path)).config.monitorable())
    assert monitor_error(tmp_path, extra) == f"{tmp_path / 'c.yaml'}: {expected.format(known=known)}"


def test_the_refusal_is_one_line_without_the_whole_config(tmp_path: Path) -> None:
    message = monitor_error(tmp_path, "training:\n  epochs: 2\n  early_stopping:\n"
                                      "    monitor: val_precison\n")
    assert "\n" not in message and "top level" not in message
    assert message.count("Received:") == 1 and "{'name'" not in message
    assert "training.early_stopping.monitor (line 12):" in message


def test_a_default_monitor_is_placed_at_its_section(tmp_path: Path) -> None:
    # early_stopping's monitor defaults to val_loss, which needs validation data.
    text = MONITORED.replace(", validation_split: 0.1", "") + "training:\n  early_stopping: {}\n"
    path = write_yaml(tmp_path / "d.yaml", text)
    assert refusal(path) == (
        f"{path}: training.early_stopping.monitor (line 10): must be one of loss, Precision, AUC, "
        "recall, acc, logcosh. Received: 'val_loss'. val_* metrics need "
        "dataset.validation_split.")


def test_several_steps_per_execution_on_torch_is_placed_at_its_key(tmp_path: Path) -> None:
    # Keras's torch trainer raises ValueError in compile(); dltrain said "internal error" there.
    message = monitor_error(tmp_path, "backend: torch\ntraining: {steps_per_execution: 4}\n")
    assert message == (
        f"{tmp_path / 'c.yaml'}: training.steps_per_execution (line 10): Keras's torch trainer "
        "runs one step per call. Received: 4 on backend torch. Use auto (the default) or 1, or "
        "backend: jax or tensorflow.")
    monitored(tmp_path, "backend: jax\ntraining: {steps_per_execution: 4}\n")
    assert load_config(tmp_path / "c.yaml").config.training.steps_per_execution == 4


PARALLEL = "distribution: {strategy: data_parallel}\n"


@pytest.mark.parametrize(("backend", "batch_size", "extra", "steps"), [
    ("tensorflow", 32, "", 8), ("jax", 32, "", 8), ("tensorflow", 64, "", 4), ("jax", 128, "", 2),
    ("tensorflow", 256, "", 1), ("tensorflow", 1000, "", 1), ("jax", 4, "", 16),
    ("torch", 32, "", 1), ("tensorflow", 32, PARALLEL, 1), ("jax", 32, PARALLEL, 8)])
def test_auto_steps_per_execution_trains_about_256_samples_a_call(
        tmp_path: Path, backend: str, batch_size: int, extra: str, steps: int) -> None:
    monitored(tmp_path, f"backend: {backend}\ntraining: {{batch_size: {batch_size}}}\n{extra}")
    config = load_config(tmp_path / "c.yaml").config
    assert config.training.steps_per_execution == "auto"  # the config keeps the choice
    assert config.steps_per_execution() == steps


@pytest.mark.parametrize(("backend", "limit", "extra", "steps"), [
    ("tensorflow", 700, "", 1), ("tensorflow", 1984, "", 1), ("tensorflow", 2048, "", 4),
    ("tensorflow", None, "", 4), ("jax", 700, "", 4),
    ("tensorflow", 700, "training: {batch_size: 64, steps_per_execution: 4}\n", 4)])
def test_auto_runs_one_step_a_call_where_train_limit_makes_tensorflow_s_epochs_short(
        tmp_path: Path, backend: str, limit: int | None, extra: str, steps: int) -> None:
    """Under 32 steps an epoch (1984 samples: 31 at batch 64), TensorFlow's second tracing of
    the train step for a loop of several costs more than the loop saves; JAX's does not, and
    a number written in the config is kept."""
    path = monitored(tmp_path, f"backend: {backend}\n" + (extra or "training: {batch_size: 64}\n"))
    config = load_config(path, [] if limit is None else [f"dataset.train_limit={limit}"]).config
    assert config.steps_per_execution() == steps


def test_several_steps_per_execution_under_data_parallel_on_tensorflow_is_placed_at_its_key(
        tmp_path: Path) -> None:
    # Keras's multi-step loop failed in MirroredStrategy's graph: an internal error.
    message = monitor_error(tmp_path, "backend: tensorflow\ndistribution: {strategy: "
                            "data_parallel}\ntraining: {steps_per_execution: 4}\n")
    assert message == (
        f"{tmp_path / 'c.yaml'}: training.steps_per_execution (line 11): Keras's TensorFlow "
        "trainer runs one step per call under distribution.strategy data_parallel. Received: 4. "
        "Use auto (the default) or 1, or backend: jax.")


def test_a_number_of_steps_per_execution_is_kept_as_given(tmp_path: Path) -> None:
    monitored(tmp_path, "training: {batch_size: 32, steps_per_execution: 1}\n")
    assert load_config(tmp_path / "c.yaml").config.steps_per_execution() == 1


def test_distribution_on_torch_is_placed_at_its_key(tmp_path: Path) -> None:
    message = monitor_error(tmp_path, "backend: torch\ndistribution: {strategy: data_parallel}\n")
    assert message == (
        f"{tmp_path / 'c.yaml'}: distribution.strategy (line 10): data_parallel runs on the jax "
        "and tensorflow backends; Keras's torch distribution is not in a release. Received: "
        "backend torch. Use backend: jax (or tensorflow), or strategy: none.")


@pytest.mark.parametrize(("loss", "one_hot", "says"), [
    ("categorical_crossentropy", "false",
     "categorical_crossentropy compares one-hot labels with the outputs, and one_hot: false gives "
     "class ids. Use loss: sparse_categorical_crossentropy for class ids, or drop one_hot: false."),
    ("sparse_categorical_crossentropy", "true",
     "sparse_categorical_crossentropy takes class ids, and one_hot: true gives one-hot vectors. "
     "Use loss: categorical_crossentropy for one-hot labels, or drop one_hot: true."),
])
def test_one_hot_labels_that_the_loss_cannot_take_are_refused_at_their_key(
        tmp_path: Path, loss: str, one_hot: str, says: str) -> None:
    path = write_yaml(tmp_path / "c.yaml", f"""\
name: tiny
dataset: {{name: fashion_mnist_mini, one_hot: {one_hot}}}
model:
  input_shape: [28, 28, 1]
  layers: [Flatten, {{Dense: {{units: 10, activation: softmax}}}}]
loss: {loss}
""")
    assert refusal(path) == f"{path}: dataset.one_hot (line 2): {says}"
