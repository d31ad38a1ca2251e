"""Test-split predictions in whole batches: the same outputs, one compiled batch shape."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from conftest import to_numpy
from dltrain.backend import keras_module
from dltrain.report.evaluate import predict_whole_batches


def counting_model() -> tuple[Any, list[Any]]:
    """A compiled model that notes each batch size it is traced (compiled) for."""
    keras = keras_module()
    traced: list[Any] = []

    class Note(keras.layers.Layer):  # type: ignore[misc, name-defined]
        def call(self, inputs: Any) -> Any:
            traced.append(inputs.shape[0])
            return inputs

    model = keras.Sequential([keras.Input((3,)), Note(), keras.layers.Dense(4),
                              keras.layers.BatchNormalization(),
                              keras.layers.Dense(2, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model, traced


@pytest.mark.parametrize("count", [10, 8, 3])
def test_predictions_match_keras_and_compile_one_batch_shape(count: int) -> None:
    rng = np.random.default_rng(count)
    x = rng.random((count, 3), dtype=np.float32)
    y = rng.integers(0, 2, count)
    model, traced = counting_model()
    expected = to_numpy(model(x, training=False))  # eager: no compiled function made
    traced.clear()
    outputs = predict_whole_batches(model, x, y, batch_size=4)
    assert outputs.shape == (count, 2)
    np.testing.assert_allclose(outputs, expected, rtol=1e-5, atol=1e-6)
    assert set(traced) == {min(count, 4)}  # 10 rows: 4 + 4 + a tail padded to 4, never 2
