"""The terminal pane's mouse: the wheel scrolls the history; a drag with the left button
selects cells (scrolling when it leaves the screen) and copies their text to the admin's
clipboard on release; a plain click clears the selection."""

from __future__ import annotations

from textual import events

from tui.widgets.terminal.selection import Cell, Selection
from tui.widgets.terminal.viewport import Viewport

WHEEL_LINES = 3


class TerminalMouse:
    """Mixin for TerminalWidget: its mouse handlers and the selection's text (on the widget's
    selection, viewport, ``scroll_history`` and notice)."""

    _selection: Selection
    _view: Viewport

    def selected_text(self) -> str:
        """Characters of the selected cells, lines joined with newlines."""
        return self._selection.text(self._view.runs_for, self.columns)

    def clear_selection(self) -> None:
        if self._selection.active:
            self._selection.clear()
            self.refresh()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.scroll_history(WHEEL_LINES)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.scroll_history(-WHEEL_LINES)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if event.button != 1:
            return
        event.stop()
        cell = self._cell_at(event)
        if cell is None:
            return
        self._selection.start(cell)
        self.capture_mouse()
        self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if not self._selection.dragging:
            return
        offset = event.get_content_offset_capture(self)
        if offset.y < 0:
            self.scroll_history(1)
        elif offset.y >= self.rows:
            self.scroll_history(-1)
        cell = self._cell_at(event)
        if cell is not None and cell != self._selection.head:
            self._selection.head = cell
            self.refresh()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if not self._selection.dragging:
            return
        event.stop()
        self._selection.dragging = False
        self.release_mouse()
        cell = self._cell_at(event)
        if cell is not None:
            self._selection.head = cell
        if self._selection.anchor == self._selection.head:
            self.clear_selection()  # a plain click
            return
        text = self.selected_text()
        if text:
            # OSC 52 to the admin's terminal, written by Textual's driver (base64, trusted).
            self.app.copy_to_clipboard(text)
            self._show_notice(f"copied {len(text)} characters")
        self.refresh()

    def _cell_at(self, event: events.MouseEvent) -> Cell | None:
        offset = event.get_content_offset_capture(self)
        return self._view.cell_at(offset.x, offset.y)
