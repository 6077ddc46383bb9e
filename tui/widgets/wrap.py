"""Wrapping for paths and unit names: break after `/`, `@`, `-` or a space, never inside a
word unless the word alone is wider than the room (then it is folded).

Rich folds a word without spaces at the column's edge (`/var/tmp/microv` `m-tui-lab/micro`),
which is how `microvm@web.service` became `microvm@web.serv` + `ice` at 80 columns.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.text import Text

_TOKEN = re.compile(r"[^/@\- ]+[/@\- ]*|[/@\- ]+")


def break_offsets(plain: str, width: int) -> list[int]:
    """Where to cut PLAIN into lines of at most WIDTH characters (offsets, ascending)."""
    width = max(width, 1)
    cuts: list[int] = []
    line_start = 0
    for match in _TOKEN.finditer(plain):
        start, end = match.span()
        if end - line_start <= width:
            continue
        if start > line_start:  # the token goes to the next line
            cuts.append(start)
            line_start = start
        while end - line_start > width:  # a token wider than the room: folded
            line_start += width
            cuts.append(line_start)
    return cuts


def wrap_at_breaks(text: Text, width: int) -> list[Text]:
    """TEXT as lines of at most WIDTH cells, cut at break characters where possible."""
    if text.cell_len <= width:
        return [text]
    lines = list(text.divide(break_offsets(text.plain, width)))
    for line in lines:
        line.rstrip()
    return lines


@dataclass(frozen=True)
class PathCell:
    """A table cell holding a path or unit name: wraps at its break characters."""

    text: Text

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        longest = max((len(m.group()) for m in _TOKEN.finditer(self.text.plain)), default=0)
        full = self.text.cell_len
        return Measurement(min(longest, full), full).clamp(max_width=options.max_width)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in wrap_at_breaks(self.text, options.max_width):
            line.end = "\n"
            yield line
