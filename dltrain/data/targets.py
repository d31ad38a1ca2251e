"""What the loss needs of the targets: numbers for a regression, whole class ids for a classifier."""

from __future__ import annotations

import numpy as np

from dltrain.config.schema import CLASSIFICATION_KINDS, DatasetConfig, LossKind
from dltrain.data.raw import Raw
from dltrain.errors import ConfigError, DataError

def targets_for(raw: Raw, cfg: DatasetConfig, loss_kind: LossKind) -> Raw:
    """A regression's targets as float32 columns, (samples, targets), named; a classifier's
    labels as integer class ids, refused when they are not whole numbers."""
    if loss_kind == "regression":
        return regression_targets(raw, cfg)
    if loss_kind in CLASSIFICATION_KINDS:
        return class_ids(raw, cfg, loss_kind)
    return raw


