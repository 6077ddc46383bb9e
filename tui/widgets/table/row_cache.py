"""What a row costs to draw, kept: its cells rendered by Rich, and its styled strip.

Two levels, each a bounded LRU cache (``textual.cache.LRUCache``):

- cells: (row key, content version, column widths) -> each cell's segments, unstyled. This is
  the Rich rendering (the costly part); it depends on nothing but the row's content and the
  widths, so a sort, a cursor move, a theme or focus change never renders a cell again.
- strips: the cells' key + (zebra parity, cursor, hover, styles generation, widget width) -> the
  row's styled strips (the fixed columns and the scrolling ones). A sort serves most visible
  rows from here; the rest are styled again from the cells.

``RenderStats`` counts both, for tests and benches.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.segment import Segment
from textual.cache import LRUCache
from textual.strip import Strip

CELL_ROWS = 4096  # rows whose rendered cells are kept (a big host's rows, twice over)
STRIP_ROWS = 1024  # styled rows kept (several screenfuls, in both zebra parities)

CellsKey = tuple[str, int, tuple[int, ...]]
Cells = list[list[Segment]]


@dataclass
class RenderStats:
    """Counters of row drawing, from the table's start (or the last ``reset``)."""

    rendered: int = 0  # rows whose cells Rich rendered
    cells_cached: int = 0  # rows whose cells came from the cache
    styled: int = 0  # rows styled into strips
    strips_cached: int = 0  # rows whose strips came from the cache

    def reset(self) -> None:
        self.rendered = self.cells_cached = self.styled = self.strips_cached = 0


class RowCache:
    """The two caches of drawn rows and their counters."""

    def __init__(self) -> None:
        self.stats = RenderStats()
        self._cells: LRUCache[CellsKey, Cells] = LRUCache(CELL_ROWS)
        self._strips: LRUCache[tuple[Any, ...], tuple[Strip, Strip]] = LRUCache(STRIP_ROWS)

    def cells(self, key: CellsKey) -> Cells | None:
        cells = self._cells.get(key)
        if cells is None:
            self.stats.rendered += 1
        else:
            self.stats.cells_cached += 1
        return cells

    def keep_cells(self, key: CellsKey, cells: Cells) -> None:
        self._cells.set(key, cells)

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
