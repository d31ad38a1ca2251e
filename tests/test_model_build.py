"""Model building: Keras registries, signature checks and the mismatches caught before training."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import pytest

from dltrain.config.load import validate
from dltrain.config.training_section import OptimizerConfig
from dltrain.errors import ConfigError
from dltrain.model.build import build_model
from dltrain.model.compile import make_metric, make_optimizer, resolved_metric
from dltrain.model.layers import make_layer


def config(**sections: Any) -> Any:
    raw: dict[str, Any] = {
        "name": "tiny",
        "dataset": {"name": "fashion_mnist_mini"},
        "model": {"input_shape": [28, 28, 1],
                  "layers": [{"Flatten": {}}, {"Dense": {"units": 10, "activation": "softmax"}}]},
        "loss": "sparse_categorical_crossentropy",
    }
    raw.update(sections)
    return validate(raw, "test.yaml")


def layers(*specs: dict[str, Any], input_shape: list[int] | None = None) -> dict[str, Any]:
    return {"input_shape": input_shape or [28, 28, 1], "layers": list(specs)}


def build_error(**sections: Any) -> str:
    with pytest.raises(ConfigError) as caught:
        build_model(config(**sections))
    return str(caught.value)


def test_classic_cnn_builds_with_expected_shapes_and_parameters() -> None:
    model = build_model(config(model=layers(
        {"Conv2D": {"filters": 32, "kernel_size": 3, "activation": "relu"}},
        {"MaxPooling2D": {"pool_size": 2}}, {"Flatten": {}},
        {"Dense": {"units": 128, "activation": "relu"}},
        {"Dense": {"units": 10, "activation": "softmax"}})))
    assert model.input_shape == (None, 28, 28, 1)
    assert model.output_shape == (None, 10)
    # conv 32*(9+1) + dense 13*13*32*128+128 + dense 128*10+10
    assert model.count_params() == 320 + 692_352 + 1_290
    assert model.optimizer.__class__.__name__ == "Adam"


def test_initializers_and_regularizers_by_name_and_by_config() -> None:
    model = build_model(config(model=layers({"Flatten": {}}, {"Dense": {
        "units": 10, "activation": "softmax", "kernel_initializer": "he_normal",
        "bias_initializer": {"class_name": "Constant", "config": {"value": 0.5}},
        "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}}})))
    dense = model.layers[-1]
    assert dense.kernel_initializer.__class__.__name__ == "HeNormal"
    assert float(dense.bias.numpy()[0]) == 0.5
    assert dense.kernel_regularizer.l2 == pytest.approx(0.01)


def test_unknown_layer_argument_is_named_with_a_suggestion() -> None:
    message = build_error(model=layers({"Flatten": {}}, {"Dense": {"unit": 10}}))
    assert "model.layers.1.Dense: unknown argument 'unit' for Dense. Did you mean 'units'?" in message


@pytest.mark.parametrize(("name", "expected"), [
    ("Dense2", "unknown layer 'Dense2'. Did you mean 'Dense'?"),
    ("Lambda", "layer 'Lambda' is not allowed: configs cannot run code"),
    ("TFSMLayer", "layer 'TFSMLayer' is not allowed"),
    ("CuDNNLSTM", "'CuDNNLSTM' is the Keras 2 name; use 'LSTM'"),
])
def test_layer_names_come_from_the_registry(name: str, expected: str) -> None:
    assert expected in build_error(model=layers({name: {}}, {"Dense": {"units": 10}}))


def live_error(make: Callable[..., Any], *args: Any) -> str:
    """The message of a check against the live Keras, the catalog's safety net."""
    with pytest.raises(ConfigError) as caught:
        make(*args)
    return str(caught.value)


def test_bad_activation_is_reported_at_its_argument_with_the_known_ones() -> None:
    expected = ("model.layers.1.Dense.activation: unknown activation 'relu6x'. Did you mean "
                "'relu6'? Known: celu, elu, exponential, gelu, glu, hard_shrink, hard_sigmoid, "
                "hard_silu, hard_swish, hard_tanh, leaky_relu, linear, log_sigmoid, log_softmax, "
                "mish, relu, relu6, selu, sigmoid, silu, soft_shrink, softmax, softplus, "
                "softsign, sparse_plus, sparse_sigmoid, sparsemax, squareplus, swish, tanh, "
                "tanh_shrink, threshold.")
    assert build_error(model=layers({"Flatten": {}}, {"Dense": {
        "units": 10, "activation": "relu6x"}})) == expected
    assert live_error(make_layer, "Dense", {"units": 10, "activation": "relu6x"},
                      "model.layers.1.Dense") == expected


CONV = {"Conv2D": {"filters": 8, "kernel_size": 3}}


@pytest.mark.parametrize(("layer", "expected"), [
    # internal error: TypeError("unsupported operand type(s) for +: 'int' and 'str'")
    ({"Conv2D": {**CONV["Conv2D"], "use_bias": "false"}}, "model.layers.0.Conv2D.use_bias: must "
     "be true or false. Received: 'false' (quoted, so text). Remove it for the default, True."),
    # "'<=' not supported between instances of 'str' and 'int'"
    ({"Conv2D": {**CONV["Conv2D"], "filters": "32"}}, "model.layers.0.Conv2D.filters: must be a "
     "whole number. Received: '32' (quoted, so text)."),
    # "Cannot convert '(3, 3, 1, 32.0)' to a shape"
    ({"Conv2D": {**CONV["Conv2D"], "filters": 32.0}}, "model.layers.0.Conv2D.filters: must be a "
     "whole number; write 32. Received: 32.0."),
    ({"Dropout": {"rate": "50%"}}, "model.layers.0.Dropout.rate: must be a number. Received: "
     "'50%' (quoted, so text)."),
])
def test_a_value_of_the_wrong_kind_is_named_at_its_argument(layer: dict[str, Any],
                                                            expected: str) -> None:
    assert build_error(model=layers(layer, {"Flatten": {}}, {"Dense": {
        "units": 10, "activation": "softmax"}})) == expected


@pytest.mark.parametrize(("value", "shown"), [("None", "'None' (quoted, so text)"),
                                              (None, "null")])
def test_an_optimizer_number_given_as_none_is_refused_before_training(value: Any,
                                                                      shown: str) -> None:
    # Keras 2's epsilon=None: Adam was made, then the first step failed (internal error).
    assert build_error(optimizer={"name": "adam", "epsilon": value}) == (
        f"optimizer.epsilon: must be a number. Received: {shown}. Remove it for the default, "
        "1e-07.")


def test_misspelt_learning_rate_is_suggested_and_listed() -> None:
    expected = ("optimizer: unknown argument 'learning_rat' for Adam. Did you mean "
                "'learning_rate'? Adam takes: amsgrad, beta_1, beta_2, clipnorm, clipvalue, "
                "ema_momentum, ema_overwrite_frequency, epsilon, global_clipnorm, "
                "gradient_accumulation_steps, learning_rate, loss_scale_factor, use_ema, "
                "weight_decay.")
    assert build_error(optimizer={"name": "adam", "learning_rat": 0.01}) == expected
    assert live_error(make_optimizer, OptimizerConfig(name="adam", learning_rat=0.01)) == expected


def test_misspelt_metric_is_suggested_in_the_users_spelling() -> None:
    expected = "metrics.0: unknown metric 'acuracy'. Did you mean 'accuracy'?"
    assert build_error(metrics=["acuracy"]) == expected
    assert live_error(make_metric, "acuracy", 0) == expected


def test_metric_class_that_needs_arguments_says_which() -> None:
    expected = ("metrics.0: MeanIoU needs the argument 'num_classes'; write it as "
                "{name: MeanIoU, num_classes: ...}.")
    assert build_error(metrics=["MeanIoU"]) == expected
    assert live_error(make_metric, "MeanIoU", 0) == expected


def test_optimizer_keras_cannot_make_from_a_name_is_unknown() -> None:
    expected = "optimizer.name: unknown optimizer 'multioptimizer'. Known: adadelta,"
    assert build_error(optimizer={"name": "multioptimizer"}).startswith(expected)
    assert live_error(make_optimizer, OptimizerConfig(name="multioptimizer")).startswith(expected)


def test_missing_layer_argument_is_named() -> None:
    expected = "model.layers.1.Dense: Dense needs the argument 'units'; add it."
    assert build_error(model=layers({"Flatten": {}}, {"Dense": {}})) == expected
    assert live_error(make_layer, "Dense", {}, "model.layers.1.Dense") == expected


def test_kernel_larger_than_input_is_caught_before_training() -> None:
    message = build_error(model=layers({"Conv2D": {"filters": 4, "kernel_size": 9}},
                                       {"Flatten": {}}, {"Dense": {"units": 10}},
                                       input_shape=[4, 4, 1]))
    assert message.startswith("model.layers.0.Conv2D: cannot follow the previous layer's output")


def test_binary_crossentropy_with_ten_unit_softmax_is_refused() -> None:
    message = build_error(loss="binary_crossentropy")
    assert message == (
        "loss: binary_crossentropy expects 1 output unit (sigmoid), but the last layer has 10 "
        "units. For 10 classes use sparse_categorical_crossentropy with a softmax layer.")


def test_categorical_loss_with_one_unit_is_refused() -> None:
    message = build_error(model=layers({"Flatten": {}}, {"Dense": {"units": 1}}))
    assert message == (
        "loss: sparse_categorical_crossentropy needs one output unit per class, but the last "
        "layer has 1 unit. For two classes use binary_crossentropy with a sigmoid unit, or give "
        "the last layer 2 units.")


def test_a_model_without_flatten_is_refused_at_its_last_layer() -> None:
    """The classic slip: Dense straight after the images gives an output per pixel."""
    message = build_error(model=layers({"Conv2D": {"filters": 4, "kernel_size": 3}},
                                       {"Dense": {"units": 10, "activation": "softmax"}}))
    assert message == (
        "model.layers.1.Dense: the model's output has shape (None, 26, 26, 10), but the loss "
        "needs one vector per sample, (None, 10). Add a Flatten (or GlobalAveragePooling2D) "
        "layer before the last Dense.")
    assert "Flatten" in build_error(loss="mse", model=layers({"Dense": {"units": 1}}))


@pytest.mark.parametrize("metric", ["precision", "AUC", "mae", "top_k_categorical_accuracy",
                                    {"name": "Recall", "thresholds": 0.4}])
def test_a_metric_that_needs_one_hot_labels_is_refused_with_class_ids(metric: Any) -> None:
    name = metric if isinstance(metric, str) else metric["name"]
    # A rule of the config's parts (config.task): show --no-summary has it too.
    assert build_error(metrics=["accuracy", metric]) == (
        f"metrics.1: {name} compares labels with the outputs value by value, but "
        "sparse_categorical_crossentropy's labels are class ids. Use loss: "
        "categorical_crossentropy (dltrain one-hot encodes the labels) to get it, or a metric for "
        "class ids: accuracy, sparse_top_k_categorical_accuracy.")


def test_metrics_for_class_ids_and_for_one_hot_labels_are_kept_apart() -> None:
    build_model(config(metrics=["acc", "sparse_categorical_accuracy",
                                {"name": "sparse_top_k_categorical_accuracy", "k": 3}]))
    build_model(config(loss="categorical_crossentropy", metrics=["accuracy", "precision", "AUC"]))
    assert build_error(loss="categorical_crossentropy", metrics=["sparse_categorical_accuracy"]) \
        == ("metrics.0: sparse_categorical_accuracy takes class ids, but "
            "categorical_crossentropy's labels are one-hot vectors. Use its one-hot counterpart "
            "(categorical_accuracy, top_k_categorical_accuracy), or accuracy.")


def test_optimizer_arguments_are_checked_against_its_class() -> None:
    message = build_error(optimizer={"name": "adam", "beta1": 0.8})
    assert "optimizer: unknown argument 'beta1' for Adam. Did you mean 'beta_1'?" in message


def test_unknown_optimizer_suggests_the_nearest() -> None:
    assert "Did you mean 'adam'?" in build_error(optimizer={"name": "adamm"})


def test_optimizer_with_clipping_and_extra_arguments() -> None:
    model = build_model(config(optimizer={"name": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                                          "clipnorm": 1.0}))
    assert model.optimizer.momentum == pytest.approx(0.9)
    assert model.optimizer.clipnorm == pytest.approx(1.0)


def test_learning_rate_schedule_starts_from_the_learning_rate() -> None:
    model = build_model(config(optimizer={"name": "adam", "learning_rate": 0.01, "schedule": {
        "name": "ExponentialDecay", "decay_steps": 10, "decay_rate": 0.5}}))
    schedule = model.optimizer._learning_rate
    assert float(schedule(0)) == pytest.approx(0.01)
    assert float(schedule(10)) == pytest.approx(0.005)


def test_unknown_schedule_lists_the_known_ones() -> None:
    message = build_error(optimizer={"schedule": {"name": "CosineDecays", "decay_steps": 5}})
    assert "unknown schedule 'CosineDecays'. Did you mean 'CosineDecay'?" in message


def test_schedule_missing_a_required_argument() -> None:
    message = build_error(optimizer={"schedule": {"name": "ExponentialDecay"}})
    assert message.startswith("optimizer.schedule:") and "decay_steps" in message


def test_loss_with_arguments_uses_the_loss_class() -> None:
    model = build_model(config(loss={"name": "sparse_categorical_crossentropy",
                                     "from_logits": True}))
    assert model.loss.__class__.__name__ == "SparseCategoricalCrossentropy"
    assert model.loss.from_logits is True


@pytest.mark.parametrize(("loss", "metric", "expected"), [
    ("sparse_categorical_crossentropy", "crossentropy", ("SparseCategoricalCrossentropy", False)),
    ({"name": "categorical_crossentropy", "from_logits": True}, "ce",
     ("CategoricalCrossentropy", True)),
    ("binary_crossentropy", "crossentropy", ("BinaryCrossentropy", False)),
])
def test_keras2_crossentropy_metric_is_the_losss_own(loss: Any, metric: str,
                                                     expected: tuple[str, bool]) -> None:
    # Keras 3 knows `crossentropy` and `ce` no more: an internal error in the first step.
    made = resolved_metric(metric, 0, config(loss=loss, metrics=[metric]))
    assert (type(made).__name__, made._fn_kwargs["from_logits"]) == expected
    assert made.name == metric


def test_keras2_crossentropy_metric_of_a_regression_is_refused() -> None:
    assert build_error(loss="mse", metrics=["ce"], model=layers({"Flatten": {}},
                                                                {"Dense": {"units": 1}})) == (
        "metrics.0: ce means the loss's own crossentropy (the Keras 2 shorthand), but loss mse "
        "is not a crossentropy. Name the metric you want, e.g. mae.")


def test_metrics_of_a_logits_binary_classifier_read_logits() -> None:
    logits = config(loss={"name": "binary_crossentropy", "from_logits": True},
                    metrics=["accuracy", "AUC", "precision"])
    accuracy, auc, precision = (resolved_metric(m, i, logits) for i, m in enumerate(logits.metrics))
    assert type(accuracy).__name__ == "BinaryAccuracy" and accuracy._fn_kwargs["threshold"] == 0
    assert type(auc).__name__ == "AUC" and auc._from_logits and auc.name == "AUC"
    assert type(precision).__name__ == "Precision" and precision.thresholds == [0.0]
    assert resolved_metric("accuracy", 0, config(loss="binary_crossentropy")) is None


@pytest.mark.parametrize(("sections", "expected"), [
    ({"loss": "sparse_categorical_crossentropyy"},
     "loss: unknown loss 'sparse_categorical_crossentropyy'"),
    ({"metrics": ["accuracy", "precison"]}, "metrics.1: unknown metric 'precison'"),
    ({"loss": {"name": "categorical_crossentropy", "smoothing": 0.1}},
     "unknown argument 'smoothing'"),
])
def test_loss_and_metric_names_are_checked(sections: dict[str, Any], expected: str) -> None:
    assert expected in build_error(**sections)


def test_keras2_metric_alias_acc_is_accepted_and_logged_under_its_name() -> None:
    import numpy as np

    model = build_model(config(metrics=["acc"]))
    logs = model.evaluate(np.zeros((4, 28, 28, 1)), np.zeros(4), verbose=0, return_dict=True)
    assert set(logs) == {"loss", "acc"}


@pytest.mark.slow
@pytest.mark.parametrize(("setting", "expected"), [(None, "True"), ("0", "False")])
def test_onednn_kernels_are_on_unless_turned_off(setting: str | None, expected: str) -> None:
    env = {key: value for key, value in os.environ.items() if key != "TF_ENABLE_ONEDNN_OPTS"}
    if setting is not None:
        env["TF_ENABLE_ONEDNN_OPTS"] = setting
    code = ("from dltrain.backend import keras_module; keras_module(); "
            "from tensorflow.python.util import _pywrap_util_port; "
            "print(_pywrap_util_port.IsMklEnabled())")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == expected


def test_null_for_an_argument_keras_cannot_take_names_the_argument() -> None:
    message = build_error(model=layers({"Conv2D": {"filters": 2, "kernel_size": 3,
                                                   "padding": None}},
                                       {"Flatten": {}}, {"Dense": {"units": 10}}))
    assert message == ("model.layers.0.Conv2D.padding: must not be null. Received: null. "
                       "Remove it for the default, 'valid'.")


def test_initializer_config_with_a_misspelt_argument_is_named() -> None:
    expected = ("model.layers.1.Dense.bias_initializer: unknown argument 'valu' for Constant. "
                "Did you mean 'value'? Constant takes: value.")
    args = {"units": 10, "bias_initializer": {"class_name": "Constant", "config": {"valu": 1}}}
    assert build_error(model=layers({"Flatten": {}}, {"Dense": args})) == expected
    assert live_error(make_layer, "Dense", args, "model.layers.1.Dense") == expected


def test_a_metric_with_arguments_is_logged_under_the_name_the_schema_lists() -> None:
    import numpy as np

    # Keras numbers a second Precision made without a name (precision_1): a search builds the
    # model once for the objective's direction and again in each trial.
    cfg = config(metrics=["Precision", {"name": "Recall", "thresholds": 0.4}, "recall",
                          {"name": "auc", "num_thresholds": 9}],
                 loss="binary_crossentropy", model={"input_shape": [3], "layers": [
                     {"Dense": {"units": 1, "activation": "sigmoid"}}]})
    for _ in range(2):
        logs = build_model(cfg).evaluate(np.zeros((4, 3)), np.zeros(4), verbose=0,
                                         return_dict=True)
        # Keras numbers a name given twice: the second recall is recall_1.
        assert sorted(logs) == sorted(cfg.monitorable()) == [
            "Precision", "auc", "loss", "recall", "recall_1"]


def test_a_kernel_over_the_parameter_limit_is_refused_before_it_is_allocated(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Found by test_config_corpus: input_shape [74508, 28, 1] in mnist_cnn made a 7.9 G weight
    Dense kernel, which exhausted memory before the parameter count could refuse it."""
    from dltrain.backend import keras_module

    dense = keras_module().layers.Dense
    built: list[Any] = []
    plain_build = dense.build
    monkeypatch.setattr(dense, "build", lambda self, shape: (built.append(shape),
                                                             plain_build(self, shape))[1])
    message = build_error(model=layers(
        {"Conv2D": {"filters": 32, "kernel_size": 3}}, {"Flatten": {}},
        {"Dense": {"units": 128}}, {"Dense": {"units": 10, "activation": "softmax"}},
        input_shape=[74508, 28, 1]))
    assert message == ("model.layers.2.Dense: the model would have 7,934,591,424 parameters, "
                       "more than 1,000,000,000; make it smaller.")
    assert built == []


def test_a_convolution_over_the_parameter_limit_is_refused_before_it_is_allocated() -> None:
    message = build_error(model=layers(
        {"Conv2D": {"filters": 40000, "kernel_size": 5}},
        {"Conv2D": {"filters": 40000, "kernel_size": 5}}, {"Flatten": {}},
        {"Dense": {"units": 10, "activation": "softmax"}}))
    assert message.startswith("model.layers.1.Conv2D: the model would have 40,001,080,000 ")


@pytest.mark.parametrize(("name", "args", "shape"), [
    ("Dense", {"units": 7}, (None, 5)),
    ("Conv1D", {"filters": 3, "kernel_size": 2, "use_bias": False}, (None, 9, 6)),
    ("Conv2D", {"filters": 8, "kernel_size": 3, "groups": 2}, (None, 10, 10, 4)),
    ("Conv3D", {"filters": 2, "kernel_size": 3, "data_format": "channels_first"},
     (None, 3, 8, 8, 8)),
    ("Conv2DTranspose", {"filters": 5, "kernel_size": 3}, (None, 8, 8, 2)),
    ("SeparableConv1D", {"filters": 4, "kernel_size": 3, "depth_multiplier": 3}, (None, 8, 2)),
    ("SeparableConv2D", {"filters": 4, "kernel_size": 3}, (None, 8, 8, 2)),
    ("DepthwiseConv2D", {"kernel_size": 3, "depth_multiplier": 2}, (None, 8, 8, 2)),
])
def test_the_weights_counted_before_building_are_the_ones_keras_makes(
        name: str, args: dict[str, Any], shape: tuple[Any, ...]) -> None:
    from dltrain.model.layers import kernel_size

    layer = make_layer(name, args, "model.layers.0")
    counted = kernel_size(layer, shape)
    layer.build(shape)
    assert counted == layer.count_params() > 0


@pytest.mark.parametrize(("input_shape", "expected"), [
    ([784], "Conv2D takes samples of shape [height, width, channels], e.g. [28, 28, 1], channels "
     "last; this one is [784]. Set model.input_shape so, or put a Reshape: {target_shape: [...]} "
     "layer before it."),
    ([1, 28, 28], "[1, 28, 28] looks channels first; Keras takes channels last: [28, 28, 1]."),
])
def test_a_convolution_on_samples_of_another_shape_says_what_it_takes(
        input_shape: list[int], expected: str) -> None:
    # Only Keras's "expected min_ndim=4, found ndim=2" (or "output size would be zero") before.
    message = build_error(model=layers({"Conv2D": {"filters": 8, "kernel_size": 3}},
                                       {"Flatten": {}}, {"Dense": {"units": 10}},
                                       input_shape=input_shape))
    assert message.startswith("model.layers.0.Conv2D: cannot follow the previous layer's output: ")
    assert message.endswith(expected)


@pytest.mark.parametrize(("initializer", "says"), [
    ({"class_name": "Constant", "config": {"value": [1, 2]}}, "Incompatible shapes"),
    ({"class_name": "Orthogonal", "config": {"gain": "abc"}}, ""),
])
def test_an_initializer_that_cannot_make_the_weights_is_named(
        initializer: dict[str, Any], says: str) -> None:
    # An internal error (TensorFlow's InvalidArgumentError), or blamed on the previous layer.
    message = build_error(model=layers({"Flatten": {}}, {"Dense": {
        "units": 10, "activation": "softmax", "kernel_initializer": initializer}}))
    assert message.startswith("model.layers.1.Dense.kernel_initializer: cannot make the layer's "
                              "weights: ")
    assert says in message and "{{function_node" not in message and "[Op:" not in message


def test_a_layer_that_cannot_follow_is_still_told_so_beside_an_initializer() -> None:
    message = build_error(model=layers({"Flatten": {}}, {"Conv2D": {
        "filters": 4, "kernel_size": 3, "kernel_initializer": "he_normal"}}))
    assert message.startswith("model.layers.1.Conv2D: cannot follow the previous layer's output")
