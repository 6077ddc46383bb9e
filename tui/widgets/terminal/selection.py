"""The mouse selection over the terminal's grid: from where the button went down (the anchor)
to where the mouse is now (the head), in absolute lines so it stays on its text while the
view scrolls."""

from __future__ import annotations

from collections.abc import Callable

from tui.vt import Runs
from tui.widgets.terminal.render import run_cells

Cell = tuple[int, int]  # (absolute line number, column)


class Selection:
    """Anchor and head of a selection; empty when they are the same cell."""

    def __init__(self) -> None:
        self.anchor: Cell | None = None
        self.head: Cell | None = None
        self.dragging = False  # the button is down: moves extend the selection

    @property
    def active(self) -> bool:
        return self.anchor is not None

    def start(self, cell: Cell) -> None:
        self.anchor = self.head = cell
        self.dragging = True

    def clear(self) -> None:
        self.anchor = self.head = None

    def bounds(self) -> tuple[Cell, Cell] | None:
        if self.anchor is None or self.head is None or self.anchor == self.head:
            return None
        return min(self.anchor, self.head), max(self.anchor, self.head)

    def span(self, line: int, columns: int) -> tuple[int, int] | None:
        """Columns [start, end) selected on an absolute line, or None."""
        bounds = self.bounds()
        if bounds is None:
            return None
        (first, start), (last, end) = bounds
        if not first <= line <= last:
            return None
        return (start if line == first else 0, end + 1 if line == last else columns)

    def text(self, runs_for: Callable[[int], Runs], columns: int) -> str:
        """Characters of the selected cells, lines joined with newlines."""
        bounds = self.bounds()
        if bounds is None:
            return ""
        (first, _), (last, _) = bounds
        lines = []
        for line in range(first, last + 1):
            span = self.span(line, columns)
            if span is None:
                continue
            cells = run_cells(runs_for(line))
            lines.append("".join(cells[span[0] : span[1]]).rstrip())
        return "\n".join(lines)
