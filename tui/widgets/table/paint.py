"""Cells to segments, segments to a styled row: the drawing DataTable did, kept equal.

The look is Textual's DataTable's (the same component classes and the same order of styles),
so the table looks as it did: a cell is ``Padding(text, (0, padding))`` rendered on one line;
its style is the row's (header, fixed column, zebra stripe) under the cell's own, with the
cursor's or hover's component style over it. Each cell's segments carry its column in their
style's meta (so no two cells merge into one segment, as in DataTable's strips).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

from rich.console import Console, ConsoleOptions
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.strip import Strip

EMPTY = Text("", end="")
HEADER = -1  # the header's row index
HEADER_HEIGHT = 1  # lines above the first row


def render_cell(
    console: Console, options: ConsoleOptions, cell: Text, width: int, padding: int
) -> list[Segment]:
    """The cell rendered by Rich into one line of its column's WIDTH (padding included)."""
    line_options = options.update_dimensions(width, 1).update(no_wrap=True)
    return console.render_lines(Padding(cell or EMPTY, (0, padding)), line_options)[0]


class CellLook(NamedTuple):
    """The component style over a cell's own, and the colours that win over the cell's."""

    pre: Style
    post: Style


class Looks:
    """The component styles of one styles generation (theme, focus), worked out once each."""

    def __init__(self, style_of: Callable[[str], Style]) -> None:
        self._style_of = style_of  # component class -> Rich style
        self._looks: dict[tuple[bool, bool, bool, bool], CellLook] = {}

    def cell(self, header: bool, fixed: bool, hover: bool, cursor: bool) -> CellLook:
        key = (header, fixed, hover, cursor)
        look = self._looks.get(key)
        if look is None:
            get = self._style_of
            style = Style()
            if hover:
                style += get("datatable--hover")
                if header:
                    style += get("datatable--header-hover")
            if cursor:
                style += get("datatable--cursor")
                if header:
                    style += get("datatable--header-cursor")
                elif fixed:
                    style += get("datatable--fixed-cursor")
            post = Style.from_color(color=style.color) + Style.from_color(bgcolor=style.bgcolor)
            look = self._looks[key] = CellLook(style, post)
        return look

    def extension(self, header: bool, hover: bool, cursor: bool) -> Style:
        """Past the last column, a row cursor's line goes on to the widget's edge."""
        return self.cell(header, False, hover, cursor).pre


class RowLook(NamedTuple):
    """What styles one row: its fixed columns' style, the others', hover and cursor."""

    fixed_style: Style
    row_style: Style
    header: bool
    hover: bool
    cursor: bool


@functools.cache
def column_meta(column: int) -> Style:
    """The style carrying a cell's column (made once: ``Style.from_meta`` pickles its meta)."""
    return Style.from_meta({"column": column})


def style_row(
    cells: list[list[Segment]], look: RowLook, looks: Looks, fixed_columns: int, space: int
) -> tuple[Strip, Strip]:
    """The row's strips: its fixed columns, and the others followed by SPACE cells of the row's
    background (to the widget's edge)."""
    header, hover, cursor = look.header, look.hover, look.cursor
    fixed: list[Segment] = []
    scrolling: list[Segment] = []
    for column, segments in enumerate(cells):
        is_fixed = column < fixed_columns
        base = look.fixed_style if is_fixed else look.row_style
        cell_look = looks.cell(header, is_fixed and not header, hover, cursor)
        pre = base + column_meta(column) + cell_look.pre
        (fixed if is_fixed else scrolling).extend(
            Segment.apply_style(segments, pre, cell_look.post)
        )
    extend = look.row_style + looks.extension(header, hover, cursor)
    extend += Style.from_meta({"column": 0, "out_of_bounds": True})
    scrolling.append(Segment(" " * space, extend))
    return Strip(fixed), Strip(scrolling)


def line(fixed: Strip, scrolling: Strip, scroll_x: int, width: int, base: Style) -> Strip:
    """The row's line on screen: the fixed columns, then the others from SCROLL_X on."""
    shown = scrolling.crop(scroll_x, scroll_x + max(0, width - fixed.cell_length))
    return Strip.join([fixed, shown]).adjust_cell_length(width, base).simplify()
