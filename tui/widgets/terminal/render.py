"""Turn emulator lines (style runs) into Textual strips, and into text for search and copy.

Everything that reaches a Segment went through :func:`tui.vt.line_runs`, which
sanitizes cell data; :func:`safe_text` is for the few strings that did not (status, title).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache

from rich.cells import cell_len
from rich.color import Color
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tui.host.text import sanitise
from tui.vt import AttrKey, Runs

_NAMED = {
    "black": 0,
    "red": 1,
    "green": 2,
    "brown": 3,
    "blue": 4,
    "magenta": 5,
    "cyan": 6,
    "white": 7,
}
_NAMED.update({f"bright{name}": n + 8 for name, n in list(_NAMED.items())})
_NAMED["bfightmagenta"] = 13  # sic: pyte's own table has this typo


@lru_cache(maxsize=1024)
def colour(value: str) -> Color | None:
    """``"default"`` / palette index / ``"rrggbb"`` (see TerminalScreen.sgr) -> Rich colour."""
    if value == "default":
        return None
    if value.isdigit() and len(value) <= 3:
        index = int(value)
        return Color.from_ansi(index) if index < 256 else None
    if len(value) == 6:
        try:
            return Color.from_rgb(int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16))
        except ValueError:
            return None
    index = _NAMED.get(value)
    return None if index is None else Color.from_ansi(index)


@lru_cache(maxsize=4096)
def attr_style(key: AttrKey) -> Style:
    """Rich style for a cell's attributes; cached because a screen uses only a few."""
    fg, bg, bold, italics, underscore, strikethrough, reverse, _blink = key
    return Style(
        color=colour(fg),
        bgcolor=colour(bg),
        bold=bold or None,
        italic=italics or None,
        underline=underscore or None,
        strike=strikethrough or None,
        reverse=reverse or None,
    )


@lru_cache(maxsize=4096)
def cell_style(base: Style, key: AttrKey) -> Style:
    """``base`` (the widget's colours) underneath the cell's own style."""
    return base + attr_style(key)


def runs_to_strip(runs: Runs, width: int, base: Style) -> Strip:
    """A strip exactly ``width`` cells wide.

    Runs of ASCII text (sanitised by :func:`~tui.vt.line_runs`: printable, one cell per
    character) are measured by their length, sparing Rich's per-segment cell measuring during
    a flood; the padding is what ``Strip.adjust_cell_length`` would add."""
    segments = [Segment(text, cell_style(base, key)) for text, key in runs if text]
    cells = 0
    for text, _key in runs:
        if not text.isascii():
            return Strip(segments).adjust_cell_length(width, base)
        cells += len(text)
    if cells > width:
        return Strip(segments, cells).adjust_cell_length(width, base)
    if cells < width:
        segments.append(Segment(" " * (width - cells), base))
    return Strip(segments, width)


def restyle(strip: Strip, start: int, end: int, transform: Callable[[Style], Style]) -> Strip:
    """Apply ``transform`` to the styles of cells ``start``..``end`` (exclusive)."""
    start = max(0, start)
    end = min(end, strip.cell_length)
    if start >= end:
        return strip
    left, middle, right = strip.divide([start, end, strip.cell_length])
    middle = Strip(
        [
            Segment(text, transform(style or Style.null()), control)
            for text, style, control in middle
        ],
        middle.cell_length,
    )
    return Strip.join([left, middle, right])


def invert(style: Style) -> Style:
    """Block cursor: swap the cell's colours, whatever its own reverse flag."""
    return style + Style(reverse=not style.reverse)


def highlight(overlay: Style) -> Callable[[Style], Style]:
    """Selection / search match: the overlay's colours win, even on reversed cells."""
    overlay = overlay + Style(reverse=False)
    return lambda style: style + overlay


def run_cells(runs: Runs) -> list[str]:
    """One string per column: a wide character then ``""`` for the column it covers."""
    cells: list[str] = []
    for text, _key in runs:
        if text.isascii():
            cells.extend(text)
            continue
        for char in text:
            width = cell_len(char)
            if width == 0 and cells:
                cells[-1] += char
            elif width == 2:
                cells.extend((char, ""))
            else:
                cells.append(char)
    return cells


def safe_text(text: str, limit: int = 512) -> str:
    """Owner- or guest-supplied text shown in chrome (status, title): no controls, bounded."""
    return sanitise(text, limit)
