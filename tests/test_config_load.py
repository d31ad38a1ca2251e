"""Config loading: schema, overrides, Keras 2 spellings and the error messages users see."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conftest import CONFIGS, write_yaml
from dltrain.config.load import dump, load_config
from dltrain.errors import ConfigError

BASE = """\
name: tiny
dataset: {name: fashion_mnist_mini}
model:
  input_shape: [28, 28, 1]
  layers:
    - Flatten
    - Dense: {units: 10, activation: softmax}
loss: sparse_categorical_crossentropy
"""


def with_sections(extra: str) -> str:
    """BASE with the sections in `extra` replacing or adding to its own."""
    data = yaml.safe_load(BASE)
    data.update(yaml.safe_load(extra))
    return yaml.safe_dump(data, sort_keys=False)


def config_error(tmp_path: Path, text: str, overrides: list[str] | None = None) -> str:
    path = write_yaml(tmp_path / "bad.yaml", text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, overrides)
    return str(caught.value)


def test_minimal_config_gets_documented_defaults(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path / "c.yaml", BASE)).config
    assert config.seed == 42
    assert config.optimizer.name == "adam" and config.optimizer.learning_rate == 0.001
    assert config.training.epochs == 10 and config.training.batch_size == 32
    assert config.metrics == ["accuracy"]
    assert config.model.layers[0] == {"Flatten": {}}
    assert config.checkpoint_monitor == "loss"


def test_misspelt_top_level_key_names_file_line_and_suggestion(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "optimiser: {name: adam}\n")
    assert "bad.yaml" in message
    assert "unknown key 'optimiser' at top level (line 9)" in message
    assert "Did you mean 'optimizer'?" in message


def test_misspelt_nested_key_names_its_path(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "training: {epochs: 2, batchsize: 8}\n")
    assert "unknown key 'batchsize' at training" in message
    assert "Did you mean 'batch_size'?" in message


def test_every_failing_key_is_listed(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "seed: -1\ntraining: {epochs: 0}\n")
    assert "seed (line 9)" in message and "Received: -1" in message
    assert "training.epochs (line 10)" in message and "Received: 0" in message


@pytest.mark.parametrize(("text", "expected"), [
    ("", "Received: an empty file"),
    ("- a\n- b\n", "Received: a list"),
    ("name: [unclosed\n", "invalid YAML"),
    ("name: !!python/object/apply:os.system ['true']\n", "python tags"),
])
def test_unusable_documents_are_config_errors(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(tmp_path, text)


@pytest.mark.parametrize(("extra", "expected"), [
    ("optimizer: {learning_rate: .nan}\n", "optimizer.learning_rate"),
    ("optimizer: {learning_rate: -0.01}\n", "optimizer.learning_rate"),
    ("training: {batch_size: 0}\n", "training.batch_size"),
    ("name: ../../escape\n", "name"),
    ("dataset: {name: imagenet}\n", "dataset.name"),
    ("dataset: {name: csv}\n", "dataset (line 2): dataset 'csv' needs dataset.path"),
    ("dataset: {name: mnist, validation_split: 1.5}\n", "dataset.validation_split"),
    ("augmentation: {shear_range: 0.2}\n", "'shear_range' is not supported"),
    ("augmentation: {rescale: 0.5}\n", "set dataset.rescale instead"),
    ("training: {early_stopping: {monitor: val_loss}}\n", "val_* metrics need"),
    ("training: {steps_per_execution: 0}\n", "training.steps_per_execution"),
    ("training: {jit_compile: sometimes}\n", "training.jit_compile"),
])
def test_values_out_of_range_are_rejected(tmp_path: Path, extra: str, expected: str) -> None:
    assert expected in config_error(tmp_path, with_sections(extra))


def test_duplicate_keys_are_errors_not_silently_dropped(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "seed: 1\nseed: 2\n")
    assert "(line 10): duplicate key 'seed', first given on line 9" in message


def test_layer_entry_must_name_one_class(tmp_path: Path) -> None:
    text = BASE.replace("    - Flatten\n", "    - {Flatten: {}, Dense: {units: 3}}\n")
    assert "layer 0 must name exactly one layer class" in config_error(tmp_path, text)


def test_set_changes_exactly_the_named_values(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE)
    before = yaml.safe_load(dump(load_config(path).config))
    after = yaml.safe_load(dump(load_config(path, ["optimizer.learning_rate=0.01",
                                                   "training.epochs=2"]).config))
    assert after["optimizer"]["learning_rate"] == 0.01
    assert after["training"]["epochs"] == 2
    after["optimizer"]["learning_rate"] = before["optimizer"]["learning_rate"]
    after["training"]["epochs"] = before["training"]["epochs"]
    assert after == before


def test_set_reaches_into_layer_lists(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE)
    config = load_config(path, ["model.layers.1.Dense.units=7"]).config
    assert config.model.layers[1]["Dense"]["units"] == 7


@pytest.mark.parametrize(("override", "expected"), [
    ("training.epochs", "expected key.path=value"),
    ("model.layers.9.Dense.units=3", "index below 2"),
    ("training.epochs=two", "training.epochs"),
    ("trainig.epochs=2", "Did you mean 'training'?"),
])
def test_bad_overrides_say_what_is_wrong(tmp_path: Path, override: str, expected: str) -> None:
    assert expected in config_error(tmp_path, BASE, [override])


def test_keras2_lr_is_read_as_learning_rate_with_a_note(tmp_path: Path) -> None:
    loaded = load_config(write_yaml(tmp_path / "c.yaml", BASE + "optimizer: {lr: 0.05}\n"))
    assert loaded.config.optimizer.learning_rate == 0.05
    assert loaded.notes == ["optimizer.lr is the Keras 2 name; read as optimizer.learning_rate."]


def test_both_lr_spellings_is_an_error(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "optimizer: {lr: 0.05, learning_rate: 0.1}\n")
    assert "both 'lr' and 'learning_rate'" in message


@pytest.mark.parametrize("section", ["optimizer: {name: rmsprop, lr: 0.05}",
                                     "training: {nb_epoch: 20}", "optimizer: rmsprop"])
def test_set_names_todays_keys_over_a_files_keras2_spellings(tmp_path: Path, section: str) -> None:
    # --set applied before the file's spellings were read: "has both 'lr' and
    # 'learning_rate'", "unknown key 'nb_epoch'", "the parent of 'learning_rate' is not a section".
    path = write_yaml(tmp_path / "c.yaml", BASE + section + "\n")
    config = load_config(path, ["optimizer.learning_rate=0.01", "training.epochs=1"]).config
    assert (config.optimizer.learning_rate, config.training.epochs) == (0.01, 1)
    if "rmsprop" in section:
        assert config.optimizer.name == "rmsprop"


def test_set_with_a_keras2_key_is_read_as_todays_with_a_note(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE + "optimizer: {name: adam, learning_rate: 0.1}\n")
    loaded = load_config(path, ["optimizer.lr=0.01", "training.nb_epoch=3"])
    assert loaded.config.optimizer.learning_rate == 0.01 and loaded.config.training.epochs == 3
    assert loaded.notes == [
        "--set optimizer.lr: the Keras 2 name; read as optimizer.learning_rate.",
        "--set training.nb_epoch: the Keras 2 name; read as training.epochs."]


def test_set_reaches_into_a_loss_or_metric_given_by_name(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE + "metrics: [accuracy, auc]\n")
    config = load_config(path, ["loss.from_logits=false", "metrics.1.num_thresholds=50"]).config
    assert config.loss_name == "sparse_categorical_crossentropy"
    assert config.metrics[0] == "accuracy"
    assert config.metrics[1].name == "auc" and config.metrics[1].kwargs == {"num_thresholds": 50}


def test_keras2_input_dim_on_first_layer_becomes_input_shape(tmp_path: Path) -> None:
    text = """\
name: tab
dataset: {name: csv, path: x.csv, label_column: y}
model:
  layers:
    - Dense: {units: 12, input_dim: 8, activation: relu}
    - Dense: {units: 1, activation: sigmoid}
loss: binary_crossentropy
"""
    loaded = load_config(write_yaml(tmp_path / "c.yaml", text))
    assert loaded.config.model.input_shape == [8]
    assert loaded.config.model.layers[0] == {"Dense": {"units": 12, "activation": "relu"}}
    assert "model.layers.0.Dense.input_dim is the Keras 2 way" in loaded.notes[0]


def test_input_shape_on_a_later_layer_is_rejected(tmp_path: Path) -> None:
    text = BASE.replace("units: 10,", "units: 10, input_shape: [5],")
    assert "model.layers.1.Dense.input_shape: only the model has an input shape" in config_error(
        tmp_path, text)


def test_dataset_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    text = with_sections("dataset: {name: npz, path: ../data.npz}")
    config = load_config(write_yaml(tmp_path / "sub" / "c.yaml", text)).config
    assert config.dataset.path == (tmp_path / "data.npz").resolve()


def test_smoke_shrinks_epochs_and_data(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path / "c.yaml", BASE), smoke=True).config
    assert (config.training.epochs, config.dataset.train_limit, config.dataset.test_limit) == (
        1, 256, 128)


def test_smoke_runs_one_step_a_call_unless_a_number_was_chosen(tmp_path: Path) -> None:
    # TensorFlow traces a loop of several steps twice; a smoke run's few steps never pay it back.
    path = write_yaml(tmp_path / "c.yaml", BASE)
    assert load_config(path).config.steps_per_execution() == 8  # batch 32: auto, 256 a call
    assert load_config(path, smoke=True).config.training.steps_per_execution == 1
    assert load_config(path, ["training.steps_per_execution=auto"],
                       smoke=True).config.training.steps_per_execution == "auto"
    written = write_yaml(tmp_path / "d.yaml", with_sections("training: {steps_per_execution: 4}"))
    assert load_config(written, smoke=True).config.training.steps_per_execution == 4


def test_explicit_overrides_beat_smoke_defaults(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE)
    config = load_config(path, ["training.epochs=3", "dataset.test_limit=50"], smoke=True).config
    assert (config.training.epochs, config.dataset.train_limit, config.dataset.test_limit) == (
        3, 256, 50)


def test_shipped_configs_validate() -> None:
    for path in sorted(CONFIGS.glob("*.yaml")):
        assert load_config(path).config.name == path.stem


# --- where an error came from: the file's line, or the --set option that wrote the key -------

@pytest.mark.parametrize(("override", "expected"), [
    ("trainig.epochs=2",
     "--set trainig.epochs=2: unknown key 'trainig' at top level. Did you mean 'training'?"),
    ("training.epochz=2",
     "--set training.epochz=2: unknown key 'epochz' at training. Did you mean 'epochs'?"),
    ("training.epochs=two", "--set training.epochs=two: training.epochs: Input should be"),
    ("model.layers.1={Dense: {units: 10, activation: softmax, bias: 1}}", None),
])
def test_a_key_from_set_is_blamed_on_set_not_on_a_file_line(
        tmp_path: Path, override: str, expected: str | None) -> None:
    text = with_sections("training: {epochs: 2, batch_size: 8}\n")
    if expected is None:  # the layer's own arguments are checked when the model is built
        load_config(write_yaml(tmp_path / "bad.yaml", text), [override])
        return
    message = config_error(tmp_path, text, [override])
    assert message.startswith(expected), message
    assert "(line" not in message and "bad.yaml" not in message


def test_keys_from_the_file_keep_their_line_next_to_a_set_error(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "seed: -1\n", ["trainig.epochs=2"])
    assert message.splitlines() == [
        f"{tmp_path / 'bad.yaml'}: seed (line 9): Input should be greater than or equal to 0. "
        "Received: -1.",
        "--set trainig.epochs=2: unknown key 'trainig' at top level. Did you mean 'training'?",
    ]


def test_a_later_stage_error_on_a_set_key_names_the_set_option(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE + "optimizer: {name: adam}\n")
    loaded = load_config(path, ["optimizer.learning_rat=0.01"])
    error = ConfigError("optimizer: unknown argument 'learning_rat' for Adam. Did you mean "
                        "'learning_rate'?")
    assert str(loaded.locate(error)) == (
        "--set optimizer.learning_rat=0.01: optimizer: unknown argument 'learning_rat' for Adam. "
        "Did you mean 'learning_rate'?")
    unrelated = ConfigError("optimizer: unknown argument 'beta_9' for Adam.")
    assert str(loaded.locate(unrelated)) == (
        f"{path}: optimizer (line 9): unknown argument 'beta_9' for Adam.")


def test_a_later_stage_error_inside_a_set_value_names_the_set_option(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE)
    loaded = load_config(path, ["model.layers.1.Dense.units=0"])
    error = ConfigError("model.layers.1.Dense.units: must be positive.")
    assert str(loaded.locate(error)) == (
        "--set model.layers.1.Dense.units=0: model.layers.1.Dense.units: must be positive.")
    error = ConfigError("model.layers.0.Flatten: bad.")
    assert str(loaded.locate(error)) == f"{path}: model.layers.0.Flatten (line 6): bad."


def test_set_paths_are_relative_to_the_working_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "work").mkdir()
    monkeypatch.chdir(tmp_path / "work")
    path = write_yaml(tmp_path / "sub" / "c.yaml",
                      with_sections("dataset: {name: csv, path: in_file.csv, label_column: y}"))
    dataset = load_config(path, ["dataset.test_path=data/test.csv"]).config.dataset
    assert dataset.test_path == tmp_path / "work" / "data" / "test.csv"
    assert dataset.path == tmp_path / "sub" / "in_file.csv"
    dataset = load_config(path, ["dataset={name: npz, path: x.npz}"]).config.dataset
    assert dataset.path == tmp_path / "work" / "x.npz"


# --- Keras 2 habits --------------------------------------------------------------------------

def test_optimizer_given_as_a_bare_name_is_read_as_that_optimizer(tmp_path: Path) -> None:
    loaded = load_config(write_yaml(tmp_path / "c.yaml", BASE + "optimizer: sgd\n"))
    assert (loaded.config.optimizer.name, loaded.config.optimizer.learning_rate) == ("sgd", 0.01)
    assert loaded.notes == []
    config = load_config(write_yaml(tmp_path / "d.yaml", BASE), ["optimizer=rmsprop"]).config
    assert config.optimizer.name == "rmsprop"


def test_optimizer_that_is_neither_a_name_nor_a_section_is_rejected(tmp_path: Path) -> None:
    message = config_error(tmp_path, BASE + "optimizer: 5\n")
    assert "optimizer (line 9): Input should be a valid dictionary" in message


# --- hostile YAML: refused quickly, with the line --------------------------------------------

def alias_bomb(levels: int = 9) -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for level in range(1, levels):
        lines.append(f"a{level}: &a{level} [{', '.join([f'*a{level - 1}'] * 9)}]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(("text", "expected"), [
    (alias_bomb(), "bad.yaml (line 6): more than 100,000 values once aliases (*name) are expanded"),
    ("name: x\nmodel: " + "[" * 5000 + "]" * 5000 + "\n",
     "bad.yaml (line 2): nested deeper than 100 levels"),
    ("name: x\nmodel: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n",
     "bad.yaml (line 2): nested deeper than 100 levels"),
    ("name: x\n" + "".join(f"{'  ' * depth}a:\n" for depth in range(150)),
     "bad.yaml (line 102): nested deeper than 100 levels"),
    ("name: x\nmodel: &loop [1, *loop]\n",
     "bad.yaml (line 2): alias '*loop' refers to a collection that contains it"),
])
def test_hostile_yaml_is_a_config_error(tmp_path: Path, text: str, expected: str) -> None:
    assert expected in config_error(tmp_path, text)


def test_aliases_of_a_sane_size_still_work(tmp_path: Path) -> None:
    text = BASE.replace("    - Flatten\n", "    - Dense: &hidden {units: 8, activation: relu}\n"
                        "    - Dense: *hidden\n")
    text = text.replace("layers:", "input_shape: [4]\n  layers:").replace(
        "  input_shape: [28, 28, 1]\n", "")
    layers = load_config(write_yaml(tmp_path / "c.yaml", text)).config.model.layers
    assert layers[0] == layers[1] == {"Dense": {"units": 8, "activation": "relu"}}


def test_merge_keys_may_override_merged_values(tmp_path: Path) -> None:
    text = BASE.replace("    - Flatten\n", "    - Flatten\n"
                        "    - Dense: &hidden {units: 8, activation: relu}\n"
                        "    - Dense: {<<: *hidden, units: 16}\n")
    layers = load_config(write_yaml(tmp_path / "c.yaml", text)).config.model.layers
    assert layers[2] == {"Dense": {"units": 16, "activation": "relu"}}


def test_set_on_an_aliased_value_changes_only_the_named_key(tmp_path: Path) -> None:
    text = BASE.replace("    - Flatten\n", "    - Flatten\n"
                        "    - Dense: &hidden {units: 8, activation: relu}\n"
                        "    - Dense: *hidden\n")
    path = write_yaml(tmp_path / "c.yaml", text)
    layers = load_config(path, ["model.layers.2.Dense.units=3"]).config.model.layers
    assert (layers[1]["Dense"]["units"], layers[2]["Dense"]["units"]) == (8, 3)


@pytest.mark.parametrize(("value", "expected"), [
    ("[" * 3000 + "]" * 3000, "nested deeper than 100 levels"),
    ("{a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a], "
     "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b], d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, "
     "*c], e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d], f: [*e, *e, *e, *e, *e, *e, *e, *e, "
     "*e, *e]}", "more than 100,000 values once aliases (*name) are expanded"),
])
def test_hostile_set_values_are_config_errors(tmp_path: Path, value: str, expected: str) -> None:
    message = config_error(tmp_path, BASE, [f"model.input_shape={value}"])
    assert message.startswith(f"--set model.input_shape={value[:20]}"), message[:200]
    assert expected in message


# --- --smoke checks the config as written before shrinking it ---------------------------------

@pytest.mark.parametrize(("epochs", "expected"), [
    ("-1", "training.epochs (line 10): Input should be greater than 0. Received: -1."),
    ("ten", "training.epochs (line 10): Input should be a valid integer"),
    (str(10**30), "training.epochs (line 10): Input should be less than or equal to 100000"),
])
def test_smoke_refuses_epochs_the_real_run_would_refuse(
        tmp_path: Path, epochs: str, expected: str) -> None:
    path = write_yaml(tmp_path / "bad.yaml", BASE + f"training:\n  epochs: {epochs}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, smoke=True)
    assert expected in str(caught.value)


def test_smoke_refuses_a_bad_epochs_given_with_set(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE)
    with pytest.raises(ConfigError) as caught:
        load_config(path, ["training.epochs=0"], smoke=True)
    assert str(caught.value).startswith("--set training.epochs=0: training.epochs: Input should "
                                        "be greater than 0. Received: 0.")


def test_smoke_reads_the_keras1_epochs_spelling(tmp_path: Path) -> None:
    loaded = load_config(write_yaml(tmp_path / "c.yaml", BASE + "training: {nb_epoch: 5}\n"),
                         smoke=True)
    assert loaded.config.training.epochs == 1
    assert loaded.notes == ["training.nb_epoch is the Keras 1 name; read as training.epochs."]


def test_explicit_limits_above_smoke_sizes_still_win(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", BASE.replace(
        "{name: fashion_mnist_mini}", "{name: fashion_mnist_mini, train_limit: 100}"))
    config = load_config(path, ["dataset.test_limit=1000"], smoke=True).config
    assert (config.training.epochs, config.dataset.train_limit, config.dataset.test_limit) == (
        1, 100, 1000)


# --- dataset keys the chosen dataset never reads ----------------------------------------------

@pytest.mark.parametrize(("dataset", "expected"), [
    ("{name: fashion_mnist_mini, data_dir: data}",
     "dataset.data_dir (line 2): fashion_mnist_mini does not read data_dir (it ships with "
     "dltrain). Remove it."),
    ("{name: mnist, label_column: y}",
     "dataset.label_column (line 2): mnist does not read label_column (only csv does). "
     "Remove it."),
    ("{name: csv, path: x.csv, label_column: y, image_size: [8, 8]}",
     "dataset.image_size (line 2): csv does not read image_size (only image_folder does). "
     "Remove it."),
    ("{name: cifar10, path: x}",
     "dataset.path (line 2): cifar10 does not read path (it reads data_dir instead). Remove it."),
    ("{name: npz, path: x.npz, test_split: 0.3}",
     "dataset.test_split (line 2): npz does not read test_split (only csv and image_folder "
     "do). Remove it."),
    ("{name: image_folder, path: x, data_dir: y}",
     "dataset.data_dir (line 2): image_folder does not read data_dir (it reads path instead). "
     "Remove it."),
])
def test_a_dataset_key_the_dataset_never_reads_is_an_error(
        tmp_path: Path, dataset: str, expected: str) -> None:
    message = config_error(tmp_path, BASE.replace("{name: fashion_mnist_mini}", dataset))
    assert expected in message
    assert "Received" not in message


def test_dataset_keys_left_at_their_defaults_are_not_errors(tmp_path: Path) -> None:
    """A saved run's config.yaml lists every key with its default; it must load again."""
    text = BASE.replace("{name: fashion_mnist_mini}", "{name: mnist, data_dir: null, path: null, "
                        "test_split: 0.2, image_size: [64, 64], color_mode: rgb}")
    assert load_config(write_yaml(tmp_path / "c.yaml", text)).config.dataset.name == "mnist"


def test_a_saved_config_loads_again(tmp_path: Path) -> None:
    first = load_config(write_yaml(tmp_path / "c.yaml", BASE)).config
    again = load_config(write_yaml(tmp_path / "saved.yaml", dump(first))).config
    assert again == first


@pytest.mark.parametrize("written, value", [("1e-3", 0.001), ("1E3", 1000.0), ("1.0e12", 1e12),
                                            ("-2e-1", -0.2), ("1_000e-3", 1.0)])
def test_exponents_without_a_dot_or_sign_are_numbers_as_in_yaml_1_2(
        tmp_path: Path, written: str, value: float) -> None:
    # PyYAML follows YAML 1.1, where 1e-3 is the string "1e-3": Keras habits (lr 1e-3) and
    # schedules' free-form arguments would reach Keras as strings.
    text = BASE + ("optimizer:\n  name: adam\n"
                   f"  schedule: {{name: ExponentialDecay, decay_steps: {written}, "
                   "decay_rate: 0.9}\n")
    config = load_config(write_yaml(tmp_path / "c.yaml", text), []).config
    assert config.optimizer.schedule is not None
    assert config.optimizer.schedule.model_extra["decay_steps"] == value


def test_set_values_read_exponents_as_numbers_too(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path / "c.yaml", BASE), [
        "optimizer.schedule={name: ExponentialDecay, decay_steps: 1e3, decay_rate: 0.9}"]).config
    assert config.optimizer.schedule is not None
    assert config.optimizer.schedule.model_extra["decay_steps"] == 1000.0


def test_version_like_strings_stay_strings(tmp_path: Path) -> None:
    text = BASE + "optimizer:\n  name: adam\n  schedule: {name: e1e2, tag: 1e, v: 1.2e}\n"
    config = load_config(write_yaml(tmp_path / "c.yaml", text), []).config
    assert config.optimizer.schedule is not None
    assert config.optimizer.schedule.model_extra["tag"] == "1e"
    assert config.optimizer.schedule.model_extra["v"] == "1.2e"


def test_a_folder_given_as_the_config_is_named_and_a_runs_config_pointed_to(
        tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == f"{tmp_path}: a folder, not a config file."
    write_yaml(tmp_path / "config.yaml", (CONFIGS / "quickstart.yaml").read_text())
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)
    assert str(caught.value) == (f"{tmp_path}: a folder, not a config file; the run's config is "
                                 f"{tmp_path / 'config.yaml'}.")


def test_a_leading_zero_is_decimal_as_in_yaml_1_2(tmp_path: Path) -> None:
    # YAML 1.1 read these as octal: seed 34 and batch size 8, silently.
    path = write_yaml(tmp_path / "c.yaml", BASE + "seed: 0042\ntraining: {epochs: 0x0a}\n")
    config = load_config(path, ["training.batch_size=010"]).config
    assert (config.seed, config.training.batch_size, config.training.epochs) == (42, 10, 10)


@pytest.mark.parametrize(("section", "expected"), [
    # Each got only "Allowed keys: ...", or a wrong guess (steps_per_epoch: steps_per_execution).
    ("training: {validation_split: 0.1}", "unknown key 'validation_split' at training (line 9). "
     "It belongs in the dataset section: dataset.validation_split."),
    ("epochs: 5", "unknown key 'epochs' at top level (line 9). It belongs in the training "
     "section: training.epochs."),
    ("training: {steps_per_epoch: 10}", "unknown key 'steps_per_epoch' at training (line 9). "
     "dltrain has no steps_per_epoch. An epoch here is one pass over the training data; "
     "dataset.train_limit makes it shorter."),
    ("training: {class_weight: {0: 1, 1: 2}}", "unknown key 'class_weight' at training (line 9). "
     "Class weights are not supported yet."),
    ("training: {reduce_lr_on_plateau: {epsilon: 0.01}}", "unknown key 'epsilon' at "
     "training.reduce_lr_on_plateau (line 9). 'epsilon' is the Keras 2 name; use 'min_delta'."),
])
def test_keys_from_keras_fit_say_where_they_belong(tmp_path: Path, section: str,
                                                   expected: str) -> None:
    assert config_error(tmp_path, BASE + section + "\n") == f"{tmp_path / 'bad.yaml'}: {expected}"


@pytest.mark.parametrize(("optimizer", "rate"), [
    ("sgd", 0.01), ("{name: SGD, momentum: 0.9}", 0.01), ("rmsprop", 0.001), ("adam", 0.001),
    ("{name: sgd, learning_rate: 0.1}", 0.1)])
def test_an_optimizer_without_a_rate_trains_at_keras_default(tmp_path: Path, optimizer: str,
                                                             rate: float) -> None:
    # Keras's SGD() takes 0.01; dltrain gave every optimizer 0.001.
    path = write_yaml(tmp_path / "c.yaml", BASE + f"optimizer: {optimizer}\n")
    assert load_config(path).config.optimizer.learning_rate == rate


def test_a_layer_given_a_positional_argument_is_shown_it_by_name_at_its_line(
        tmp_path: Path) -> None:
    # "Input should be a valid dictionary", at the list's line, with the whole list after it.
    text = BASE.replace("    - Flatten\n", "    - Flatten\n    - Dropout: 0.5\n")
    assert config_error(tmp_path, text) == (
        f"{tmp_path / 'bad.yaml'}: model.layers (line 7): layer 1: Dropout's arguments are a "
        "mapping, by name: '- Dropout: {rate: 0.5}'. Received: 0.5.")


def test_a_csv_column_given_by_number_is_asked_for_by_name(tmp_path: Path) -> None:
    # "Input should be a valid string. Received: 8. Input should be a valid list. Received: 8."
    text = BASE.replace("{name: fashion_mnist_mini}", "{name: csv, path: d.csv, label_column: 8}")
    assert config_error(tmp_path, text) == (
        f"{tmp_path / 'bad.yaml'}: dataset.label_column (line 2): columns are named by the CSV's "
        "header row, not numbered. Received: 8. Write the column's name (a file without a header "
        "row needs one added as its first line).")


@pytest.mark.parametrize(("dataset", "expected"), [
    # It trained to 99% on Pima with the label among the features, exit 0.
    ("{name: csv, path: d.csv, label_column: y, feature_columns: [a, y]}",
     "dataset.feature_columns (line 2): lists the label column 'y': the model would be given the "
     "answer as an input. Remove it from feature_columns."),
    ("{name: csv, path: d.csv, label_column: [y, z], feature_columns: [a, z]}",
     "lists the label column 'z'"),
    ("{name: csv, path: d.csv, label_column: [y, y]}",
     "dataset.label_column (line 2): names 'y' twice. Name each column once."),
    ("{name: csv, path: d.csv, label_column: y, feature_columns: [a, b, a]}",
     "dataset.feature_columns (line 2): names 'a' twice."),
])
def test_a_column_is_a_label_or_a_feature_once(tmp_path: Path, dataset: str,
                                               expected: str) -> None:
    text = BASE.replace("{name: fashion_mnist_mini}", dataset).replace(
        "input_shape: [28, 28, 1]", "input_shape: [2]").replace("    - Flatten\n", "")
    assert expected in config_error(tmp_path, text)


def test_keras_refusing_a_set_layer_argument_names_the_set_option(tmp_path: Path) -> None:
    """Keras names a refused argument in backticks or as name=value, not in quotes: the error
    of `--set model.layers.1.Dense.units=0` was blamed on the file's line of that layer."""
    path = write_yaml(tmp_path / "c.yaml", BASE)
    loaded = load_config(path, ["model.layers.1.Dense.units=0"])
    keras_says = ("Received an invalid value for `units`, expected a positive integer. "
                  "Received: units=0")
    error = ConfigError(f"model.layers.1.Dense: {keras_says}")
    assert str(loaded.locate(error)) == (
        f"--set model.layers.1.Dense.units=0: model.layers.1.Dense: {keras_says}")
    other = ConfigError("model.layers.1.Dense: Received an invalid value for `activation`.")
    assert str(loaded.locate(other)).startswith(f"{path}: model.layers.1.Dense (line ")


# --- long literal lists are no alias bombs ------------------------------------------------------

def long_choice(count: int) -> str:
    return with_sections("{}") + ("search:\n  method: grid\n  parameters:\n    seed:\n"
                                  f"      choice: [{', '.join(map(str, range(count)))}]\n")


@pytest.mark.slow  # seconds of parsing: the size is the point (the 100,000-value limit)
def test_a_long_literal_choice_list_is_read_whole(tmp_path: Path) -> None:
    # One value over the limit on what aliases may expand to: a literal list is read whole.
    path = write_yaml(tmp_path / "long.yaml", long_choice(100_001))
    search = load_config(path).config.search
    assert search is not None and search.parameters["seed"].choice == list(range(100_001))


@pytest.mark.slow  # seconds of parsing: the size is the point (the 100,000-value limit)
def test_a_long_literal_list_given_with_set_is_read_whole(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "c.yaml", long_choice(2))
    values = f"[{', '.join(map(str, range(120_000)))}]"
    search = load_config(path, [f"search.parameters.seed.choice={values}"]).config.search
    assert search is not None and len(search.parameters["seed"].choice or []) == 120_000


@pytest.mark.parametrize("levels", [6, 9])
def test_an_alias_bomb_as_a_choice_list_is_still_refused(tmp_path: Path, levels: int) -> None:
    text = alias_bomb(levels) + long_choice(2).replace("choice: [0, 1]", f"choice: *a{levels - 1}")
    message = config_error(tmp_path, text)
    assert "more than 100,000 values once aliases (*name) are expanded" in message, message


def test_config_diff_names_the_leaf_that_differs_inside_a_list_of_layers() -> None:
    # compare printed the whole model.layers list where one filter count differed.
    from dltrain.config.load import config_diff

    layers = [{"Conv2D": {"filters": 32, "kernel_size": 3}}, {"Flatten": {}},
              {"Dense": {"units": 10}}]
    old = {"model": {"input_shape": [28, 28, 1], "layers": layers}, "metrics": ["accuracy"]}
    new = yaml.safe_load(yaml.safe_dump(old))
    new["model"]["layers"][0]["Conv2D"]["filters"] = 16
    assert config_diff(old, new) == [("model.layers.0.Conv2D.filters", 32, 16)]
    new["model"]["layers"][1] = {"Dropout": {"rate": 0.5}}  # another layer: named whole
    new["model"]["layers"].append({"Dense": {"units": 2}})
    new["model"]["input_shape"] = [32, 32, 3]  # a list of plain values is one value
    assert config_diff(old, new) == [
        ("model.input_shape", [28, 28, 1], [32, 32, 3]),
        ("model.layers.0.Conv2D.filters", 32, 16),
        ("model.layers.1", {"Flatten": {}}, {"Dropout": {"rate": 0.5}}),
        ("model.layers.3", None, {"Dense": {"units": 2}})]
