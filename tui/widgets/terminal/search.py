"""Case-insensitive search of the scrollback, walking back from a match to older ones.

Works on cell lists (one string per column, ``""`` for a wide character's stub), so a match
is reported in columns, ready to highlight.
"""

from __future__ import annotations

from collections.abc import Callable

from tui.vt import Runs
from tui.widgets.terminal.render import run_cells
from tui.widgets.terminal.viewport import Viewport

Match = tuple[int, int, int]  # (absolute line, start column, end column)


class ScrollbackSearch:
    """The text searched for and its current match (highlighted until dropped)."""

    def __init__(self) -> None:
        self.match: Match | None = None
        self._text = ""

    def span(self, line: int) -> tuple[int, int] | None:
        """Columns [start, end) of the match on an absolute line, or None."""
        match = self.match
        return match[1:] if match and match[0] == line else None

    def step(self, text: str, view: Viewport) -> bool:
        """Move the match to the previous occurrence of ``text`` (the same text again walks
        further back) and scroll it into view. False, keeping the match, when there is none."""
        if self.match is not None and text == self._text:
            line, limit = self.match[0], self.match[1]
        else:
            line, limit = view.bottom, None
        self._text = text
        match = find_previous(view.runs_for, text, line, limit, view.oldest)
        if match is None:
            return False
        self.match = match
        view.reveal(match[0])
        return True


def find_previous(
    runs_for: Callable[[int], Runs], text: str, line: int, limit: int | None, oldest: int
) -> Match | None:
    """The last match of ``text`` at or above ``line`` (before column ``limit`` on that line),
    looking no further back than the ``oldest`` line kept."""
    while line >= oldest:
        span = find_last(run_cells(runs_for(line)), text, limit)
        if span is not None:
            return (line, *span)
        line -= 1
        limit = None
    return None


def find_last(cells: list[str], text: str, limit: int | None) -> tuple[int, int] | None:
    """Columns [start, end) of the last match of ``text`` starting before column ``limit``."""
    haystack = "".join(cells)
    if not haystack:
        return None
    column_of: list[int] = []  # haystack index -> column (a wide char's stub has no index)
    first_index: list[int] = []  # column -> first haystack index at or after it
    for column, cell in enumerate(cells):
        first_index.append(len(column_of))
        column_of.extend([column] * len(cell))
    folded, needle = haystack.lower(), text.lower()
    if len(folded) != len(haystack) or len(needle) != len(text):
        folded, needle = haystack, text  # case folding changed lengths: match exactly
    end = len(folded)
    if limit is not None and limit < len(first_index):
        end = first_index[limit] - 1 + len(needle)  # the match must start before the limit
    index = folded.rfind(needle, 0, end)
    if index < 0:
        return None
    start_column = column_of[index]
    end_column = column_of[index + len(needle) - 1] + 1
    while end_column < len(cells) and cells[end_column] == "":
        end_column += 1  # include the stub of a wide character
    return start_column, end_column
