"""Where the terminal's view stands in the scrollback, in absolute line numbers.

An absolute line number counts every line ever pushed into history, so it names the same text
while output continues and old history is evicted: the live screen's row ``y`` is line
``history_total + y``; a view scrolled back by ``scroll`` lines starts at ``history_total -
scroll``. Search matches and the selection are kept in these numbers.
"""

from __future__ import annotations

from tui.vt import Runs, TerminalEmulator, line_cells, line_runs
from tui.widgets.terminal.selection import Cell


class Viewport:
    """The scrollback offset of the view (0 = live) over an emulator's screen."""

    def __init__(self, emulator: TerminalEmulator) -> None:
        self._emulator = emulator
        self.scroll = 0  # lines scrolled back into history

    @property
    def history(self) -> int:
        """Lines of scrollback kept."""
        return len(self._emulator.screen.history)

    @property
    def top(self) -> int:
        """Absolute line number of the view's first row."""
        return self._emulator.screen.history_total - self.scroll

    @property
    def oldest(self) -> int:
        """Absolute line number of the oldest line kept."""
        return self._emulator.screen.history_total - self.history

    @property
    def bottom(self) -> int:
        """Absolute line number of the live screen's last row."""
        screen = self._emulator.screen
        return screen.history_total + screen.lines - 1

    def scroll_by(self, lines: int) -> bool:
        """Back (positive) or forward (negative), within the history; True if it moved."""
        scroll = max(0, min(self.history, self.scroll + lines))
        moved = scroll != self.scroll
        self.scroll = scroll
        return moved

    def clamp(self) -> None:
        """Stay inside the history (after a resize shortened it)."""
        self.scroll = min(self.scroll, self.history)

    def reveal(self, line: int) -> None:
        """Scroll so that an absolute line is on screen (centred if it was not)."""
        rows = self._emulator.screen.lines
        top = self.top
        if top <= line < top + rows:
            return
        total = self._emulator.screen.history_total
        self.scroll = max(0, min(self.history, total + rows // 2 - line))

    def cell_at(self, x: int, y: int) -> Cell | None:
        """The cell under view position (x, y), clamped into the screen."""
        screen = self._emulator.screen
        if screen.lines <= 0:
            return None
        x = max(0, min(screen.columns - 1, x))
        y = max(0, min(screen.lines - 1, y))
        return self.top + y, x

    def cursor_column(self, line: int) -> int:
        """The guest cursor's column if it is visible on an absolute line, else -1."""
        screen = self._emulator.screen
        if screen.cursor.hidden or line != screen.history_total + screen.cursor.y:
            return -1
        return min(screen.cursor.x, screen.columns - 1)

    def runs_for(self, line: int) -> Runs:
        """Style runs of an absolute line (history or live screen); () once evicted."""
        screen = self._emulator.screen
        total = screen.history_total
        if line >= total:
            row = screen.buffer.get(line - total)
            return line_runs(line_cells(row, screen.columns), screen.columns) if row else ()
        index = line - (total - len(screen.history))
        if index < 0:
            return ()
        return line_runs(screen.history[index], screen.columns)
