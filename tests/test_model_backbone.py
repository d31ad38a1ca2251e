"""keras.applications backbones: config checks, the preprocessing inside the model, weights
(a file, a download from a loopback server, the offline message) and fine-tuning with resume."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import threading
from collections.abc import Iterator
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from conftest import copy_run, run_cli, to_numpy
from dltrain.config.catalog import check_names
from dltrain.config.load import validate
from dltrain.data.download import MIRROR_ENV
from dltrain.errors import ConfigError

SMALLEST = {"name": "MobileNetV2", "alpha": 0.35, "weights": None, "pooling": "avg",
            "input_size": [32, 32]}
# What Keras's MobileNetV2 fetches for alpha 0.35 without its top (any image size below 96).
MOBILENET_FILE = "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_224_no_top.h5"
DROP = "drop"  # a key of SMALLEST that a test leaves out


def raw_config(backbone: dict[str, Any] | None = None, **sections: Any) -> dict[str, Any]:
    raw: dict[str, Any] = {
        "name": "backbone", "dataset": {"name": "fashion_mnist_mini", "train_limit": 16,
                                        "test_limit": 8},
        "model": {"input_shape": [28, 28, 1],
                  "layers": [{"Backbone": {key: value for key, value in
                                           {**SMALLEST, **(backbone or {})}.items()
                                           if value != DROP}},
                             {"Dense": {"units": 10, "activation": "softmax"}}]},
        "loss": "sparse_categorical_crossentropy",
        # One step a call: "auto" (16 at batch 8) traces TensorFlow's train step a second time
        # inside its loop of steps, most of a fit's time here; no test here is about it.
        "training": {"epochs": 1, "batch_size": 8, "tensorboard": False,
                     "steps_per_execution": 1},
    }
    raw.update(sections)
    return raw


def config_error(raw: dict[str, Any]) -> str:
    with pytest.raises(ConfigError) as caught:
        check_names(validate(raw, "test.yaml"))
    return str(caught.value)


def write_config(folder: Path, raw: dict[str, Any]) -> Path:
    path = folder / "backbone.yaml"
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_a_backbone_config_passes_the_catalog_check() -> None:
    assert check_names(validate(raw_config(), "test.yaml")) is not None


@pytest.mark.parametrize(("backbone", "expected"), [
    ({"name": "MobileNetV5"}, "model.layers.0.Backbone.name: unknown backbone 'MobileNetV5'. Did "
                              "you mean 'MobileNetV2'?"),
    ({"name": "resnet50"}, "unknown backbone 'resnet50'. Did you mean 'ResNet50'?"),
    ({"alfa": 0.35}, "model.layers.0.Backbone: unknown argument 'alfa' for MobileNetV2. Did you "
                     "mean 'alpha'?"),
    ({"input_size": [16, 16]}, "model.layers.0.Backbone.input_size: MobileNetV2 takes images of "
                               "at least 32x32. Received: [16, 16]. Set input_size to [32, 32] "
                               "or more (its default is 224x224)."),
    ({"name": "Xception", "alpha": DROP, "input_size": [64, 64]}, "Xception takes images of at least 71x71"),
    ({"weights": "missing/file.weights.h5"}, "model.layers.0.Backbone.weights: no such weights "
                                             "file: missing/file.weights.h5."),
    ({"pooling": "mean"}, "model.layers.0.Backbone.pooling: Input should be 'avg' or 'max'."),
    ({"fine_tune": {"at_epoch": 1, "layers": 5}},
     "model.layers.0.Backbone.fine_tune.learning_rate: Field required."),
    ({"trainable": True, "fine_tune": {"at_epoch": 1, "layers": 5, "learning_rate": 1e-5}},
     "fine_tune unfreezes a frozen backbone"),
    ({"fine_tune": {"at_epoch": 1, "layers": 5, "learning_rate": 1e-5}},
     "fine_tune.at_epoch: fine-tuning starts after epoch 1, but training.epochs is 1"),
])
def test_bad_backbones_are_refused_with_their_key_path(backbone: dict[str, Any],
                                                       expected: str) -> None:
    assert expected in config_error(raw_config(backbone))


def test_a_backbone_only_as_the_first_layer_and_on_images() -> None:
    raw = raw_config()
    raw["model"]["layers"].insert(0, {"Rescaling": {"scale": 1.0}})
    assert config_error(raw).startswith("model.layers.1.Backbone: a backbone must be the first "
                                        "layer (model.layers.0)")
    raw = raw_config()
    raw["model"]["input_shape"] = [784]
    assert "model.input_shape: a backbone takes images [height, width, 1 or 3" in config_error(raw)
    raw = raw_config()
    raw["dataset"]["standardize"] = True
    assert "dataset.standardize: a backbone normalises its inputs itself" in config_error(raw)


@pytest.mark.parametrize(("change", "where", "expected"), [
    ({"name": "MobileNet2"}, "model.layers.0.Backbone.name",
     "unknown backbone 'MobileNet2'. Did you mean 'MobileNetV2'?"),
    ({"input_size": [28, 28]}, "model.layers.0.Backbone.input_size",
     "MobileNetV2 takes images of at least 32x32. Received: [28, 28]."),
    ({"weights": "nowhere.weights.h5"}, "model.layers.0.Backbone.weights",
     "no such weights file: "),
    ({"weights": "fifo.weights.h5"}, "model.layers.0.Backbone.weights",
     "fifo.weights.h5 is not a weights file but a pipe, socket or device"),
    ({"weights": "folder.weights.h5"}, "model.layers.0.Backbone.weights",
     "folder.weights.h5 is not a weights file but a folder"),
    (None, "model.layers.1.Backbone", "a backbone must be the first layer (model.layers.0)"),
])
def test_the_cli_refuses_bad_backbones_at_their_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], change: dict[str, Any] | None,
        where: str, expected: str) -> None:
    raw = raw_config(change)
    if change is None:
        raw["model"]["layers"].insert(0, {"Flatten": {}})
    os.mkfifo(tmp_path / "fifo.weights.h5")  # opening it would wait for a writer for ever
    (tmp_path / "folder.weights.h5").mkdir()
    code, _, err = run_cli(capsys, "show", write_config(tmp_path, raw), "--no-summary")
    message = " ".join(err.split())
    assert code == 2 and re.search(rf"backbone\.yaml: {re.escape(where)} \(line \d+\): ",
                                   message), err
    assert expected in message
    if change and "weights" in change:  # relative to the config file's folder
        assert str(tmp_path / change["weights"]) in message


@pytest.mark.parametrize("name", ["MobileNetV2", "ResNet50", "DenseNet121", "EfficientNetB0"])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_preprocessing_layer_is_the_backbones_own_preprocess_input(
        name: str, channels: int) -> None:
    """tf, caffe (BGR, means), torch (means, stds) and none: on 0-255 pixels from [0, 1]."""
    import keras

    from dltrain.model.backbone import channel_map, preprocess_function

    kernel, bias = channel_map(name, channels)
    x = np.random.default_rng(1).random((4, 5, 5, channels)).astype("float32")
    layer = keras.layers.Dense(3)
    layer.build((None, 5, 5, channels))
    layer.set_weights([kernel, bias])
    rgb = np.repeat(x, 3, axis=-1) if channels == 1 else x
    _, preprocess = preprocess_function(name)
    expected = to_numpy(preprocess(rgb * 255.0))
    np.testing.assert_allclose(to_numpy(layer(x)), expected, atol=1e-3)


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[np.ndarray]]:
    """MobileNetV2 (alpha 0.35) weights saved from a randomly initialised backbone, once for
    the module: read them, never change them."""
    import keras

    folder = tmp_path_factory.mktemp("weights")
    keras.utils.set_random_seed(7)
    backbone = keras.applications.MobileNetV2(input_shape=(32, 32, 3), alpha=0.35,
                                              include_top=False, weights=None)
    path = folder / "mobilenet.weights.h5"
    backbone.save_weights(path)
    legacy = folder / "served" / MOBILENET_FILE  # the .h5 layout of Keras's published files
    legacy.parent.mkdir()
    backbone.save(legacy)
    return path, backbone.get_weights()


@pytest.fixture(scope="module")
def fitted(tmp_path_factory: pytest.TempPathFactory,
           weights_file: tuple[Path, list[np.ndarray]]) -> tuple[Path, Path]:
    """One epoch of SMALLEST with its weights from a file (a copy of weights_file's, for this
    run alone), trained once for the module's tests that fit: the run and that file. A test
    that changes the run works on its copy (copy_run)."""
    from dltrain.cli import main

    folder = tmp_path_factory.mktemp("fitted")
    path = folder / "mobilenet.weights.h5"
    shutil.copyfile(weights_file[0], path)
    run = folder / "run"
    assert main(["fit", str(write_config(folder, raw_config({"weights": str(path)}))),
                 "--run-dir", str(run)]) == 0
    return run, path


@pytest.mark.slow
def test_a_backbone_model_fits_evaluates_and_predicts_with_its_preprocessing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fitted: tuple[Path, Path]) -> None:
    import keras
    import tensorflow as tf

    run = copy_run(fitted[0], tmp_path / "run")  # eval and export write into it
    saved = json.loads((run / "preprocessing.json").read_text())
    backbone = saved["backbone"]
    assert backbone["name"] == "MobileNetV2" and backbone["image_size"] == [32, 32]
    assert backbone["preprocess_input"] == "keras.applications.mobilenet_v2.preprocess_input"
    assert backbone["in_model"] == ["backbone_resize", "backbone_preprocess"]
    assert backbone["input_channels"] == 1 and backbone["grayscale_repeated_to_rgb"]
    assert np.asarray(backbone["kernel"]) == pytest.approx(np.full((1, 3), 255 / 127.5))
    assert backbone["bias"] == pytest.approx([-1.0, -1.0, -1.0])  # MobileNetV2: x / 127.5 - 1
    metrics = json.loads((run / "metrics.json").read_text())

    code, out, err = run_cli(capsys, "eval", run, "--json")
    assert code == 0, err
    evaluated = json.loads((run / "eval.json").read_text())
    assert evaluated["test"]["loss"] == pytest.approx(metrics["test"]["loss"], rel=1e-4)

    images = np.load(Path(__file__).parents[1] / "dltrain/data/shipped/fashion_mnist_mini.npz")
    images = images["x_test"][:3]
    files = []
    for index, image in enumerate(images):
        files.append(tmp_path / f"item{index}.png")
        files[-1].write_bytes(tf.io.encode_png(image[..., None]).numpy())
    code, out, err = run_cli(capsys, "predict", run, *files, "--json", "--top-k", "10")
    assert code == 0, err
    predicted = [{top["index"]: top["probability"] for top in result["top"]}
                 for result in json.loads(out)]
    model = keras.saving.load_model(run / "model.keras")
    prepared = images[..., None].astype("float32") / 255
    probabilities = model.predict(prepared, verbose=0)
    for row, found in zip(probabilities, predicted, strict=True):
        np.testing.assert_allclose([found[i] for i in range(10)], row, atol=1e-5)
    # The same by hand: Keras's resize, its preprocess_input on 0-255 RGB, the backbone, the head.
    pixels = np.repeat(np.asarray(keras.ops.image.resize(prepared, (32, 32))), 3, axis=-1) * 255
    features = model.layers[2](keras.applications.mobilenet_v2.preprocess_input(pixels))
    np.testing.assert_allclose(np.asarray(model.layers[3](features)), probabilities, atol=1e-4)

    # Its export takes raw pixels and answers as predict does (it was refused: "holds steps
    # export cannot build", though the resize and preprocess_input are layers of the model).
    from dltrain.report import export

    entry = export.export_run(run, "saved_model")
    assert entry["status"] == "passed", entry
    got = export.RUNTIMES["saved_model"](Path(entry["path"]), images[..., None].astype("float32"))
    np.testing.assert_allclose(got, probabilities, atol=export.TOLERANCE["saved_model"])


def built_backbone_weights(raw: dict[str, Any]) -> list[np.ndarray]:
    from dltrain.model.build import build_model

    model = build_model(validate(raw, "test.yaml"))
    return model.get_layer(index=2).get_weights()


def same_weights(found: list[np.ndarray], expected: list[np.ndarray]) -> bool:
    return len(found) == len(expected) and all(
        np.array_equal(a, b) for a, b in zip(found, expected, strict=True))


@pytest.mark.parametrize(("layers", "expected"), [
    (2, "model.layers.0.Backbone.fine_tune.layers: the last 2 layer(s) of MobileNetV2 hold no "
        "weights that fine-tuning would train"),
    (1000, "model.layers.0.Backbone.fine_tune.layers: MobileNetV2 has 155 layers. Received: 1000."),
])
def test_fine_tuning_must_reach_weights_that_train(layers: int, expected: str) -> None:
    tune = {"at_epoch": 1, "layers": layers, "learning_rate": 1e-5}
    with pytest.raises(ConfigError, match=re.escape(expected)):
        built_backbone_weights(raw_config({"fine_tune": tune}, training={"epochs": 2}))


@pytest.mark.slow  # builds MobileNetV2: seconds of CPU
def test_weights_from_a_file_are_loaded(weights_file: tuple[Path, list[np.ndarray]]) -> None:
    path, expected = weights_file
    assert same_weights(built_backbone_weights(raw_config({"weights": str(path)})), expected)


def test_a_file_that_is_no_weights_file_is_named_at_its_key(tmp_path: Path) -> None:
    # h5py's OSError ("file signature not found") was an internal error, and ended smoke.
    (tmp_path / "bad.weights.h5").write_text("garbage")
    with pytest.raises(ConfigError) as caught:
        built_backbone_weights(raw_config({"weights": str(tmp_path / "bad.weights.h5")}))
    assert str(caught.value).startswith(
        f"model.layers.0.Backbone.weights: {tmp_path / 'bad.weights.h5'} is not a weights file "
        "Keras can read (")
    assert str(caught.value).endswith("give a .weights.h5 file saved from this application.")


@pytest.fixture(scope="module")
def other_models() -> dict[tuple[str, float], Any]:
    """The other models built so far, by application and alpha: each is built once for the
    module (its two file formats are saved from the same model)."""
    return {}


def other_weights(folder: Path, application: str, alpha: float, legacy: bool,
                  built: dict[tuple[str, float], Any]) -> Path:
    """Weights of another model than SMALLEST's: another alpha, or another application."""
    import keras

    if (application, alpha) not in built:
        built[application, alpha] = getattr(keras.applications, application)(
            input_shape=(32, 32, 3), alpha=alpha, include_top=False, weights=None)
    model = built[application, alpha]
    path = folder / f"{application}-{alpha}{'.h5' if legacy else '.weights.h5'}"
    model.save(path) if legacy else model.save_weights(path)
    return path


@pytest.mark.slow  # builds MobileNetV2: seconds of CPU
@pytest.mark.parametrize(("application", "alpha", "legacy", "layer", "shapes"), [
    ("MobileNetV2", 0.5, False, "block_1_project", ["(1, 1, 48, 8)", "(1, 1, 48, 16)"]),
    ("MobileNetV2", 0.5, True, "block_1_project", ["(1, 1, 48, 8)", "(1, 1, 48, 16)"]),
    ("MobileNet", 0.25, False, "Conv1", ["(3, 3, 3, 16)", "(3, 3, 3, 8)"]),
], ids=["other-alpha", "other-alpha-legacy-h5", "other-application"])
def test_weights_of_another_model_name_the_file_the_model_and_the_shapes(
        tmp_path: Path, application: str, alpha: float, legacy: bool, layer: str,
        shapes: list[str], other_models: dict[tuple[str, float], Any]) -> None:
    path = other_weights(tmp_path, application, alpha, legacy, other_models)
    with pytest.raises(ConfigError) as caught:
        built_backbone_weights(raw_config({"weights": str(path)}))
    message = str(caught.value)
    print(message)
    assert message.startswith(f"model.layers.0.Backbone.weights: {path} ")
    assert "MobileNetV2 (alpha=0.35)" in message and f"'{layer}'" in message
    assert all(shape in message for shape in shapes)
    assert message.endswith(".") and len(message) < 600


@pytest.fixture
def served(weights_file: tuple[Path, list[np.ndarray]]) -> Iterator[str]:
    """An HTTP server on 127.0.0.1 serving the weights under Keras's file name."""

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    folder = weights_file[0].parent / "served"
    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.mark.slow  # builds MobileNetV2: seconds of CPU
def test_imagenet_weights_are_downloaded_into_the_keras_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, served: str,
        weights_file: tuple[Path, list[np.ndarray]]) -> None:
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setenv(MIRROR_ENV, served)
    found = built_backbone_weights(raw_config({"weights": "imagenet"}))
    assert same_weights(found, weights_file[1])
    assert (tmp_path / "keras" / "models" / MOBILENET_FILE).is_file()
    assert not list((tmp_path / "keras" / "models").glob(".download-*"))  # staging cleaned up
    monkeypatch.setenv(MIRROR_ENV, "http://127.0.0.1:9/")  # cached now: no download needed
    assert same_weights(built_backbone_weights(raw_config({"weights": "imagenet"})),
                        weights_file[1])


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_offline_imagenet_weights_name_the_file_its_url_and_the_cache(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str]) -> None:
    from keras.src.applications import mobilenet_v2

    url = f"http://127.0.0.1:{closed_port()}/keras-applications/"
    monkeypatch.setattr(mobilenet_v2, "BASE_WEIGHT_PATH", url)  # as if Keras's host were down
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    run = tmp_path / "run"
    config = write_config(tmp_path, raw_config({"weights": "imagenet"}))
    code, out, err = run_cli(capsys, "fit", config, "--run-dir", run)
    assert code == 2
    message = " ".join(err.split())
    assert (f"{MOBILENET_FILE} is not in the Keras cache ({tmp_path / 'keras' / 'models'}) and "
            f"could not be downloaded from {url}{MOBILENET_FILE}") in message
    assert "Put the file there" in message and "or set the backbone's weights" in message
    assert not run.exists()  # refused before the run directory, so before training


@pytest.mark.slow
def test_fine_tuning_unfreezes_the_top_layers_and_resumes_across_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
        weights_file: tuple[Path, list[np.ndarray]]) -> None:
    """The last resume runs with the backbone's weights file gone: the weights are in
    last.keras, but the resume's check of the architecture built the model again, weights
    file and all, and refused a run whose file had moved."""
    import keras

    from dltrain.train import finetune

    tune = {"at_epoch": 1, "layers": 10, "learning_rate": 1e-5}
    path = shutil.copyfile(weights_file[0], tmp_path / "mobilenet.weights.h5")
    # Augmented: on JAX and torch the model then trains inside a wrapper, made anew on unfreezing.
    raw = raw_config({"fine_tune": tune, "weights": str(path)}, training={"epochs": 2, "batch_size": 8,
                                                    "tensorboard": False,
                                                    "steps_per_execution": 1},
                     augmentation={"horizontal_flip": True})
    config, run = write_config(tmp_path, raw), tmp_path / "run"

    def interrupted(*args: Any) -> None:
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:  # killed as epoch 1 ends, before fine-tuning begins
        patch.setattr(finetune, "unfreeze", interrupted)
        code, out, err = run_cli(capsys, "fit", config, "--run-dir", run)
    assert code == 130, out + err
    frozen = keras.saving.load_model(run / "last.keras")
    assert not finetune.is_unfrozen(frozen)

    code, out, err = run_cli(capsys, "fit", "--resume", run)
    assert code == 0, out + err
    assert f"resuming {run} after epoch 1" in out
    assert "fine-tuning from epoch 2: the last 10 layers of mobilenetv2_0.35_32 unfrozen" in (
        " ".join(out.split()))
    tuned = keras.saving.load_model(run / "last.keras")
    check_fine_tuned(tuned, tune, epochs=2, steps=2)

    moved = path.rename(tmp_path / "moved.weights.h5")
    code, out, err = run_cli(capsys, "fit", "--resume", run, "--epochs", "3")  # past at_epoch
    assert code == 0, out + err
    assert not path.exists() and moved.is_file()
    check_fine_tuned(keras.saving.load_model(run / "last.keras"), tune, epochs=3, steps=2)
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 4  # the header and 3 epochs


def check_fine_tuned(model: Any, tune: dict[str, Any], epochs: int, steps: int) -> None:
    import keras

    from dltrain.train.finetune import backbone_model

    layers = backbone_model(model).layers
    trainable = [layer.name for layer in layers if layer.trainable_weights]
    top = [layer for layer in layers[-tune["layers"]:] if layer.weights]
    assert trainable == [layer.name for layer in top
                         if not isinstance(layer, keras.layers.BatchNormalization)]
    assert trainable and all(not layer.trainable for layer in top
                             if isinstance(layer, keras.layers.BatchNormalization))
    assert float(model.optimizer.learning_rate) == pytest.approx(tune["learning_rate"])
    assert int(model.optimizer.iterations.numpy()) == epochs * steps


def test_images_not_scaled_to_0_1_are_refused_before_training(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    raw = raw_config()
    raw["dataset"]["rescale"] = 1.0
    run = tmp_path / "run"
    code, _, err = run_cli(capsys, "fit", write_config(tmp_path, raw), "--run-dir", run)
    message = " ".join(err.split())
    assert code == 2 and "a backbone takes images scaled to [0, 1]" in message, err
    assert "range over [0, 255]. Set dataset.rescale" in message
    assert not run.exists()


def test_smoke_runs_both_phases_of_a_fine_tuning_config(tmp_path: Path) -> None:
    from dltrain.config.backbone import backbone_of
    from dltrain.config.load import load_config

    tune = {"at_epoch": 8, "layers": 10, "learning_rate": 1e-5}
    raw = raw_config({"fine_tune": tune}, training={"epochs": 20})
    config = load_config(write_config(tmp_path, raw), smoke=True).config
    spec = backbone_of(config)
    assert spec is not None and spec.fine_tune is not None
    assert (config.training.epochs, spec.fine_tune.at_epoch) == (2, 1)
    assert check_names(config) is not None
