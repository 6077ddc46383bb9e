"""The Logs view's lines: one journal entry a row (or several, wrapped), time, unit and text,
coloured by priority.

Entries arrive as :class:`~tui.host.logs.entry.LogLine` (already sanitised, escapes dropped)
and are drawn as segments of plain strings, never markup. Only the rows on screen are drawn
(Textual's line API: ``render_line``), so showing 500 or 10,000 entries costs the same: a
``RichLog`` rendered every line it was given up front (2.5 s for the first 500 of a big journal).
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Iterable

from rich.cells import cell_len, chop_cells
from rich.segment import Segment
from rich.style import Style
from textual.geometry import Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.host.logs.entry import LogLine, short_unit

MAX_SHOWN = 10_000
UNIT_WIDTH = 16
PREFIX_WIDTH = len("MM-DD HH:MM:SS") + 1 + UNIT_WIDTH + 1
# Styles by priority (0 emerg … 7 debug); info and notice use the widget's own colour.
_PRIORITY_STYLES = {
    0: Style(color="red", bold=True),
    1: Style(color="red", bold=True),
    2: Style(color="red", bold=True),
    3: Style(color="red"),
    4: Style(color="yellow"),
    7: Style(dim=True),
}
_MANAGER_STYLE = Style(dim=True, italic=True)
_STAMP_STYLE = Style(dim=True)
_UNIT_STYLES = tuple(
    Style(color=c)
    for c in ("cyan", "magenta", "blue", "green", "bright_cyan", "bright_magenta", "bright_blue")
)


def _unit_style(label: str) -> Style:
    return _UNIT_STYLES[zlib.crc32(label.encode()) % len(_UNIT_STYLES)]


def _stamp(line: LogLine) -> str:
    if not line.usec:
        return "-".ljust(14)
    return time.strftime("%m-%d %H:%M:%S", time.localtime(line.usec / 1e6))


def _unit_label(line: LogLine, vm: str) -> str:
    unit = short_unit(line.unit, vm) if line.unit else "-"
    return unit if len(unit) <= UNIT_WIDTH else unit[: UNIT_WIDTH - 1] + "…"


def text_style(line: LogLine) -> Style | None:
    return _PRIORITY_STYLES.get(line.priority, _MANAGER_STYLE if line.from_manager else None)


def plain_row(line: LogLine, vm: str) -> str:
    """One entry as a line of plain text (the clipboard's form)."""
    return f"{_stamp(line)} {_unit_label(line, vm).ljust(UNIT_WIDTH)} {line.text}"


class LogView(ScrollView, can_focus=True):
    """Journal lines for one VM; keeps to the end while it is scrolled to the end."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, vm: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.vm = vm
        self.entries: deque[LogLine] = deque(maxlen=MAX_SHOWN)
        self.wrap = False
        # Wrapped: (entry index, chunk of its text) per row; unwrapped: one row per entry.
        self._rows: list[tuple[int, int]] = []
        self._chunks: dict[int, list[str]] = {}
        self._wrap_width = 0
        self._widest = 0

    # --- content ----------------------------------------------------------------------------

    def show(self, lines: Iterable[LogLine]) -> None:
        """Replace what is shown; the view goes to the end."""
        self.entries.clear()
        self._widest = 0
        self._append(lines)
        self._relayout(to_end=True)

    def add(self, lines: Iterable[LogLine]) -> None:
        """New entries at the end; followed when the view was at the end."""
        at_end = self.scroll_offset.y >= self.max_scroll_y
        dropped = self._append(lines)
        self._relayout(to_end=at_end, dropped=dropped)

    def _append(self, lines: Iterable[LogLine]) -> int:
        dropped = 0
        for line in lines:
            if len(self.entries) == self.entries.maxlen:
                dropped += 1
            self.entries.append(line)
            self._widest = max(self._widest, PREFIX_WIDTH + cell_len(line.text))
        return dropped

    def set_wrap(self, wrap: bool) -> None:
        self.wrap = wrap
        self._relayout(to_end=self.scroll_offset.y >= self.max_scroll_y)

    def _relayout(self, to_end: bool, dropped: int = 0) -> None:
        width = max(self.scrollable_content_region.width, PREFIX_WIDTH + 10)
        if self.wrap:
            room = width - PREFIX_WIDTH
            self._wrap_width = room
            self._chunks = {}
            self._rows = []
            for index, line in enumerate(self.entries):
                chunks = chop_cells(line.text, room) if cell_len(line.text) > room else [line.text]
                self._chunks[index] = chunks or [""]
                self._rows += [(index, n) for n in range(len(self._chunks[index]))]
            self.virtual_size = Size(width, len(self._rows))
        else:
            self._rows = []
            self.virtual_size = Size(self._widest, len(self.entries))
        if to_end:
            self.scroll_end(animate=False, immediate=True, x_axis=False)
            # Before the first layout (the view just opened) there is nothing to scroll yet:
            # once more when the new size is known.
            self.call_after_refresh(self.scroll_end, animate=False, x_axis=False)
        elif dropped:
            self.scroll_to(y=max(self.scroll_offset.y - dropped, 0), animate=False, immediate=True)
        self.refresh()

    def on_resize(self) -> None:
        if self.wrap and self.scrollable_content_region.width - PREFIX_WIDTH != self._wrap_width:
            self._relayout(to_end=self.scroll_offset.y >= self.max_scroll_y)

    # --- drawing ----------------------------------------------------------------------------

    def render_line(self, y: int) -> Strip:
        row = y + self.scroll_offset.y
        width = self.scrollable_content_region.width
        base = self.rich_style
        if self.wrap:
            if row >= len(self._rows):
                return Strip.blank(width, base)
            index, part = self._rows[row]
            line = self.entries[index]
            text = self._chunks[index][part]
            if part:
                segments = [Segment(" " * PREFIX_WIDTH), Segment(text, text_style(line))]
                return Strip(segments).apply_style(base).extend_cell_length(width, base)
        else:
            if row >= len(self.entries):
                return Strip.blank(width, base)
            line = self.entries[row]
            text = line.text
        label = _unit_label(line, self.vm)
        segments = [
            Segment(_stamp(line), _STAMP_STYLE),
            Segment(" "),
            Segment(label.ljust(UNIT_WIDTH), _unit_style(label)),
            Segment(" "),
            Segment(text, text_style(line)),
        ]
        strip = Strip(segments).apply_style(base)
        if not self.wrap:
            x = self.scroll_offset.x
            strip = strip.crop(x, x + width)
        return strip.extend_cell_length(width, base)

    def row_text(self, y: int) -> str:
        """The plain text of screen row Y (tests, and what a reader sees)."""
        return self.render_line(y).text

    def plain_text(self, limit: int = 256 * 1024) -> str:
        """What is shown, as lines of plain text (for the clipboard), the newest LIMIT bytes."""
        out: list[str] = []
        size = 0
        for line in reversed(self.entries):
            plain = plain_row(line, self.vm)
            size += len(plain) + 1
            if size > limit:
                break
            out.append(plain)
        return "\n".join(reversed(out))
