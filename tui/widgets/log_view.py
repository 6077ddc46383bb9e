"""The Logs view's lines: one journal entry a line, time, unit and text, coloured by priority.

Entries arrive as :class:`~tui.host.logs.entry.LogLine` (already sanitised, escapes dropped)
and are drawn as ``rich.text.Text`` built from plain strings, never from markup. The widget keeps
the entries it shows (bounded) so that turning wrapping on or off draws them again.
"""

from __future__ import annotations

import time
import zlib
from collections import deque
from collections.abc import Iterable

from rich.text import Text
from textual.widgets import RichLog

from tui.host.logs.entry import LogLine, short_unit

MAX_SHOWN = 10_000
UNIT_WIDTH = 16
# Styles by priority (0 emerg … 7 debug); info and notice use the widget's own colour.
_PRIORITY_STYLES = {0: "bold red", 1: "bold red", 2: "bold red", 3: "red", 4: "yellow", 7: "dim"}
_UNIT_STYLES = ("cyan", "magenta", "blue", "green", "bright_cyan", "bright_magenta", "bright_blue")


def _unit_style(label: str) -> str:
    return _UNIT_STYLES[zlib.crc32(label.encode()) % len(_UNIT_STYLES)]


def render_line(line: LogLine, vm: str) -> Text:
    stamp = time.strftime("%m-%d %H:%M:%S", time.localtime(line.usec / 1e6)) if line.usec else "-"
    unit = short_unit(line.unit, vm) if line.unit else "-"
    if len(unit) > UNIT_WIDTH:
        unit = unit[: UNIT_WIDTH - 1] + "…"
    text = Text(no_wrap=False, end="")
    text.append(stamp, style="dim")
    text.append(" ")
    text.append(unit.ljust(UNIT_WIDTH), style=_unit_style(unit))
    text.append(" ")
    style = _PRIORITY_STYLES.get(line.priority, "dim italic" if line.from_manager else "")
    text.append(line.text, style=style)
    return text


class LogView(RichLog):
    """Journal lines for one VM; follows the end unless scrolled up."""

    DEFAULT_CSS = """
    LogView {
        height: 1fr;
        background: $surface;
        scrollbar-size-vertical: 1;
    }
    """

    def __init__(self, vm: str, *, id: str | None = None) -> None:
        super().__init__(max_lines=MAX_SHOWN, wrap=False, markup=False, highlight=False, id=id)
        self.vm = vm
        self.entries: deque[LogLine] = deque(maxlen=MAX_SHOWN)

    def show(self, lines: Iterable[LogLine]) -> None:
        """Replace what is shown."""
        self.entries.clear()
        self.clear()
        self.add(lines)

    def add(self, lines: Iterable[LogLine]) -> None:
        for line in lines:
            self.entries.append(line)
            self.write(render_line(line, self.vm), scroll_end=None)

    def set_wrap(self, wrap: bool) -> None:
        self.wrap = wrap
        kept = list(self.entries)
        self.show(kept)

    def plain_text(self, limit: int = 256 * 1024) -> str:
        """What is shown, as lines of plain text (for the clipboard), the newest LIMIT bytes."""
        out: list[str] = []
        size = 0
        for line in reversed(self.entries):
            plain = render_line(line, self.vm).plain
            size += len(plain) + 1
            if size > limit:
                break
            out.append(plain)
        return "\n".join(reversed(out))
