"""Columns and their widths.

A column is as wide as its label or its widest cell, whichever is wider (plus the padding on
each side). Widths follow what Textual's DataTable did, so the table looks the same: a wider
cell widens its column at once; a narrower one makes the column fit its widest remaining cell;
removing a row leaves the widths as they are (no column jumps narrower while rows come and go).
A column may have a floor (``min_width``: a figure's usual widest value, so "9.9%" -> "10.2%"
does not widen it) and may be sticky (``replace_cell(..., shrink=False)``: a narrower cell
leaves the width be, until ``fit`` is asked for).
Cell widths are counted per width, so finding the widest cell does not walk every row.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from rich.text import Text


@dataclass(eq=False)
class Column:
    """One column: its key, header label and content width (cells, without padding)."""

    key: str
    label: Text
    content_width: int = 0
    min_width: int = 0  # the content width's floor
    # How many cells of the column have each width (cell widths, not rows).
    widths: Counter[int] = field(default_factory=Counter)

    def render_width(self, padding: int) -> int:
        """The column's width on screen, padding on both sides included."""
        return self.content_width + 2 * padding

    @property
    def label_width(self) -> int:
        return self.label.cell_len

    def fit_label(self) -> bool:
        """Widen for the label; True when the width changed."""
        floor = max(self.label_width, self.min_width)
        if floor > self.content_width:
            self.content_width = floor
            return True
        return False

    def fit(self) -> bool:
        """As wide as the label, the floor or the widest cell; True when the width changed."""
        before = self.content_width
        self.content_width = max([self.label_width, self.min_width, *self.widths])
        return self.content_width != before

    def add_cell(self, width: int) -> bool:
        """A cell of WIDTH came in (a new row); True when the column widened."""
        self.widths[width] += 1
        if width > self.content_width:
            self.content_width = width
            return True
        return False

    def remove_cell(self, width: int) -> None:
        """A cell of WIDTH left (a row removed): counted, the width stays."""
        self.widths[width] -= 1
        if self.widths[width] <= 0:
            del self.widths[width]

    def replace_cell(self, old: int, new: int, resize: bool = True, shrink: bool = True) -> bool:
        """A cell of width OLD became NEW; True when the column's width changed (RESIZE False:
        it keeps its width; SHRINK False: it only widens)."""
        self.remove_cell(old)
        self.widths[new] += 1
        before = self.content_width
        if not resize:
            return False
        if new >= before:
            self.content_width = new
            return new != before
        if not shrink:
            return False
        return self.fit()  # narrower: fit the widest cell left
