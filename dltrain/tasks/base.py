# What a loss expects of the labels and the last layer, by its name in any spelling
# (binary_crossentropy, BinaryCrossentropy, bce). Regression losses take numeric targets and a
# linear output. Losses not listed are "other": no label encoding, no class report.
LossKind = Literal["binary", "categorical", "sparse_categorical", "regression", "other"]


LOSS_KINDS: dict[str, LossKind] = {
    **dict.fromkeys(["binarycrossentropy", "bce", "binaryfocalcrossentropy", "hinge",
                     "squaredhinge"], "binary"),
    **dict.fromkeys(["categoricalcrossentropy", "categoricalfocalcrossentropy",
                     "categoricalhinge", "kldivergence", "kld", "kullbackleiblerdivergence"],
                    "categorical"),
    "sparsecategoricalcrossentropy": "sparse_categorical",
    **dict.fromkeys(["meansquarederror", "mse", "meanabsoluteerror", "mae",
                     "meanabsolutepercentageerror", "mape", "meansquaredlogarithmicerror", "msle",
                     "huber", "logcosh", "poisson", "cosinesimilarity"], "regression"),
}


CLASSIFICATION_KINDS = ("binary", "categorical", "sparse_categorical")


def kind_of_loss(name: str) -> LossKind:
    """The loss's kind: binary (0/1 labels, one unit), categorical (one-hot), sparse or other."""
    return LOSS_KINDS.get(name.replace("_", "").lower(), "other")
