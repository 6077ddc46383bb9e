"""Rows of the emulated screen as cells, and cells as style runs of safe text (the renderer's
input). The one place guest text is sanitised before it can reach a Segment."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from itertools import groupby, repeat
from operator import itemgetter
from typing import Any

from pyte.screens import Char
from rich.cells import cell_len
from wcwidth import wcwidth as _wcwidth

from tui.host.text import sanitise

wcwidth: Callable[[str], int] = lru_cache(maxsize=4096)(_wcwidth)

# A line rendered to runs of (text, attributes) where attributes are the Char fields after
# ``data``: (fg, bg, bold, italics, underscore, strikethrough, reverse, blink).
AttrKey = tuple[Any, ...]
Run = tuple[str, AttrKey]
Runs = tuple[Run, ...]
Cells = tuple[Char, ...]

BLANK = Char(" ")
REVERSE_BLANK = BLANK._replace(reverse=True)
DEFAULT_KEY: AttrKey = tuple(BLANK)[1:]
_DATA = itemgetter(0)
_ATTRS = itemgetter(slice(1, None))


def line_cells(line: dict[int, Char] | None, columns: int) -> Cells:
    """Snapshot a pyte line as a tuple of Chars, without trailing default blanks.

    This is what scrollback stores: Chars are interned per attribute set by the draw path, so a
    line costs one pointer per cell, and making it is cheap enough for a flood (a conversion
    to style runs here would halve throughput; it is done lazily for visible lines only).
    """
    if not line:
        return ()
    default: Char = getattr(line, "default", BLANK)
    if default[1:] == DEFAULT_KEY:
        columns = min(columns, max(line) + 1)
    return tuple(map(line.get, range(columns), repeat(default, columns)))


def line_runs(cells: Sequence[Char], columns: int) -> Runs:
    """Convert cells to style runs whose text is safe and at most ``columns`` cells wide.

    Cell data is sanitized, and every cell is forced to the width pyte laid it out with (wcwidth
    and Rich can disagree; an orphaned wide-character stub must not shift the rest of the line),
    so the rendered strip never drifts out of the grid and a column maps to a cell.
    """
    cells = cells[:columns]
    columns = len(cells)
    joined = "".join(map(_DATA, cells))
    if len(joined) == columns and joined.isascii() and joined.isprintable():
        # Fast path: one printable ASCII character per cell.
        return tuple(("".join(map(_DATA, group)), key) for key, group in groupby(cells, _ATTRS))
    texts: list[str] = []
    covered = False  # the previous cell was a wide character covering this one
    for x, char in enumerate(cells):
        data = char.data
        if data == "":
            texts.append("" if covered else " ")
            covered = False
            continue
        covered = False
        # The one sanitiser: C0/C1/DEL and bidi controls become placeholders; a zero-width
        # one (a bidi control pyte attached to a cell) then makes the cell too wide and is cut
        # just below, so it never reaches the screen.
        data = sanitise(data)
        expected = 2 if x + 1 < columns and cells[x + 1].data == "" else 1
        width = cell_len(data)
        if width != expected:
            first = data[:1]
            if cell_len(first) == expected:
                data = first  # e.g. "❤\ufe0f": wcwidth says 1 cell, Rich says 2
            elif expected == 2:
                data = "? "
            else:
                data = "?"
        covered = expected == 2
        texts.append(data)
    runs: list[Run] = []
    x = 0
    for key, group in groupby(cells, _ATTRS):
        n = sum(1 for _ in group)
        runs.append(("".join(texts[x : x + n]), key))
        x += n
    return tuple(runs)
