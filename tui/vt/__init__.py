"""VT100/xterm emulation for the serial-console widget: no Textual here (import-linter checks).

The guest on the other end of a serial console is untrusted and the TUI often runs as root, so
this package owns the parser instead of using ``pyte.ByteStream``:

* pyte's stream grows OSC strings without bound, draws DCS/APC/PM/SOS payloads as text, raises on
  CSI parameters longer than Python's int-digit limit and ignores ``ESC ( 0`` in UTF-8 mode;
* its ``Screen.draw`` is pure per-character Python (about 0.5 MB/s), which a kernel log flood
  outruns.

Modules: ``limits`` (every bound a guest meets), ``parser`` (:class:`TerminalParser`, an
incremental UTF-8 + ECMA-48 state machine, every buffer bounded and every number clamped),
``screen`` (:class:`TerminalScreen`, a ``pyte.Screen`` subclass with a fast ASCII draw path,
bounded scrollback of tuples of interned Chars and an alternate screen), ``rows`` (its row
store), ``sgr`` (the hardened SGR: graphic rendition as attribute changes),
``cells`` (rows as cells, cells as style runs: :func:`line_runs` strips control characters from
every cell; the widget renders only from it) and ``emulator`` (the two together). Nothing here
ever writes to a real terminal.

Floods of short lines (``seq 1 1000000``) cost per line feed, not per byte, so that path is
kept free of per-row work: the screen's rows are keyed by ``y + base`` (``rows.Rows``) so a
whole-screen scroll is O(1) instead of pyte's shift of every row; runs of plain lines ended by
CR LF are laid out in one go (``TerminalScreen.draw_lines``); and a renderer learns that the
screen scrolled from a counter (``scrolled``), dirty rows being tracked only until the whole
screen has scrolled since it last looked.
"""

from tui.vt.cells import DEFAULT_KEY, AttrKey, Cells, Run, Runs, line_cells, line_runs, wcwidth
from tui.vt.emulator import TerminalEmulator
from tui.vt.limits import BRACKETED_PASTE, DECCKM, DEFAULT_SCROLLBACK
from tui.vt.parser import TerminalParser
from tui.vt.screen import TerminalScreen

__all__ = [
    "BRACKETED_PASTE",
    "DECCKM",
    "DEFAULT_KEY",
    "DEFAULT_SCROLLBACK",
    "AttrKey",
    "Cells",
    "Run",
    "Runs",
    "TerminalEmulator",
    "TerminalParser",
    "TerminalScreen",
    "line_cells",
    "line_runs",
    "wcwidth",
]
