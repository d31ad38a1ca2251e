"""Classification or regression: the config's parts must agree on which task it is.

The task is resolved as the config loads (`Config.task_spec`); its checks (in dltrain/tasks)
read the config's facts made here and name the key that disagrees, so the error points at its
line of the config file.
"""

from __future__ import annotations

from dltrain.config.schema import Config
from dltrain.tasks.base import ConfigFacts


def facts(config: Config) -> ConfigFacts:
    """What the task's checks read of the config, as plain values."""
    last = config.model.nodes[-1]  # the model's output, inside a Repeat or not
    index = last.where.removeprefix("model.layers.").removesuffix(f".{last.layer}")
    layer, args = last.layer, last.args
    return ConfigFacts(
        loss=config.loss_name, task=config.task, from_logits=config.from_logits,
        metrics=[metric if isinstance(metric, str) else metric.name for metric in config.metrics],
        last_index=int(index) if index.isdigit() else index, last_layer=layer, last_args=args,
        label_map=config.dataset.label_map is not None, one_hot=config.dataset.one_hot,
        standardize_target=config.dataset.standardize_target,
        label_columns=config.dataset.label_columns)


def check_task(config: Config) -> None:
    """Refuse a config whose loss, task, output layer, metrics and dataset keys disagree.

    Raises:
        ConfigError: "key.path: what disagrees, and how to fix it".
    """
    config.task_spec.check(facts(config))


def task_notes(config: Config) -> list[str]:
    """What the task finds may train badly (a classifier's logits and probabilities mixed up)."""
    return config.task_spec.notes(facts(config))
