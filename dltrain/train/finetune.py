"""Fine-tuning a frozen backbone: train the new layers first, then the backbone's top too.

As in Keras's transfer-learning guide: after `fine_tune.at_epoch` epochs the top
`fine_tune.layers` layers of the backbone are unfrozen (BatchNormalization layers stay frozen,
so they keep running in inference mode), and the model is recompiled with the lower
`fine_tune.learning_rate`. The new optimizer continues the old one's step count, which is how
a resume counts the epochs last.keras holds; last.keras saves the unfrozen layers and the new
optimizer, so a resume past that epoch continues as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from dltrain.backend import keras_module
from dltrain.config.backbone import backbone_of
from dltrain.config.model_section import FineTuneConfig
from dltrain.config.schema import Config
from dltrain.model.augment import saved_model
from dltrain.model.compile import compile_model

# The trainer's fit from a first epoch to a last one (Keras's initial_epoch and epochs).
FitFrom = Callable[[Any, int, int], None]


def fit_in_phases(trainer: Any, config: Config, fit_from: FitFrom, first: int,
                  say: Callable[[str], None], rewrap: Callable[[Any], Any]) -> Any:
    """Train from epoch `first` to training.epochs, unfreezing the backbone on the way when the
    config fine-tunes it (`say` tells the user); training stopped early (early stopping) does
    not go on to fine-tune. Returns the trainer of the last phase, compiled as it ran.

    `trainer` is the model, or the model inside the augmentation that JAX and torch run in the
    training step; `rewrap` makes that anew around the recompiled model.
    """
    model = saved_model(trainer)
    spec = backbone_of(config)
    tune = spec.fine_tune if spec is not None else None
    if tune is not None and first < tune.at_epoch:
        fit_from(trainer, first, tune.at_epoch)
        if trainer.stop_training:
            return trainer
        first = tune.at_epoch
    if tune is not None and not is_unfrozen(model):
        unfreeze(model, config, tune)
        trainer = rewrap(model)
        trained = sum(int(np.prod(weight.shape))
                      for weight in backbone_model(model).trainable_weights)
        say(f"fine-tuning from epoch {first + 1}: the last {tune.layers} layers of "
            f"{backbone_model(model).name} unfrozen ({trained:,} weights, BatchNormalization "
            f"frozen), learning rate {tune.learning_rate:g}.")
    fit_from(trainer, first, config.training.epochs)
    return trainer


def backbone_model(model: Any) -> Any:
    """The keras.applications model inside the run's model."""
    keras = keras_module()
    return next(layer for layer in model.layers if isinstance(layer, keras.Model))


def is_unfrozen(model: Any) -> bool:
    """Whether any of the backbone's weights train (its InputLayer's flag says nothing)."""
    return bool(backbone_model(model).trainable_weights)


def unfreeze(model: Any, config: Config, tune: FineTuneConfig) -> None:
    """Unfreeze the backbone's top layers, BatchNormalization excepted, and recompile."""
    keras = keras_module()
    backbone = backbone_model(model)
    backbone.trainable = True
    for index, layer in enumerate(backbone.layers):
        top = index >= len(backbone.layers) - tune.layers
        layer.trainable = top and not isinstance(layer, keras.layers.BatchNormalization)
    steps = int(model.optimizer.iterations.numpy())
    compile_model(model, config, config.optimizer.model_copy(
        update={"learning_rate": tune.learning_rate, "schedule": None}))
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(steps)
