"""Tables that fit a terminal of any width (CI logs get 80 columns): each row keeps its name
and its numbers whole, only free text wraps, and a long message goes under the table as a
numbered note instead of into a narrow cell.

Columns made with `no_wrap=True` are kept whole (names, numbers); the others are free text.
`Fitted` prints the table when its whole columns fit the width, else each row as a block of
`header value` lines, so no row ever loses its name.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Sequence
from pathlib import PurePosixPath

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.markup import escape
from rich.table import Table
from rich.text import Text

FOLD_AT = 20  # characters a folding column needs at least: no number is longer
NOTE_AT = 60  # characters: a message longer than this goes under the table, numbered
BLOCK_PAD = 20  # characters: longer headers are not padded to align the values


def unique_names(names: Sequence[str], separator: str = "/", stem: bool = True) -> list[str]:
    """Each name's shortest unique form: its last part (a path's stem with `stem`), with as
    many parts before it as tell it from the others (configs/a/x.yaml and configs/b/x.yaml:
    a/x and b/x). Given `separator="."`, the same for key paths (model.layers.1.Dense.units:
    units). A name given twice is shown whole."""
    candidates = [_candidates(name, separator, stem) for name in names]
    # How many names each form could stand for: counted once, so predict's 20,000 rows take
    # linear time (each form against every other name's was quadratic: minutes).
    counts = Counter(form for own in candidates for form in own)
    return [next((form for form in own if counts[form] == 1), name)
            for name, own in zip(names, candidates, strict=True)]


def _candidates(name: str, separator: str, stem: bool) -> list[str]:
    parts = [part for part in name.split(separator) if part] or [name]
    last = PurePosixPath(parts[-1]).stem if stem and separator == "/" else parts[-1]
    shortened = [separator.join([*parts[len(parts) - k:-1], last])
                 for k in range(1, len(parts) + 1)]
    whole = [separator.join(parts[len(parts) - k:]) for k in range(1, len(parts) + 1)]
    return list(dict.fromkeys([*shortened, *whole, name]))


class Notes:
    """Long messages of a table's cells, printed under it as `[1] message`."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def cell(self, text: str) -> str:
        """The cell's markup: the text when short, else `see [n]` with the text kept as note n."""
        if len(text) <= NOTE_AT and "\n" not in text:
            return escape(text)
        self.texts.append(text)
        return f"see \\[{len(self.texts)}]"

    def renderable(self) -> RenderableType:
        return Group(*(Text(f"[{number}] {text}") for number, text in
                       enumerate(self.texts, start=1)))


class Fitted:
    """`table` as wide as the console allows, its whole (no_wrap) columns never cut; rows as
    blocks where even those do not fit; then the notes, if any."""

    def __init__(self, table: Table, notes: Notes | None = None) -> None:
        self.table, self.notes = table, notes

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield next((table for table in (self.table, compact(self.table))
                    if needed_width(console, options, table) <= options.max_width),
                   blocks(self.table))
        if self.notes is not None and self.notes.texts:
            yield self.notes.renderable()


def needed_width(console: Console, options: ConsoleOptions, table: Table) -> int:
    """The narrowest the table can be with its whole columns whole and free text wrapped at
    its longest word."""
    unbounded = options.update(max_width=10_000)
    widths = []
    for column in table.columns:
        measured = table._measure_column(console, unbounded, column)  # noqa: SLF001
        # A folding column can fold its longest word (a path): it only needs room for a number.
        least = min(measured.minimum, FOLD_AT) if column.overflow == "fold" else measured.minimum
        widths.append(measured.maximum if column.no_wrap else least)
    return sum(widths) + table._extra_width  # noqa: SLF001


def compact(table: Table) -> Table:
    """The table with rules under its title and header only, one space between columns (as
    `dltrain runs` prints): a few columns narrower."""
    narrow = copy.copy(table)
    narrow.box, narrow.padding, narrow.pad_edge, narrow.show_edge = (
        box.SIMPLE_HEAD, (0, 1, 0, 0), False, False)
    return narrow


def blocks(table: Table) -> RenderableType:
    """Each row as its first cell on a line of its own, then a `header value` paragraph per
    column, wrapped between words: for a width that no table of these columns fits."""
    headers = [Text.from_markup(str(column.header)).plain.replace("\n", " ")
               for column in table.columns]
    cells = [list(column.cells) for column in table.columns]
    pad = max(map(len, headers[1:]), default=0)
    pad = pad if pad <= BLOCK_PAD else 0  # aligned when the headers are short
    parts: list[RenderableType] = [Text.from_markup(str(table.title))] if table.title else []
    for index in range(table.row_count):
        parts.append(Text.assemble(f"{headers[0]} ", _text(cells[0][index]), overflow="fold"))
        parts += [Text.assemble(f"  {header.ljust(pad)} ", _text(column[index]), overflow="fold")
                  for header, column in zip(headers[1:], cells[1:], strict=True)
                  if _text(column[index]).plain.strip()]  # an empty cell says nothing
    if table.caption:
        parts.append(Text.from_markup(str(table.caption)))
    return Group(*parts)


def _text(cell: RenderableType) -> Text:
    return cell if isinstance(cell, Text) else Text.from_markup(str(cell))


def fitted(table: Table, notes: Notes | None = None) -> Fitted:
    return Fitted(table, notes)
