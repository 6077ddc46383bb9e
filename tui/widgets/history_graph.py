"""A small multi-row bar graph of a series (newest on the right), drawn with block characters.

Gaps (``None``: the value could not be read at that poll) are drawn as a dim dot on the base
line, so a missing reading never looks like a zero.

Drawn through Textual's line API: each row is a few segments (one per run of equal style),
built once per change of the data or the size. A ``Text`` with one span per cell, as this
used to render, cost Textual ~40 ms a poll to turn into strips (History tab: 8.3% of a core
against 2.8% for the Overview).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import groupby

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip
from textual.widget import Widget

from tui.widgets.format import BLOCKS
from tui.widgets.kept_styles import KeptStyles
from tui.widgets.levels import level_classes, level_css, level_style

PREFIX = "history-graph"
FULL = "█"
AXIS = 8  # the label column's width


class HistoryGraph(KeptStyles, Widget):
    DEFAULT_CSS = """
    HistoryGraph {
        height: 5;
        width: 1fr;
    }
    """ + level_css("HistoryGraph", PREFIX)
    COMPONENT_CLASSES = level_classes(PREFIX)

    def __init__(self, label_fn: Callable[[float], str] | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.label_fn = label_fn or (lambda v: f"{v:.0f}")
        self.values: tuple[float | None, ...] = ()
        self.top = 100.0
        self._strips: list[Strip] | None = None
        self._built_for: tuple[int, int] = (-1, -1)

    def set_data(self, values: Sequence[float | None], top: float) -> None:
        values, top = tuple(values), max(top, 1e-9)
        if values == self.values and top == self.top:
            return  # unchanged: no repaint
        self.values, self.top = values, top
        self._strips = None
        self.refresh()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._strips = None  # the theme's colours are in the strips

    def render_line(self, y: int) -> Strip:
        width, height = self.size
        if self._strips is None or self._built_for != (width, height):
            self._strips = self.rows(width, height)
            self._built_for = (width, height)
        if y >= len(self._strips):
            return Strip.blank(width, self.rich_style)
        return self._strips[y]

    def rows(self, width: int, height: int) -> list[Strip]:
        """The graph as HEIGHT strips of WIDTH cells."""
        cols = max(1, width - AXIS)
        values = self.values[-cols:]
        pad = cols - len(values)
        style = level_style(self, PREFIX, "accent")
        muted = level_style(self, PREFIX, "muted")
        # Per column: how many eighths of the graph's height the bar fills (None: a gap).
        eighths = [
            None if v is None else round(max(0.0, min(1.0, v / self.top)) * height * 8)
            for v in values
        ]
        base = self.rich_style
        out = []
        for r in range(height):  # r = 0 is the top row
            level = height - 1 - r
            label = (
                self.label_fn(self.top) if r == 0 else self.label_fn(0) if r == height - 1 else ""
            )
            cells: list[tuple[str, Style]] = [(f"{label:>{AXIS - 1}} ", muted)]
            cells.append((" " * pad, style))
            for e in eighths:
                cells.append(_cell(e, level, style, muted))
            segments = [
                Segment("".join(text for text, _ in run), run_style)
                for run_style, run in ((s, list(g)) for s, g in groupby(cells, key=lambda c: c[1]))
            ]
            out.append(Strip(segments).adjust_cell_length(width).apply_style(base))
        return out


def _cell(eighths: int | None, level: int, style: Style, muted: Style) -> tuple[str, Style]:
    """One column's character at LEVEL rows above the base line."""
    if eighths is None:
        return ("·" if level == 0 else " ", muted)
    full, part = divmod(eighths, 8)
    if level < full:
        return (FULL, style)
    if level == full and part:
        return (BLOCKS[part - 1], style)
    if level == 0 and eighths == 0:
        return ("▁", muted)  # a true zero: a thin base line
    return (" ", style)
