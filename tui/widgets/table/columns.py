"""Columns and their widths.

A column is as wide as its label or its widest cell, whichever is wider (plus the padding on
each side). Widths follow what Textual's DataTable did, so the table looks the same: a wider
cell widens its column at once; a narrower one makes the column fit its widest remaining cell;
removing a row leaves the widths as they are (no column jumps narrower while rows come and go).
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
        if self.label_width > self.content_width:
            self.content_width = self.label_width
            return True
        return False

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

    def replace_cell(self, old: int, new: int, resize: bool = True) -> bool:
        """A cell of width OLD became NEW; True when the column's width changed (RESIZE False:
        it keeps its width)."""
        self.remove_cell(old)
        self.widths[new] += 1
        before = self.content_width
        if not resize:
            return False
        if new >= before:
            self.content_width = new
        else:  # narrower: fit the widest cell left
            self.content_width = max([self.label_width, *self.widths])
        return self.content_width != before
