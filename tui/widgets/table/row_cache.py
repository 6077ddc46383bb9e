"""What a row costs to draw, kept: its cells rendered by Rich, and its styled strips.

Two levels, each a bounded LRU cache (``textual.cache.LRUCache``):

- cells: (row key, column key, cell version, column width) -> the cell's segments, unstyled.
  This is the Rich rendering (the costly part); it depends on nothing but the cell's content
  and its column's width, so a sort, a cursor move, a theme or focus change never renders a
  cell again, and a changed cell renders only itself.
- strips: (row key, row version, column widths) + (zebra parity, cursor, hover, widget width)
  -> the row's styled strips (the fixed columns and the scrolling ones). A sort serves the
  visible rows that keep their stripe from here; the others are styled again from the cells.
  Emptied when the widget's styles change (theme, focus).

``RenderStats`` counts both, for tests and benches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from textual.cache import LRUCache
from textual.strip import Strip

CELLS = 32768  # rendered cells kept (a big host's 2000 rows of 11 cells, and room to spare)
STRIP_ROWS = 1024  # styled rows kept (several screenfuls, in both zebra parities)

CellKey = tuple[str, str, int, int]


@dataclass
class RenderStats:
    """Counters of row drawing, from the table's start (or the last ``reset``)."""

    rendered: int = 0  # rows styled with at least one cell rendered by Rich
    cells_cached: int = 0  # rows styled with every cell from the cache
    cells_rendered: int = 0  # cells rendered by Rich
    styled: int = 0  # rows styled into strips
    strips_cached: int = 0  # rows whose strips came from the cache

    def reset(self) -> None:
        self.rendered = self.cells_cached = self.cells_rendered = 0
        self.styled = self.strips_cached = 0


class RowCache:
    """The two caches of drawn rows and their counters."""

    def __init__(self) -> None:
        self.stats = RenderStats()
        self._cells: LRUCache[CellKey, list[Segment]] = LRUCache(CELLS)
        self._strips: LRUCache[tuple[Any, ...], tuple[Strip, Strip]] = LRUCache(STRIP_ROWS)

    def cell(self, key: CellKey) -> list[Segment] | None:
        return self._cells.get(key)

    def keep_cell(self, key: CellKey, segments: list[Segment]) -> None:
        self._cells.set(key, segments)

    def count_row(self, cells_rendered: int) -> None:
        """A row's cells were gathered, CELLS_RENDERED of them rendered by Rich."""
        self.stats.cells_rendered += cells_rendered
        if cells_rendered:
            self.stats.rendered += 1
        else:
            self.stats.cells_cached += 1

    def strips(self, key: tuple[Any, ...]) -> tuple[Strip, Strip] | None:
        strips = self._strips.get(key)
        if strips is None:
            self.stats.styled += 1
        else:
            self.stats.strips_cached += 1
        return strips

    def keep_strips(self, key: tuple[Any, ...], strips: tuple[Strip, Strip]) -> None:
        self._strips.set(key, strips)

    def forget_styles(self) -> None:
        """The styles changed (theme, focus): the strips go, the rendered cells stay."""
        self._strips.clear()

    def clear(self) -> None:
        self._cells.clear()
        self._strips.clear()
