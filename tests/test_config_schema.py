"""The schema's derived properties: the loss kind that data, model and reports all ask for."""

from __future__ import annotations

import pytest

from dltrain.config.schema import kind_of_loss


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
