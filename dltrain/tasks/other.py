"""A loss dltrain does not know, and no `task:` to say what it means: the targets are used as
read, the last layer is not checked, and there is no report beyond Keras's own metrics.

predict still shows the outputs as classes and the data checks count classes, as before tasks
were objects: such a loss most often takes class ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from dltrain.tasks.base import ConfigFacts, LossKind, Task
from dltrain.tasks.classification import Classification
from dltrain.tasks.classification_checks import check_class_targets


@dataclass(frozen=True)
class Other(Classification):
    """A loss no task lists: class-like for the data and predict, without a class report."""

    kind: LossKind = "other"
    name: ClassVar[str] = "other"
    losses: ClassVar[dict[str, LossKind]] = {}
    classes: ClassVar[bool] = False
    report_key: ClassVar[str | None] = None

    def check(self, facts: ConfigFacts) -> None:
        check_class_targets(facts, self.kind, f"loss {facts.loss} is not a regression loss "
                            "dltrain knows (set task: regression if it is one)")

    def notes(self, facts: ConfigFacts) -> list[str]:
        return []

    def parity(self, reference: np.ndarray, y_test: np.ndarray,
               from_logits: bool) -> tuple[np.ndarray, np.ndarray | None]:
        return Task.parity(self, reference, y_test, from_logits)
