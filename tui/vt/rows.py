"""The screen's row store: rows by row number, scrolled up in O(1) (see the package's
docstring: floods of short lines cost per line feed)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator
from typing import Any


class Rows:
    """The screen's rows by row number ``y``, as pyte's ``Screen.buffer`` (a defaultdict) is,
    but stored under ``y + base`` so that scrolling the whole screen up one line is O(1):
    drop the top row and increment ``base`` (pyte shifts every row, a cost per line feed that
    dominated floods of short lines).

    Missing rows are created on ``rows[y]`` like a defaultdict; ``get``, ``in`` and iteration
    see only the rows that exist. Iteration yields row numbers in no particular order.
    """

    __slots__ = ("base", "lines")

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.lines: defaultdict[int, Any] = defaultdict(factory)
        self.base = 0

    def scroll(self) -> Any:
        """Scroll up one line: the top row's line (None if it had none) leaves the screen."""
        line = self.lines.pop(self.base, None)
        self.base += 1
        return line

    def prune(self, count: int) -> None:
        """Drop rows outside ``0..count-1`` (none exist unless a bug made one: a row left
        behind below ``base`` would never be reused, and one per scroll would grow forever)."""
        base = self.base
        for key in [key for key in self.lines if not base <= key < base + count]:
            del self.lines[key]

    def __getitem__(self, y: int) -> Any:
        return self.lines[y + self.base]

    def __setitem__(self, y: int, line: Any) -> None:
        self.lines[y + self.base] = line

    def __delitem__(self, y: int) -> None:
        del self.lines[y + self.base]

    def __contains__(self, y: object) -> bool:
        return isinstance(y, int) and y + self.base in self.lines

    def __iter__(self) -> Iterator[int]:
        base = self.base
        return iter([key - base for key in self.lines])

    def __len__(self) -> int:
        return len(self.lines)

    def get(self, y: int, default: Any = None) -> Any:
        return self.lines.get(y + self.base, default)

    def pop(self, y: int, *default: Any) -> Any:
        return self.lines.pop(y + self.base, *default)

    def keys(self) -> list[int]:
        return list(self)

    def values(self) -> list[Any]:
        return list(self.lines.values())

    def items(self) -> list[tuple[int, Any]]:
        base = self.base
        return [(key - base, line) for key, line in self.lines.items()]

    def clear(self) -> None:
        self.lines.clear()
        self.base = 0

    def update(self, rows: dict[int, Any]) -> None:
        base = self.base
        self.lines.update((y + base, line) for y, line in rows.items())
