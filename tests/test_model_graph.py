"""Graph configs as Keras functional models (dltrain/model/graph.py): the wiring the config
writes, merge shapes that disagree named with both layers, chains still keras.Sequential, and a
residual run trained on TensorFlow and JAX, reloaded by plain Keras and exported with parity."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import CONFIGS, ROOT, run_cli, write_yaml
from dltrain.backend import keras_module
from dltrain.config.load import load_config
from dltrain.errors import ConfigError
from dltrain.model.build import build_model

RESIDUAL = """\
name: residual
dataset: {name: npz, path: data.npz, validation_split: 0.25}
loss: sparse_categorical_crossentropy
training: {epochs: 1, batch_size: 16}
model:
  input_shape: [8, 8, 1]
  layers:
    - Conv2D: {filters: 4, kernel_size: 3, padding: same, name: stem}
    - Repeat:
        times: 2
        layers:
          - Conv2D: {filters: 4, kernel_size: 3, padding: same, activation: relu, name: conv}
          - BatchNormalization: {}
          - Add: {inputs: [-1, -3], name: sum}
    - Concatenate: {inputs: [sum_2, stem], name: both}
    - GlobalAveragePooling2D: {}
    - Dense: {units: 4, activation: softmax, name: out}
"""
JAX_TIMEOUT = 240


def write_data(folder: Path) -> None:
    """48 train and 16 test 8x8 images whose bright quadrant is the label (4 classes)."""
    rng = np.random.default_rng(0)

    def split(count: int) -> tuple[np.ndarray, np.ndarray]:
        y = np.arange(count) % 4
        x = rng.uniform(0, 0.2, size=(count, 8, 8, 1)).astype(np.float32)
        for label in range(4):
            row, column = (label // 2) * 4, (label % 2) * 4
            x[y == label, row:row + 4, column:column + 4] += 0.8
        return x, y.astype(np.int64)

    (x_train, y_train), (x_test, y_test) = split(48), split(16)
    np.savez(folder / "data.npz", x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


@pytest.fixture(scope="module")
def residual_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("graph")
    write_data(folder)
    return write_yaml(folder / "residual.yaml", RESIDUAL)


def inbound(model: Any, name: str) -> list[str]:
    """The names of the layers whose outputs `name` takes, as Keras wired them."""
    node = model.get_layer(name)._inbound_nodes[0]
    return [tensor._keras_history.operation.name for tensor in node.input_tensors]


def test_the_residual_config_builds_the_functional_graph_it_writes(residual_yaml: Path) -> None:
    model = build_model(load_config(residual_yaml).config)
    keras = keras_module()
    assert type(model) is keras.Model or isinstance(model, keras.Model)
    assert not isinstance(model, keras.Sequential)
    bn = [layer.name for layer in model.layers if type(layer).__name__ == "BatchNormalization"]
    assert inbound(model, "stem") == ["input"]  # the InputLayer
    assert inbound(model, "conv_1") == ["stem"]
    assert inbound(model, "sum_1") == [bn[0], "stem"]  # -3: the block's input, the shortcut
    assert inbound(model, "conv_2") == ["sum_1"]
    assert inbound(model, "sum_2") == [bn[1], "sum_1"]
    assert inbound(model, "both") == ["sum_2", "stem"]
    assert model.get_layer("both").output.shape == (None, 8, 8, 8)
    assert model.output_shape == (None, 4) and model.count_params() == 40 + 2 * 148 + 2 * 16 + 36


def test_merge_shapes_that_disagree_name_both_layers_shapes_and_line(
        residual_yaml: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_yaml(residual_yaml.with_name("wide.yaml"), RESIDUAL.replace(
        "filters: 4, kernel_size: 3, padding: same, activation: relu", "filters: 6, kernel_size: 3, "
        "padding: same, activation: relu"))
    code, _, err = run_cli(capsys, "show", path)
    assert code == 2
    message = " ".join(err.split())
    assert ("wide.yaml: model.layers.1.Repeat.layers.2.Add (line 14): cannot merge its inputs: "
            "model.layers.1.Repeat.layers.1.BatchNormalization (copy 1 of 2) gives "
            "(None, 8, 8, 6), 'stem' (model.layers.0.Conv2D) gives (None, 8, 8, 4); Add takes "
            "inputs of the same shape.") in message
    assert "1x1 Conv2D on the shortcut" in message


def test_a_dot_of_sizes_that_disagree_says_what_dot_takes(tmp_path: Path) -> None:
    config = load_config(write_yaml(tmp_path / "dot.yaml", """\
name: dot
dataset: {name: fashion_mnist_mini}
loss: sparse_categorical_crossentropy
model:
  input_shape: [4]
  layers:
    - Dense: {units: 3, name: a}
    - Dense: {units: 5, inputs: input}
    - Dot: {axes: 1, inputs: [a, -1]}
    - Dense: {units: 10, activation: softmax}
""")).config
    with pytest.raises(ConfigError) as caught:
        build_model(config)
    assert str(caught.value) == (
        "model.layers.2.Dot: cannot merge its inputs: 'a' (model.layers.0.Dense) gives (None, 3), "
        "model.layers.1.Dense gives (None, 5); Dot takes two inputs of the same size along the "
        "axes it multiplies (axes: 1). Set its axes to ones of one size, or make the sizes agree, "
        "e.g. a Dense on one path.")


def test_a_layer_that_cannot_take_the_layer_before_says_so(residual_yaml: Path) -> None:
    config = load_config(write_yaml(residual_yaml.with_name("flat.yaml"), RESIDUAL.replace(
        "- GlobalAveragePooling2D: {}", "- Flatten: {name: flat}\n    - Conv2D: {filters: 2, "
        "kernel_size: 3, inputs: flat}\n    - GlobalAveragePooling2D: {}"))).config
    with pytest.raises(ConfigError, match=r"model.layers.4.Conv2D: cannot follow the previous "
                                          r"layer's output"):
        build_model(config)


def test_a_layer_that_cannot_take_a_named_input_names_it(residual_yaml: Path) -> None:
    config = load_config(write_yaml(residual_yaml.with_name("named.yaml"), RESIDUAL.replace(
        "- GlobalAveragePooling2D: {}", "- Flatten: {name: flat}\n    - Dense: {units: 4, name: d}"
        "\n    - Conv2D: {filters: 2, kernel_size: 3, inputs: flat}\n    - Concatenate: "
        "{inputs: [-1, d]}\n    - GlobalAveragePooling2D: {}"))).config
    with pytest.raises(ConfigError, match=r"^model.layers.5.Conv2D: cannot take the output of "
                                          r"'flat' \(model.layers.3.Flatten\), of shape "
                                          r"\(None, 512\): "):
        build_model(config)


def next_keras_name() -> str:
    """The name Keras gives the next unnamed Dense in this process (it numbers them)."""
    made = keras_module().layers.Dense(1).name
    return "dense_1" if made == "dense" else f"dense_{int(made.rsplit('_', 1)[1]) + 1}"


def test_a_written_name_keras_would_make_up_builds_a_graph_with_fixed_names(
        residual_yaml: Path) -> None:
    taken = next_keras_name()  # Keras's name for the unnamed Dense below, before names were made
    config = load_config(write_yaml(residual_yaml.with_name("names.yaml"), RESIDUAL.replace(
        "name: sum", "name: add").replace("[sum_2, stem]", "[add_2, stem]").replace(
        "- GlobalAveragePooling2D: {}", "- Add: {inputs: [-1, -1]}\n    - GlobalAveragePooling2D: "
        f"{{}}\n    - Dense: {{units: 4, name: {taken}}}\n    - Dense: {{units: 4}}"))).config
    names = [layer.name for layer in build_model(config).layers]
    assert names == ["input", "stem", "conv_1", "batch_normalization", "add_1", "conv_2",
                     "batch_normalization_1", "add_2", "both", "add", "global_average_pooling2d",
                     taken, "dense", "out"]


def test_a_written_name_keras_would_make_up_builds_a_sequential_model(tmp_path: Path) -> None:
    taken = next_keras_name()
    config = load_config(write_yaml(tmp_path / "chain.yaml", f"""\
name: chain
dataset: {{name: fashion_mnist_mini}}
loss: sparse_categorical_crossentropy
model:
  input_shape: [4, 4, 1]
  layers: [Flatten, {{Dense: {{units: 4, name: {taken}}}}}, {{Dense: {{units: 10}}}}]
""")).config
    model = build_model(config)
    keras = keras_module()
    assert isinstance(model, keras.Sequential)
    assert [layer.name for layer in model.layers] == ["flatten", taken, "dense"]


def test_a_name_a_backbone_layer_has_is_refused_at_its_key() -> None:
    from types import SimpleNamespace

    from dltrain.config.graph import nodes
    from dltrain.model.graph import keras_names

    graph = nodes([{"Backbone": {"name": "MobileNetV2"}}, {"Dense": {"name": "backbone_resize"}}])
    first = [SimpleNamespace(name=name) for name in ("backbone_resize", "mobilenetv2")]
    with pytest.raises(ConfigError, match=r"^model.layers.1.Dense.name: the backbone's block has "
                                          r"a layer named 'backbone_resize' \(backbone_resize, "
                                          r"mobilenetv2\); give this layer another name.$"):
        keras_names(graph, first)


def sequential_reference(config: Any) -> Any:
    """The keras.Sequential model the config's layers make, built here without dltrain, under
    the policy build_model set (mixed_precision auto: bfloat16 on some CPUs), with Keras's
    advice for mixed precision: the output layer in float32."""
    keras = keras_module()
    layers = [getattr(keras.layers, name)(**args) for spec in config.model.layers
              for name, args in spec.items()]
    if keras.mixed_precision.global_policy().name != "float32":
        name, args = next(iter(config.model.layers[-1].items()))
        layers[-1] = getattr(keras.layers, name)(**{**args, "dtype": "float32"})
    return keras.Sequential([keras.Input(tuple(config.model.input_shape)), *layers])


def summary(model: Any) -> list[tuple[str, tuple, int, dict[str, Any]]]:
    """Each layer's class, output shape, weights and settings, less its name (dltrain names
    unnamed layers; Keras numbers them per process)."""
    return [(type(layer).__name__, tuple(layer.output.shape), layer.count_params(),
             {key: value for key, value in layer.get_config().items() if key != "name"})
            for layer in model.layers]


@pytest.mark.slow  # builds every shipped model: seconds
def test_every_shipped_chain_builds_the_same_sequential_model_as_before() -> None:
    keras = keras_module()
    for path in sorted(CONFIGS.glob("*.yaml")):
        config = load_config(path).config
        model = build_model(config)
        if path.stem == "fashion_mnist_resnet":
            assert not isinstance(model, keras.Sequential)
            continue
        reference = sequential_reference(config)
        assert isinstance(model, keras.Sequential), path.name
        assert model.count_params() == reference.count_params(), path.name
        assert summary(model) == summary(reference), path.name


# --- one residual run per backend, shared -------------------------------------------------------

@pytest.fixture(scope="module")
def tf_run(residual_yaml: Path) -> Path:
    """A TensorFlow fit of the residual config, in-process."""
    from dltrain.cli import main

    run = residual_yaml.parent / "tf-run"
    assert main(["fit", str(residual_yaml), "--run-dir", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def jax_run(residual_yaml: Path) -> Path:
    """A JAX fit of the same config, with augmentation in the training step and data_parallel
    over two host devices: a process runs one backend, so a subprocess."""
    if importlib.util.find_spec("jax") is None:
        pytest.skip('JAX is not installed: pip install -e ".[jax]"')
    run = residual_yaml.parent / "jax-run"
    env = {key: value for key, value in os.environ.items() if key != "KERAS_BACKEND"}
    done = subprocess.run(
        [sys.executable, "-c", "import sys; from dltrain.cli import main; sys.exit(main())",
         "fit", str(residual_yaml), "--backend", "jax", "--run-dir", str(run),
         "--set", "augmentation.horizontal_flip=true",
         "--set", "distribution.strategy=data_parallel"],
        capture_output=True, text=True, timeout=JAX_TIMEOUT, cwd=residual_yaml.parent,
        env={**env, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu",
             "XLA_FLAGS": f"{os.environ['XLA_FLAGS']} --xla_force_host_platform_device_count=2",
             "DLTRAIN_JAX_CACHE": str(residual_yaml.parent / "jax-cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    return run


def plain_test_loss(run: Path) -> tuple[float, float]:
    """The run's model.keras through keras.saving.load_model alone (no custom objects), scored
    on the test split the run scored."""
    keras = keras_module()
    model = keras.saving.load_model(run / "model.keras")
    data = np.load(run.parent / "data.npz")
    probabilities = np.asarray(model.predict(data["x_test"], verbose=0))
    loss = keras.losses.sparse_categorical_crossentropy(data["y_test"], probabilities)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == data["y_test"]))
    return float(np.mean(np.asarray(loss))), accuracy


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["tensorflow", "jax"])
def test_a_residual_run_reloads_in_plain_keras_with_the_same_predictions(
        backend: str, request: pytest.FixtureRequest) -> None:
    run = request.getfixturevalue("tf_run" if backend == "tensorflow" else "jax_run")
    metrics = json.loads((run / "metrics.json").read_text())
    assert json.loads((run / "run.json").read_text())["state"] == "completed"
    loss, accuracy = plain_test_loss(run)
    assert loss == pytest.approx(metrics["test"]["loss"], rel=1e-4, abs=1e-5)
    assert accuracy == pytest.approx(metrics["test"]["accuracy"])
    config = yaml.safe_load((run / "config.yaml").read_text())
    assert config["model"]["layers"][1]["Repeat"]["times"] == 2  # the graph as written


@pytest.mark.slow
def test_a_residual_run_exports_with_parity(tf_run: Path) -> None:
    from dltrain.report import export

    entry = export.export_run(tf_run, "saved_model")
    assert entry["status"] == "passed"
    assert entry["max_abs_diff"] <= export.TOLERANCE["saved_model"]


def test_show_prints_the_graph_without_keras(residual_yaml: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "show", residual_yaml, "--no-summary")
    assert code == 0
    lines = [line.split() for line in out.splitlines() if line.strip().startswith("#")]
    assert lines[3][:5] == ["#3", "sum_1", "Add", "<-", "#2,"] and lines[3][5] == "stem"
    assert lines[7][:6] == ["#7", "both", "Concatenate", "<-", "sum_2,", "stem"]
    code, out, _ = run_cli(capsys, "show", residual_yaml, "--no-summary", "--json")
    graph = json.loads(out)["graph"]
    assert graph[7] == {"number": 7, "name": "both", "class": "Concatenate",
                        "key": "model.layers.2.Concatenate", "inputs": ["sum_2", "stem"]}


@pytest.mark.slow
def test_a_resume_refuses_a_checkpoint_wired_otherwise(tf_run: Path) -> None:
    """Same layers, same shapes, another shortcut: the checkpoint is not this config's model."""
    from dltrain.errors import RunError
    from dltrain.runs.architecture import check_architecture

    keras = keras_module()
    checkpoint = tf_run / "model.keras"
    model = keras.saving.load_model(checkpoint)
    path = tf_run / "config.yaml"
    check_architecture(path, load_config(path).config, model, checkpoint)
    rewired = write_yaml(tf_run.parent / "rewired.yaml", path.read_text().replace(
        "inputs: [-1, -3]", "inputs: [-1, -2]").replace("- -3", "- -2"))
    with pytest.raises(RunError, match=r"at layer 5 \(Add\): inputs is \[3, 2\] in config.yaml, "
                                       r"\[3, 1\] in model.keras"):
        check_architecture(path, load_config(rewired).config, model, checkpoint)


@pytest.mark.slow  # builds a MobileNetV2: a second
def test_a_backbone_feeds_a_graph(residual_yaml: Path) -> None:
    config = load_config(write_yaml(residual_yaml.with_name("backbone.yaml"), """\
name: backbone
dataset: {name: fashion_mnist_mini}
loss: sparse_categorical_crossentropy
model:
  input_shape: [32, 32, 3]
  layers:
    - Backbone: {name: MobileNetV2, alpha: 0.35, weights: null, pooling: avg}
    - Dense: {units: 8, name: a}
    - Dense: {units: 8}
    - Add: {inputs: [-1, a]}
    - Dense: {units: 10, activation: softmax}
""")).config
    model = build_model(config)
    backbone = model.layers[3]  # after the input, the resizing and the preprocessing map
    assert [type(layer).__name__ for layer in model.layers[:4]] == [
        "InputLayer", "Resizing", "Dense", "Functional"]
    assert inbound(model, "a") == [backbone.name]
    assert model.output_shape == (None, 10)
    from dltrain.runs.architecture import layers

    # the wiring a resume compares: the backbone takes the preprocessing map, not "-1"
    assert [settings["inputs"] for _, _, settings in layers(model)[:5]] == [[], [0], [1], [2], [3]]
