"""The search space: the `search:` section's key paths, checked by applying each value as
`--set` would, and each key's Optuna distribution or grid."""

from __future__ import annotations

import copy
import math
from typing import Any

import yaml

from dltrain.config.catalog import check_loaded
from dltrain.config.load import Loaded, validate
from dltrain.config.overrides import apply_override
from dltrain.config.schema import Config
from dltrain.config.search_section import SearchConfig, SpaceConfig
from dltrain.config.yaml_file import read_value
from dltrain.errors import ConfigError

# What Optuna stores for a categorical choice (GridSampler and the RDB storage alike).
SCALARS = (str, int, float, bool, type(None))


def override(key: str, value: Any) -> str:
    """`key=value` as --set takes it; the value written as YAML so it reads back the same."""
    text = yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("...").strip()
    if isinstance(value, str) and read_value(text, key) != value:
        # A string dltrain's YAML reads as a number (1e-3: YAML 1.2's float, unknown to the
        # writer, which leaves it unquoted): quoted, so that it stays the string it was.
        text = yaml.safe_dump(value, default_style='"').strip().removesuffix("...").strip()
    return f"{key}={text}"


def applied(base: dict[str, Any], source: str, values: dict[str, Any]) -> Loaded:
    """The config `base` with each searched key set to its value, validated (schema and Keras
    names), without its search section: what one trial trains.

    Raises:
        ConfigError: naming the --set option each failing key came from.
    """
    return _validated(copy.deepcopy(_searchless(base)), source, values)


def _searchless(base: dict[str, Any]) -> dict[str, Any]:
    # Copying the search section's choices once per choice made checking 20,000 of them
    # quadratic (5.5 minutes): it is dropped first.
    return {section: value for section, value in base.items() if section != "search"}


def _validated(raw: dict[str, Any], source: str, values: dict[str, Any]) -> Loaded:
    origins: dict[Any, str] = {}
    for key, value in values.items():
        apply_override(raw, override(key, value), source, {}, origins)
    loaded = Loaded(validate(raw, source, {}, origins), source, [], {}, origins)
    check_loaded(loaded)
    return loaded


def _copied_along(raw: dict[str, Any], key: str) -> dict[str, Any]:
    """`raw` with the sections on the way to `key` copied, the rest shared: enough for
    --set to write the key without changing `raw`, and far cheaper than a deep copy of all,
    once for each of thousands of values. Only for checking: the result is thrown away."""
    top = dict(raw)
    node: Any = top
    for part in key.split(".")[:-1]:
        if isinstance(node, dict) and isinstance(node.get(part), dict | list):
            node[part] = node = copy.copy(node[part])
        elif (isinstance(node, list) and part.isdigit() and int(part) < len(node)
              and isinstance(node[int(part)], dict | list)):
            node[int(part)] = node = copy.copy(node[int(part)])
        else:
            break
    return top


def check_space(config: Config, source: str) -> list[str]:
    """Refuse a search space that cannot be valid, before any trial: each key path must take
    each of its choices and both bounds (as `--set` would apply them), and a grid must be
    able to list its values. Returns notes (a grid's `trials` other than its size).

    Raises:
        ConfigError: naming `search.parameters.KEY` and what is wrong with it.
    """
    search = _search(config, source)
    base = _searchless(config.model_dump(mode="json"))
    for key, space in search.parameters.items():
        where = f"{source}: search.parameters.{key}"
        if key.split(".")[0] == "search":
            raise ConfigError(f"{where}: a search cannot change its own section; name a key of "
                              "the config, e.g. optimizer.learning_rate.")
        if space.choice is not None:
            odd = [value for value in space.choice if not isinstance(value, SCALARS)]
            if odd:
                raise ConfigError(f"{where}: choice values must be numbers, strings, booleans or "
                                  f"null (Optuna stores them). Received: {odd[0]!r}.")
        for value in distinct(candidates(space)):
            try:
                _validated(_copied_along(base, key), source, {key: value})
            except ConfigError as exc:
                text = str(exc).replace(f"--set {override(key, value)}: ", "")
                whole = (" Use int: [low, high] for whole numbers." if space.kind != "int"
                         and "valid integer" in text else "")
                raise ConfigError(f"{where}: the value {value!r} does not fit this key: "
                                  f"{text.removeprefix(source + ': ')}{whole}") from None
        if search.method == "grid" and grid_values(space) is None:
            raise ConfigError(f"{where}: method grid needs values it can list, and {space.kind} "
                              "without step has none. Use choice: [...], int: [low, high], "
                              "uniform with step, or method: random or tpe.")
    size = grid_size(search)
    if search.method != "grid" or search.trials is None or search.trials == size:
        return []
    if search.trials < size:
        return [f"search.trials {search.trials} caps the grid of {size} combinations."]
    return [f"search.trials {search.trials} is more than the grid's {size} combinations: the "
            f"search runs {size}."]


def _search(config: Config, source: str) -> SearchConfig:
    if config.search is None:
        raise ConfigError(f"{source}: no search: section, so nothing to tune. Add one, e.g. "
                          "search: {method: grid, parameters: {optimizer.learning_rate: "
                          "{choice: [0.001, 0.01]}}} (see configs/mnist_cnn_search.yaml).")
    return config.search


def candidates(space: SpaceConfig) -> list[Any]:
    """The values that stand for the whole space when checking it: every choice, else both
    bounds (as the type they will be suggested in)."""
    if space.choice is not None:
        return list(space.choice)
    low, high = getattr(space, space.kind)
    if space.kind == "int":
        return [int(low), int(high)]
    if space.step is not None or low == high:
        return [float(low), float(high)]
    # A value between the bounds too, never a whole number (pi is irrational): a float range
    # over a whole-number key (batch_size) passed at its whole bounds, then failed every trial.
    return [float(low), low + (high - low) / math.pi, float(high)]


def distinct(values: list[Any]) -> list[Any]:
    """Each value once, in order; 1, 1.0 and True stay apart (YAML writes them differently)."""
    return list({(type(value), value): value for value in values}.values())


def grid_values(space: SpaceConfig) -> list[Any] | None:
    """Every value of the space, or None for a continuous one."""
    if space.choice is not None:
        return list(space.choice)
    if space.int is not None:
        low, high = space.int
        return list(range(low, high + 1, int(space.step or 1)))
    if space.uniform is not None and space.step is not None:
        start, stop = space.uniform
        count = math.floor((stop - start) / space.step + 1e-9) + 1
        return [round(start + index * space.step, 12) for index in range(count)]
    return None


def grid_size(search: SearchConfig) -> int:
    """How many combinations a grid has (0 when a space cannot be listed)."""
    return math.prod(len(grid_values(space) or []) for space in search.parameters.values())


def planned_trials(search: SearchConfig) -> int:
    """The trials a search runs: `trials`, or the whole grid (whichever is less for a grid)."""
    if search.method == "grid":
        size = grid_size(search)
        return size if search.trials is None else min(size, search.trials)
    assert search.trials is not None  # the schema requires it for random and tpe
    return search.trials


def suggest(trial: Any, key: str, space: SpaceConfig) -> Any:
    """The trial's value for `key`, asked of Optuna in the space's own terms."""
    if space.choice is not None:
        return trial.suggest_categorical(key, space.choice)
    if space.int is not None:
        return trial.suggest_int(key, space.int[0], space.int[1], step=int(space.step or 1))
    if space.log_uniform is not None:
        return trial.suggest_float(key, *space.log_uniform, log=True)
    assert space.uniform is not None  # the schema allows exactly one kind
    return trial.suggest_float(key, *space.uniform, step=space.step)


def grid_space(search: SearchConfig) -> dict[str, list[Any]]:
    """GridSampler's search space: every key's values."""
    return {key: grid_values(space) or [] for key, space in search.parameters.items()}
