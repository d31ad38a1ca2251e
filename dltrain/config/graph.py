"""model.layers as a graph, without Keras: `Repeat` entries unrolled, each layer's `inputs:`
resolved to earlier layers, and every reference mistake named at its key.

A layer's arguments may hold `name:` (Keras's own layer name, which later layers refer to) and
`inputs:` (one reference or a list: a name, or an offset back, -1 the layer before; default the
layer before). `- Repeat: {times: N, layers: [...]}` writes its layers N times in a row; names
inside copy k get the suffix _k (`conv` is `conv_2` in the second copy, `conv_2_1` in a nested
Repeat), and a name inside a Repeat refers to the copy's own layer first, then to one outside.
Offsets count back through the unrolled layers, so `-3` in a copy may reach the layer before the
copy: a residual block's shortcut. Offset -k reaching one before the first layer is the model's
input, which is also the name `input`.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from typing import Any

REPEAT = "Repeat"
BACKBONE = "Backbone"  # a keras.applications model; its `name` is the application's
INPUT = "input"  # the model's input, as a name
INPUTS_KEY, NAME_KEY = "inputs", "name"
# Keras's merge layers: several inputs into one; how many each takes (None: two or more).
MERGE_LAYERS = {"Add": None, "Average": None, "Concatenate": None, "Maximum": None,
                "Minimum": None, "Multiply": None, "Subtract": 2, "Dot": 2}
MODEL_INPUT = -1  # a node's input index for the model's input
MAX_LAYERS = 2_000  # unrolled; ResNet-152 has ~500: more is a typo in `times`, not a model


class GraphError(ValueError):
    """A reference mistake at `key` (a key path of the config), said in `message`."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(message)
        self.key, self.message = key, message


@dataclass(frozen=True)
class Node:
    """One layer of the unrolled model: where it is written, its class and arguments (without
    `inputs`, its name suffixed), and the indices of the nodes it takes (-1: the model input)."""

    where: str  # model.layers.4.Repeat.layers.1.Conv2D
    layer: str
    args: dict[str, Any]
    inputs: tuple[int, ...]
    copy: str = ""  # "copy 2 of 3" inside a Repeat

    @property
    def name(self) -> str | None:
        name = self.args.get(NAME_KEY)
        return name if isinstance(name, str) and self.layer != BACKBONE else None

    def label(self) -> str:
        """How messages name the layer: its name and key, or its key."""
        return f"'{self.name}' ({self.where})" if self.name else self.where + (
            f" ({self.copy})" if self.copy else "")


@dataclass
class _Written:
    """A node before its references are resolved."""

    where: str
    layer: str
    args: dict[str, Any]
    refs: list[Any] | None  # as written; None: the layer before
    scopes: tuple[str, ...]  # the suffixes of the Repeats around it, innermost last
    copy: str


def nodes(layers: list[dict[str, Any]]) -> list[Node]:
    """The unrolled, resolved layers. Raises GraphError at the first mistake."""
    written: list[_Written] = []
    _unroll(layers, "model.layers", (), "", written)
    names = _names(written)
    resolved = [_resolve(written, index, names) for index in range(len(written))]
    for index, targets in enumerate(resolved):
        _check_order(written, resolved, index, targets)
    out = [Node(item.where, item.layer, item.args, tuple(targets), item.copy)
           for item, targets in zip(written, resolved, strict=True)]
    for node in out:
        _check_count(node)
    _check_used(out)
    return out


def is_chain(graph: list[Node]) -> bool:
    """Whether each layer takes the one before: a keras.Sequential model, as before graphs."""
    return all(node.inputs == (index - 1,) for index, node in enumerate(graph))


def _unroll(layers: list[Any], prefix: str, scopes: tuple[str, ...], copy: str,
            out: list[_Written]) -> None:
    for index, spec in enumerate(layers):
        where = f"{prefix}.{index}"
        if isinstance(spec, str):
            spec = {spec: {}}
        if not isinstance(spec, dict) or len(spec) != 1:
            raise GraphError(where, "must name exactly one layer class, like '- Dense: {units: "
                             f"10}}'. Received: {spec!r}.")
        ((layer, args),) = spec.items()
        if not isinstance(layer, str):
            raise GraphError(where, f"a layer is named by its keras.layers class, like Dense. "
                             f"Received: {layer!r}.")
        args = {} if args is None else args
        if not isinstance(args, dict):
            raise GraphError(f"{where}.{layer}", f"{layer}'s arguments are a mapping, by name. "
                             f"Received: {args!r}.")
        if layer == BACKBONE and scopes:
            raise GraphError(f"{where}.{layer}", "a backbone takes the images: it is the first "
                             "layer of model.layers, never repeated.")
        if layer == REPEAT:
            _unroll_repeat(args, f"{where}.{REPEAT}", scopes, out)
            continue
        args = dict(args)
        refs = args.pop(INPUTS_KEY, None)
        if refs is not None and not isinstance(refs, list):
            refs = [refs]
        if scopes and isinstance(args.get(NAME_KEY), str):
            args[NAME_KEY] += scopes[-1]
        out.append(_Written(f"{where}.{layer}", layer, args, refs, scopes, copy))
        if len(out) > MAX_LAYERS:
            raise GraphError(where, f"the model unrolls to more than {MAX_LAYERS:,} layers; "
                             "check the Repeats' times.")


def _unroll_repeat(args: dict[str, Any], where: str, scopes: tuple[str, ...],
                   out: list[_Written]) -> None:
    times, inner = args.get("times"), args.get("layers")
    unknown = sorted(set(args) - {"times", "layers"})
    if unknown:
        raise GraphError(f"{where}.{unknown[0]}", f"unknown key; a {REPEAT} takes times and "
                         "layers: {times: 3, layers: [...]}")
    if not isinstance(times, int) or isinstance(times, bool) or times < 1:
        raise GraphError(f"{where}.times" if "times" in args else where,
                         f"how many copies, a positive integer. Received: {times!r}.")
    if not isinstance(inner, list) or not inner:
        raise GraphError(f"{where}.layers" if "layers" in args else where,
                         f"the layers to repeat, a non-empty list. Received: {inner!r}.")
    base = scopes[-1] if scopes else ""
    for copy in range(1, times + 1):
        _unroll(inner, f"{where}.layers", (*scopes, f"{base}_{copy}"), f"copy {copy} of {times}",
                out)


def _names(written: list[_Written]) -> dict[str, int]:
    names: dict[str, int] = {}
    for index, item in enumerate(written):
        name = item.args.get(NAME_KEY)
        if name is None or item.layer == BACKBONE:
            continue
        if not isinstance(name, str) or not name:
            raise GraphError(f"{item.where}.{NAME_KEY}", f"a layer's name is a non-empty "
                             f"string. Received: {name!r}.")
        if name == INPUT:
            raise GraphError(f"{item.where}.{NAME_KEY}", f"'{INPUT}' names the model's input; "
                             "give the layer another name.")
        if name in names:
            first = written[names[name]]
            raise GraphError(f"{item.where}.{NAME_KEY}", f"the name '{name}' is used twice: "
                             f"also by {first.where}{_copy(first)}. Give each layer its own name"
                             + (" (inside a Repeat, names get the suffix _1, _2, ...)"
                                if item.scopes else "") + ".")
        names[name] = index
    return names


def _copy(item: _Written) -> str:
    return f" ({item.copy})" if item.copy else ""


def _resolve(written: list[_Written], index: int, names: dict[str, int]) -> list[int]:
    item = written[index]
    if item.refs is None:
        return [index - 1]
    if not item.refs:
        raise GraphError(f"{item.where}.{INPUTS_KEY}", "at least one input: a name or an offset "
                         "(-1 is the layer before). Received: [].")
    return [_target(ref, written, index, names) for ref in item.refs]


def _target(ref: Any, written: list[_Written], index: int, names: dict[str, int]) -> int:
    item = written[index]
    key = f"{item.where}.{INPUTS_KEY}"
    if isinstance(ref, int) and not isinstance(ref, bool):
        if ref >= 0:
            raise GraphError(key, f"an offset counts back from this layer: -1 is the layer "
                             f"before, -2 the one before that. Received: {ref}.")
        if index + ref < MODEL_INPUT:
            raise GraphError(key, f"offset {ref} reaches before the model's input: this is "
                             f"layer {index + 1} of the unrolled model{_copy(item)}, so -{index + 1} "
                             f"is the input. Received: {ref}.")
        return index + ref
    if not isinstance(ref, str):
        raise GraphError(key, f"a layer's name or an offset like -1. Received: {ref!r}.")
    if ref == INPUT:
        return MODEL_INPUT
    for scope in reversed(item.scopes):  # the copy's own layer first, then the Repeat's around it
        target = names.get(ref + scope)
        # Only a layer written inside that Repeat: an outside layer's name may end like a
        # suffix (`x_1` beside `x`), and would wire each copy to another outside layer.
        if target is not None and scope in written[target].scopes:
            return target
    if ref in names:
        return names[ref]
    raise GraphError(key, f"no layer is named '{ref}'.{_nearest(ref, names)}")


def _nearest(ref: str, names: dict[str, int]) -> str:
    if re.fullmatch(r"\s*[-+]?\d+\s*", ref):
        return f" An offset is a number, without quotes: inputs: {ref.strip()}."
    suffixed = sorted(name for name in names if name.startswith(ref + "_"))
    if suffixed:
        return (f" Inside a Repeat names get a suffix per copy: {', '.join(suffixed[:3])}"
                + (", ..." if len(suffixed) > 3 else "") + ".")
    close = difflib.get_close_matches(ref, [*names, INPUT], n=1, cutoff=0.6)
    if close:
        return f" Did you mean '{close[0]}'?"
    if not names:
        return " No layer has a name yet: give the one meant a name: key."
    return f" Named layers: {', '.join(sorted(names)[:8])}."


def _check_order(written: list[_Written], resolved: list[list[int]], index: int,
                 targets: list[int]) -> None:
    """A layer takes earlier layers only: a later one is a forward reference, or a cycle when
    the later one leads back to this layer."""
    for target in targets:
        if target < index:
            continue
        item, key = written[index], f"{written[index].where}.{INPUTS_KEY}"
        loop = _path(resolved, target, index)
        if loop is not None:
            names = [_short(written[step]) for step in [index, *loop]]
            raise GraphError(key, f"a cycle: {names[0]} takes " + ", which takes ".join(names[1:])
                             + " (a layer without inputs: takes the one before). A layer takes "
                             "earlier layers' outputs only.")
        raise GraphError(key, f"{_short(written[target])} is written after this layer "
                         f"({written[target].where}); a layer takes earlier layers' outputs "
                         f"only. Move {_short(written[target])} above {_short(item)}.")


def _short(item: _Written) -> str:
    name = item.args.get(NAME_KEY)
    return f"'{name}'" if isinstance(name, str) and item.layer != BACKBONE else item.where


def _path(resolved: list[list[int]], start: int, goal: int) -> list[int] | None:
    """The nodes from `start` back to `goal` through inputs (start and goal included), if any."""
    stack, seen = [(start, [start])], {start}
    while stack:
        node, path = stack.pop()
        if node == goal:
            return path
        for nxt in resolved[node] if node >= 0 else []:
            if nxt not in seen:
                seen.add(nxt)
                stack.append((nxt, [*path, nxt]))
    return None


def _check_count(node: Node) -> None:
    if node.layer in MERGE_LAYERS:
        wanted = MERGE_LAYERS[node.layer]
        count = len(node.inputs)
        if count < 2 or (wanted is not None and count != wanted):
            amount = f"exactly {wanted}" if wanted else "two or more"
            raise GraphError(f"{node.where}.{INPUTS_KEY}", f"{node.layer} merges {amount} "
                             f"inputs, e.g. inputs: [-1, -3]. Received: {count}.")
    elif len(node.inputs) > 1:
        raise GraphError(f"{node.where}.{INPUTS_KEY}", f"{node.layer} takes one input; merge "
                         f"several first with Add or Concatenate. Received: {len(node.inputs)}.")


def _check_used(graph: list[Node]) -> None:
    """The model's output is the last layer; a layer nothing takes would be dropped silently."""
    used = {target for node in graph for target in node.inputs}
    for index, node in enumerate(graph[:-1]):
        if index not in used:
            raise GraphError(node.where, f"nothing takes this layer's output{_at(node)}; the "
                             f"model's output is the last layer ({graph[-1].where}). Name it in a "
                             "later layer's inputs, or remove it.")


def _at(node: Node) -> str:
    return f" ({node.copy})" if node.copy else ""


def described(graph: list[Node]) -> list[dict[str, Any]]:
    """Each layer of the unrolled model with the layers it takes (by name, else #number), for
    `dltrain show` and its --json."""
    def label(source: int) -> str:
        return INPUT if source == MODEL_INPUT else graph[source].name or f"#{source}"
    return [{"number": index, "name": node.name, "class": node.layer,
             "key": node.where + (f" ({node.copy})" if node.copy else ""),
             "inputs": [label(source) for source in node.inputs]}
            for index, node in enumerate(graph)]


def graph_lines(graph: list[Node]) -> list[str]:
    """`described` as text, one layer a line: number, name, class, inputs, key."""
    rows = described(graph)
    width = max(len(row["name"] or "") for row in rows)
    kind = max(len(row["class"]) for row in rows)
    taken = max(len(", ".join(row["inputs"])) for row in rows)
    return [f"#{row['number']:<3} {row['name'] or '':<{width}}  {row['class']:<{kind}}  <- "
            f"{', '.join(row['inputs']):<{taken}}  {row['key']}" for row in rows]
