"""The table's mouse: hover a row or the header, click a row (a second click selects it),
click a column's label (HeaderSelected). Rows and columns are found from the pointer's offset."""

from __future__ import annotations

from typing import Any

from textual import events
from textual.geometry import Region

from tui.widgets.table import paint
from tui.widgets.table.paint import HEADER_HEIGHT


class TableMouse:
    """Mixin for RowTable: its mouse handlers (on the table's rows, columns and cursor)."""

    _show_hover: bool
    _hover_row: int
    _rows: dict[str, Any]
    _cursor: int
    show_cursor: bool

    def _row_at(self, event: events.MouseEvent) -> int | None:
        """The row under the mouse: an index, ``paint.HEADER``, or None (no row there)."""
        offset = event.get_content_offset(self)
        if offset is None:
            return None
        if offset.y < HEADER_HEIGHT:
            return paint.HEADER
        index = offset.y - HEADER_HEIGHT + int(self.scroll_y)
        return index if index < len(self._rows) else None

    def _column_at(self, x: int) -> int | None:
        widths = self._render_widths()
        fixed = self.fixed_columns
        left = sum(widths[:fixed])
        if x >= left:  # the scrolling columns are drawn from scroll_x on
            x += int(self.scroll_x)
        edge = 0
        for index, width in enumerate(widths):
            edge += width
            if x < edge:
                return index
        return None

    def _set_hover(self, shown: bool, row: int | None = None) -> None:
        old = (self._show_hover, self._hover_row)
        self._show_hover = shown
        if row is not None:
            self._hover_row = row
        if old != (self._show_hover, self._hover_row):
            for index in {old[1], self._hover_row}:
                if index == paint.HEADER:
                    self.refresh(Region(0, 0, self.size.width, HEADER_HEIGHT))
                else:
                    self.refresh_row(index)

    def on_mouse_move(self, event: events.MouseMove) -> None:
        row = self._row_at(event)
        self._set_hover(row is not None, row)

    def on_leave(self, event: events.Leave) -> None:
        self._set_hover(False)

    def on_click(self, event: events.Click) -> None:
        row = self._row_at(event)
        if row is None:
            return
        self._set_hover(True, row)
        offset = event.get_content_offset(self)
        if row == paint.HEADER:
            column = self._column_at(offset.x) if offset is not None else None
            if column is not None:
                key = list(self.columns)[column]
                label = self.columns[key].label
                self.post_message(self.HeaderSelected(self, key, column, label))
            return
        if not self.show_cursor:
            return
        again = row == self._cursor
        self.move_cursor(row=row, animate=True)
        key = self.row_key_at(row)
        if again and key is not None:
            self.post_message(self.RowSelected(self, row, key))
        event.stop()
