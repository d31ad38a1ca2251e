"""The shipped Keras catalog: it matches the installed Keras, and its checks need no TensorFlow."""

from __future__ import annotations

import importlib.util
import re
from typing import Any

import jsonschema
import pytest
import yaml

from conftest import CONFIGS, ROOT
from dltrain.backend import keras_module
from dltrain.config import catalog
from dltrain.config.catalog import check_names, with_layer_names
from dltrain.config.load import validate
from dltrain.config.names import CATALOG_FILE, did_you_mean, load_catalog, logged_metric_name
from dltrain.config.schema import json_schema
from dltrain.errors import ConfigError

spec = importlib.util.spec_from_file_location("make_keras_catalog",
                                              ROOT / "tools" / "make_keras_catalog.py")
make_keras_catalog = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(make_keras_catalog)  # type: ignore[union-attr]


def config(*layers: dict[str, Any], **sections: Any) -> Any:
    raw: dict[str, Any] = {
        "name": "tiny", "dataset": {"name": "fashion_mnist_mini"},
        "model": {"input_shape": [28, 28, 1],
                  "layers": list(layers) or [{"Flatten": {}}, {"Dense": {"units": 10}}]},
        "loss": "sparse_categorical_crossentropy",
    }
    raw.update(sections)
    return validate(raw, "test.yaml")


def catalog_error(*layers: dict[str, Any], **sections: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        check_names(config(*layers, **sections))
    return str(caught.value)


def test_shipped_catalog_matches_the_installed_keras() -> None:
    fresh = make_keras_catalog.render(make_keras_catalog.make_catalog())
    assert CATALOG_FILE.read_text(encoding="utf-8") == fresh, (
        "the catalog is stale: run python tools/make_keras_catalog.py")


def test_a_good_config_passes_and_names_the_keras_version() -> None:
    assert check_names(config()) == catalog.load_catalog()["keras"] == catalog.installed_keras()


def test_a_catalog_for_another_keras_checks_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(catalog, "installed_keras", lambda: "0.0.1")
    assert check_names(config({"Dens": {}})) is None


@pytest.mark.parametrize(("layer", "expected"), [
    ({"Dens": {"units": 10}}, "model.layers.0.Dens: unknown layer 'Dens'. Did you mean 'Dense'?"),
    ({"dense": {"units": 10}}, "model.layers.0.dense: unknown layer 'dense'. Did you mean 'Dense'?"),
    ({"Lambda": {}}, "model.layers.0.Lambda: layer 'Lambda' is not allowed: configs cannot run "
                     "code or load other models."),
    ({"CuDNNLSTM": {}}, "model.layers.0.CuDNNLSTM: 'CuDNNLSTM' is the Keras 2 name; use 'LSTM'."),
    ({"Dense": {}}, "model.layers.0.Dense: Dense needs the argument 'units'; add it."),
    ({"Conv2D": {}}, "model.layers.0.Conv2D: Conv2D needs the arguments 'filters', "
                     "'kernel_size'; add them."),
    ({"Dense": {"units": 1, "kernel_initializer": "he_normall"}},
     "model.layers.0.Dense.kernel_initializer: unknown initializer 'he_normall'. Did you mean "
     "'he_normal'? Known: glorot_normal, glorot_uniform, he_normal, he_uniform, identity, "
     "lecun_normal, lecun_uniform, normal, one, ones, orthogonal, random_normal, random_uniform, "
     "stft, truncated_normal, uniform, variance_scaling, zero, zeros."),
    ({"LSTM": {"units": 4, "recurrent_activation": "sigmoidd"}},
     "model.layers.0.LSTM.recurrent_activation: unknown activation 'sigmoidd'. "
     "Did you mean 'sigmoid'?"),
])
def test_layer_names_arguments_and_resolved_names(layer: dict[str, Any], expected: str) -> None:
    assert catalog_error(layer).startswith(expected)


def test_unknown_layer_argument_lists_what_the_layer_takes() -> None:
    assert catalog_error({"Dense": {"unit": 10}}) == (
        "model.layers.0.Dense: unknown argument 'unit' for Dense. Did you mean 'units'? Dense "
        "takes: activation, activity_regularizer, autocast, bias_constraint, bias_initializer, "
        "bias_regularizer, dtype, kernel_constraint, kernel_initializer, kernel_regularizer, "
        "lora_alpha, lora_rank, name, quantization_config, trainable, units, use_bias.")


@pytest.mark.parametrize(("layer", "expected"), [
    # Each had no hint, or a wrong one: 'init' -> "Did you mean 'units'?".
    ({"Dense": {"units": 4, "init": "he_normal"}}, "'init' is the Keras 2 name; use "
     "'kernel_initializer'."),
    ({"Dense": {"output_dim": 4}}, "'output_dim' is the Keras 2 name; use 'units'."),
    ({"Dense": {"units": 4, "W_regularizer": "l2"}}, "'W_regularizer' is the Keras 2 name; use "
     "'kernel_regularizer'."),
    ({"Conv2D": {"filters": 8, "kernel_size": 3, "border_mode": "same"}}, "'border_mode' is the "
     "Keras 2 name; use 'padding' (same or valid)."),
    ({"Conv2D": {"filters": 8, "kernel_size": 3, "subsample": [2, 2]}}, "'subsample' is the "
     "Keras 2 name; use 'strides'."),
    ({"Conv2D": {"filters": 8, "nb_row": 3}}, "'nb_row' is the Keras 2 name; use 'kernel_size' "
     "(kernel_size: [rows, columns])."),
    ({"MaxPooling2D": {"dim_ordering": "tf"}}, "'dim_ordering' is the Keras 2 name; use "
     "'data_format' ('tf' is channels_last, 'th' channels_first)."),
    ({"Dropout": {"p": 0.5}}, "'p' is the Keras 2 name; use 'rate'."),
    ({"GaussianNoise": {"sigma": 0.1}}, "'sigma' is the Keras 2 name; use 'stddev'."),
    ({"LeakyReLU": {"alpha": 0.1}}, "'alpha' is the Keras 2 name; use 'negative_slope'."),
])
def test_keras2_argument_names_get_todays(layer: dict[str, Any], expected: str) -> None:
    ((name, args),) = layer.items()
    bad = next(key for key in args if key not in ("units", "filters", "kernel_size"))
    assert catalog_error(layer).startswith(
        f"model.layers.0.{name}: unknown argument '{bad}' for {name}. {expected} {name} takes: ")


def test_keras2_optimizer_decay_points_to_a_schedule_not_weight_decay() -> None:
    assert catalog_error(optimizer={"name": "rmsprop", "decay": 1e-6}).startswith(
        "optimizer: unknown argument 'decay' for RMSprop. 'decay' is Keras 2's learning-rate "
        "decay, gone from Keras 3's optimizers (its weight_decay is another thing); write it as "
        "optimizer.schedule: {name: InverseTimeDecay, decay_steps: 1, decay_rate: DECAY}, the "
        "same lr / (1 + DECAY * step). RMSprop takes: ")


def test_initializers_given_as_a_class_and_config_pass() -> None:
    layer = {"Dense": {"units": 1, "bias_initializer": {"class_name": "Constant",
                                                        "config": {"value": 0.5}},
                       "kernel_initializer": {"class_name": "he_normal"},
                       "kernel_regularizer": {"class_name": "L1L2", "config": {"l1": 0.1}}}}
    assert check_names(config(layer)) is not None


@pytest.mark.parametrize(("value", "expected"), [
    ({"class_name": "HeNormall"}, "model.layers.0.Dense.kernel_initializer: unknown initializer "
     "class 'HeNormall'. Did you mean 'HeNormal'? Known: Constant, GlorotNormal,"),
    ({"class_name": "Constant", "config": {"valu": 1}}, "model.layers.0.Dense.kernel_initializer: "
     "unknown argument 'valu' for Constant. Did you mean 'value'? Constant takes: value."),
    ({"class_name": "Constant"}, "model.layers.0.Dense.kernel_initializer: Constant needs the "
     "argument 'value'; add it."),
    ({"config": {"seed": 1}}, "model.layers.0.Dense.kernel_initializer: an initializer given as "
     "a mapping needs class_name, e.g. {class_name: GlorotUniform, config: {...}}. "
     "Received: {'config': {'seed': 1}}."),
])
def test_initializer_class_names_and_config_arguments(value: Any, expected: str) -> None:
    assert catalog_error({"Dense": {"units": 1, "kernel_initializer": value}}).startswith(expected)


@pytest.mark.parametrize(("sections", "expected"), [
    ({"optimizer": {"name": "adamm"}}, "optimizer.name: unknown optimizer 'adamm'. Did you mean "
     "'adam'? Known: adadelta, adafactor, adagrad, adam, adamax, adamw, ftrl, lion, muon, nadam, "
     "rmsprop, schedulefreeadamw, sgd."),
    ({"optimizer": {"name": "multioptimizer"}}, "optimizer.name: unknown optimizer "
     "'multioptimizer'."),
    ({"optimizer": {"name": "ADAM", "beta1": 0.9}}, "optimizer: unknown argument 'beta1' for "
     "Adam. Did you mean 'beta_1'?"),
    ({"optimizer": {"schedule": {"name": "CosineDecays", "decay_steps": 5}}},
     "optimizer.schedule.name: unknown schedule 'CosineDecays'. Did you mean 'CosineDecay'? Known: "
     "CosineDecay, CosineDecayRestarts, ExponentialDecay, InverseTimeDecay, "
     "PiecewiseConstantDecay, PolynomialDecay."),
    ({"optimizer": {"schedule": {"name": "ExponentialDecay", "decay_step": 5}}},
     "optimizer.schedule: unknown argument 'decay_step' for ExponentialDecay. Did you mean "
     "'decay_steps'? ExponentialDecay takes: decay_rate, decay_steps, initial_learning_rate, "
     "staircase."),
    ({"optimizer": {"schedule": {"name": "ExponentialDecay", "decay_steps": 5}}},
     "optimizer.schedule: ExponentialDecay needs the argument 'decay_rate'; add it."),
    ({"loss": "sparse_categorical_crossentropyy"}, "loss: unknown loss "
     "'sparse_categorical_crossentropyy'. Did you mean 'sparse_categorical_crossentropy'?"),
    ({"loss": {"name": "categorical_crossentropy", "smoothing": 0.1}}, "loss: unknown argument "
     "'smoothing' for CategoricalCrossentropy. Did you mean 'label_smoothing'?"),
    ({"loss": {"name": "crossentropy_of_mine", "a": 1}}, "loss: no loss class named "
     "'crossentropy_of_mine' takes arguments."),
    ({"metrics": ["acc", "Precison"]}, "metrics.1: unknown metric 'Precison'. Did you mean "
     "'Precision'?"),
    ({"metrics": [{"name": "MeanIoU"}]}, "metrics.0: MeanIoU needs the argument 'num_classes'; "
     "write it as {name: MeanIoU, num_classes: ...}."),
    ({"metrics": [{"name": "MeanIoU", "num_class": 3}]}, "metrics.0: unknown argument "
     "'num_class' for MeanIoU. Did you mean 'num_classes'?"),
])
def test_optimizer_schedule_loss_and_metric_names(sections: dict[str, Any], expected: str) -> None:
    assert catalog_error(**sections).startswith(expected)


def test_names_keras_accepts_in_other_spellings_pass() -> None:
    assert check_names(config(
        {"Flatten": None}, {"Dense": {"units": 10, "activation": "swish",
                                      "kernel_initializer": "HeNormal",
                                      "kernel_regularizer": "l2"}},
        optimizer={"name": "RMSprop", "schedule": {"name": "CosineDecay", "decay_steps": 9}},
        loss={"name": "SparseCategoricalCrossentropy", "from_logits": True},
        metrics=["acc", "SparseCategoricalAccuracy",
                 {"name": "sparse_top_k_categorical_accuracy", "k": 3}])) is not None


@pytest.mark.parametrize(("name", "choices", "expected"), [
    ("acuracy", ["Accuracy", "accuracy"], " Did you mean 'accuracy'?"),
    ("Acuracy", ["accuracy", "Accuracy"], " Did you mean 'Accuracy'?"),
    ("maxpooling2d", ["MaxPooling2D", "MaxPooling1D"], " Did you mean 'MaxPooling2D'?"),
    ("zzz", ["accuracy"], ""),
])
def test_did_you_mean_prefers_the_users_spelling(name: str, choices: list[str],
                                                 expected: str) -> None:
    assert did_you_mean(name, choices) == expected


@pytest.fixture(scope="module")
def names_validator() -> Any:
    """A validator of the schema with layer names, the schema itself checked against its
    metaschema once: jsonschema.validate does that on every call (0.6 s each for this one)."""
    schema = with_layer_names(json_schema())
    validator = jsonschema.validators.validator_for(schema)
    validator.check_schema(schema)
    return validator(schema)


@pytest.mark.slow
def test_schema_with_layer_names_accepts_the_shipped_configs_and_refuses_unknown_names(
        names_validator: Any) -> None:
    for path in sorted(CONFIGS.glob("*.yaml")):
        names_validator.validate(yaml.safe_load(path.read_text()))
    document = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    for bad in ("Dens", {"Dens": {"units": 1}}, {"Dense": {"unit": 1}}):
        document["model"]["layers"][3] = bad
        with pytest.raises(jsonschema.ValidationError):
            names_validator.validate(document)


@pytest.mark.slow  # the fixture checks the large schema against its metaschema
def test_schema_with_layer_names_knows_the_backbones(names_validator: Any) -> None:
    document = yaml.safe_load((CONFIGS / "quickstart.yaml").read_text())
    document["model"]["layers"][0] = {"Backbone": {
        "name": "MobileNetV2", "alpha": 0.35, "weights": None, "pooling": "avg",
        "fine_tune": {"at_epoch": 1, "layers": 20, "learning_rate": 1e-5}}}
    names_validator.validate(document)
    for bad in ({"name": "MobileNetV5"}, {"name": "MobileNetV2", "alfa": 1},
                {"name": "MobileNetV2", "fine_tune": {"at_epoch": 1}}):
        document["model"]["layers"][0] = {"Backbone": bad}
        with pytest.raises(jsonschema.ValidationError):
            names_validator.validate(document)


# A value for each required argument of a metric class, to make one.
REQUIRED = {"num_classes": 3, "target_class_ids": [0], "recall": 0.5, "precision": 0.5,
            "specificity": 0.5, "sensitivity": 0.5, "fn": lambda y_true, y_pred: y_pred}


def test_the_catalog_names_every_metric_class_as_keras_logs_it() -> None:
    keras = keras_module()
    for name, spec in load_catalog()["metrics_classes"].items():
        made = getattr(keras.metrics, name)(**{arg: REQUIRED[arg] for arg in spec["required"]})
        # Keras numbers a second instance of a class whose name defaults to None (precision_1).
        assert re.fullmatch(re.escape(spec["logged"]) + r"(_\d+)?", made.name), name
        assert logged_metric_name(name, with_arguments=True) == spec["logged"]
        assert logged_metric_name(name, with_arguments=False) == name
