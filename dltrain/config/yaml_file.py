"""Read a config file's YAML: safely, with the line of every key, refusing documents that would
exhaust the stack or the memory."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml

from dltrain.errors import ConfigError
from dltrain.runs.names import CONFIG_FILE

Key = tuple[str | int, ...]


def read_yaml(path: Path) -> tuple[Any, dict[Key, int]]:
    """Parse with the safe loader and remember the line of every key."""
    try:
        check_regular(path, "a YAML config file")  # before opening: a FIFO's open() blocks
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such config file.") from None
    except IsADirectoryError:  # often a run's folder, given where its config.yaml was meant
        inside = path / CONFIG_FILE
        raise ConfigError(f"{path}: a folder, not a config file"
                          + (f"; the run's config is {inside}." if inside.is_file() else ".")) \
            from None
    except (UnicodeDecodeError, PermissionError) as exc:
        raise ConfigError(f"{path}: cannot read the config file ({exc}).") from None
    loader = _loader(text, str(path), at_line=True)
    lines: dict[Key, int] = {}
    try:
        node = loader.get_single_node()
        if node is None:
            return None, lines
        _record_lines(node, (), lines, path)  # before merge keys (<<) are flattened into it
        data = _unshared(loader.construct_document(node))
    except _Refused as exc:
        raise ConfigError(f"{path} (line {exc.line}): {exc}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        if "python/" in str(exc):
            problem = "python tags (!!python/...) are not allowed: configs cannot run code"
        raise ConfigError(f"{path}{where}: invalid YAML: {problem}.") from None
    finally:
        loader.dispose()
    return data, lines


# What a path is, when it is not a regular file nor a folder.
KINDS = {stat.S_ISFIFO: "a named pipe (FIFO)", stat.S_ISCHR: "a character device",
         stat.S_ISBLK: "a block device", stat.S_ISSOCK: "a socket"}


def check_regular(path: Path, wanted: str) -> None:
    """Refuse, by name, a path that is not a regular file (nor a folder, which callers explain
    their own way), without opening it: reading a FIFO waits for a writer forever, a device
    such as /dev/zero never ends.

    Raises:
        FileNotFoundError: when nothing is there. ConfigError: a pipe, device or socket.
    """
    mode = os.stat(path).st_mode
    if stat.S_ISREG(mode) or stat.S_ISDIR(mode):
        return
    kind = next((name for test, name in KINDS.items() if test(mode)), "not a file")
    raise ConfigError(f"{path}: not a regular file ({kind}). Give {wanted}.")


def read_value(text: str, option: str) -> Any:
    """A --set value, parsed with the same guards as a file; `option` names it in errors."""
    loader = _loader(text, option, at_line=False)
    try:
        node = loader.get_single_node()
        return None if node is None else _unshared(loader.construct_document(node))
    except _Refused as exc:
        raise ConfigError(f"{option}: {exc}") from None
    except yaml.YAMLError:
        raise ConfigError(f"{option}: the value is not valid YAML.") from None
    finally:
        loader.dispose()


def _loader(text: str, where: str, at_line: bool) -> _GuardedLoader:
    """The loader of `text`, or a ConfigError naming the control character YAML refuses (it
    checks the whole text at once, before parsing) with its line and column."""
    try:
        return _GuardedLoader(text)
    except yaml.reader.ReaderError as exc:
        start = text.rfind("\n", 0, exc.position) + 1
        at = (f" (line {text.count(chr(10), 0, exc.position) + 1}, column "
              f"{exc.position - start + 1})" if at_line else "")
        character = ascii(chr(exc.character))[1:-1] if isinstance(exc.character, int) else "?"
        raise ConfigError(f"{where}{at}: holds the control character {character}, which YAML "
                          "does not allow. Remove it (a stray key press or a pasted terminal "
                          "sequence?).") from None


def _unshared(data: Any) -> Any:
    """A copy where an alias's values are its own, so --set changes only the key it names."""
    if isinstance(data, dict):
        return {key: _unshared(value) for key, value in data.items()}
    if isinstance(data, list):
        return [_unshared(item) for item in data]
    return data


# A real config: under 10 levels, a few hundred values; a search's choice list may hold more,
# written out, and what is written out costs its text, so only aliases' copies are limited.
MAX_DEPTH, MAX_VALUES = 100, 100_000


class _Refused(Exception):
    def __init__(self, message: str, mark: Any) -> None:
        super().__init__(message)
        self.line = mark.line + 1 if mark else 0


class _GuardedLoader(yaml.SafeLoader):
    """The safe loader, refusing documents that would exhaust the stack or the memory.

    Nesting deeper than MAX_DEPTH would overflow the recursive composer; aliases, which YAML
    lets a document reuse at no cost in text, are counted at their expanded size, so that
    nine lines of nested aliases ("billion laughs") cannot grow into 10**9 values. Values
    written out are not limited: a long literal list is as large in the file as in memory.
    """

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.depth = 0
        self.values = 0  # the document's size with every alias expanded, so far
        self.copied = 0  # of which aliases' copies
        self.sizes: dict[int, int] = {}  # id(node) -> its expanded size, once composed

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self.sizes:
                raise _Refused(f"alias '*{event.anchor}' refers to a collection that contains "
                               "it; a config cannot be recursive. Write the values out.",
                               event.start_mark)
            self._copy(self.sizes[id(node)], event.start_mark)
            return node
        nests = isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent))
        if nests and self.depth >= MAX_DEPTH:
            raise _Refused(f"nested deeper than {MAX_DEPTH} levels; a config needs a few. "
                           "Check the brackets and indentation.", event.start_mark)
        before = self.values
        self.values += 1
        self.depth += nests
        try:
            node = super().compose_node(parent, index)
        finally:
            self.depth -= nests
        self.sizes[id(node)] = self.values - before
        return node

    def _copy(self, size: int, mark: Any) -> None:
        self.values += size
        self.copied += size
        if self.copied > MAX_VALUES:
            raise _Refused(f"more than {MAX_VALUES:,} values once aliases (*name) are expanded; "
                           "a config needs a few hundred. Use fewer aliases, or write the values "
                           "out.", mark)


def _record_lines(node: yaml.Node, key: Key, lines: dict[Key, int], path: Path) -> None:
    """Map key paths to lines; a key given twice is an error (YAML would keep the last)."""
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            child = (*key, key_node.value)
            if child in lines:
                raise ConfigError(f"{path} (line {key_node.start_mark.line + 1}): duplicate key "
                                  f"'{'.'.join(map(str, child))}', first given on line "
                                  f"{lines[child]}. Keep one.")
            lines[child] = key_node.start_mark.line + 1
            _record_lines(value_node, child, lines, path)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            lines[(*key, index)] = item.start_mark.line + 1
            _record_lines(item, (*key, index), lines, path)


# YAML 1.1 (PyYAML) needs a dot and a signed exponent for a float, so `1e-3` and `1.0e12` would be
# strings; YAML 1.2 and every Keras example read them as numbers, and so does a config here.
_EXPONENT_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_GuardedLoader.add_implicit_resolver("tag:yaml.org,2002:float", _EXPONENT_FLOAT,
                                     list("-+0123456789"))


def _decimal_int(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> int:
    """YAML 1.1 reads a leading 0 as octal (`seed: 0042` was 34, `batch_size: 010` 8); YAML 1.2
    and a reader of the file see decimal, and so does a config here (0x1f stays hexadecimal)."""
    text = str(loader.construct_scalar(node)).replace("_", "")
    if re.fullmatch(r"[-+]?0[0-7]+", text):
        return int(text, 10)
    return int(loader.construct_yaml_int(node))


_GuardedLoader.add_constructor("tag:yaml.org,2002:int", _decimal_int)
