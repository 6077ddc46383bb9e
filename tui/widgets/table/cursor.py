"""The table's row cursor and its keys: move it (up, down, a page, top, bottom), keep it on
screen, select its row with enter, and tell the screen when it is on another row
(RowHighlighted). The cursor is a row index into the table's order of keys."""

from __future__ import annotations

from typing import Any

from textual.binding import Binding, BindingType
from textual.geometry import Region, Spacing

from tui.widgets.table.paint import HEADER_HEIGHT

# Textual reads BINDINGS only from DOM classes (not this mixin): RowTable takes these as its own.
CURSOR_BINDINGS: list[BindingType] = [
    Binding("enter", "select_cursor", "Select", show=False),
    Binding("up", "cursor_up", "Cursor up", show=False),
    Binding("down", "cursor_down", "Cursor down", show=False),
    Binding("right", "scroll_right", "Scroll right", show=False),
    Binding("left", "scroll_left", "Scroll left", show=False),
    Binding("pageup", "page_up", "Page up", show=False),
    Binding("pagedown", "page_down", "Page down", show=False),
    Binding("ctrl+home", "scroll_top", "Top", show=False),
    Binding("ctrl+end", "scroll_bottom", "Bottom", show=False),
    Binding("home", "scroll_top", "Top", show=False),
    Binding("end", "scroll_bottom", "Bottom", show=False),
]


class TableCursor:
    """Mixin for RowTable: the cursor's moves, scrolling to it and the actions of its keys
    (on the table's rows, ``row_key_at``, ``refresh_row`` and its column widths)."""

    _rows: dict[str, Any]
    _cursor: int
    _highlighted: tuple[int, str] | None  # last RowHighlighted posted
    _size_pending: bool
    show_cursor: bool

    @property
    def cursor_row(self) -> int:
        return self._cursor

    def move_cursor(
        self, *, row: int | None = None, animate: bool = False, scroll: bool = True
    ) -> None:
        if row is None:
            return
        row = max(0, min(row, len(self._rows) - 1))
        old = self._cursor
        if row == old:
            return
        self._cursor = row
        self.refresh_row(old)
        self.refresh_row(row)
        self._post_highlighted()
        if scroll:
            self.scroll_to_cursor(animate=animate)

    def _post_highlighted(self) -> None:
        """Tell the screen when the cursor is on another row than it was last told."""
        key = self.row_key_at(self._cursor) if self.show_cursor else None
        now = None if key is None else (self._cursor, key)
        if now != self._highlighted:
            self._highlighted = now
            if now is not None:
                self.post_message(self.RowHighlighted(self, *now))

    def scroll_to_cursor(self, animate: bool = False) -> None:
        if self._size_pending:  # the new size is laid out at the next refresh
            self.call_after_refresh(self._scroll_to_cursor, animate)
        else:
            self._scroll_to_cursor(animate)

    def _scroll_to_cursor(self, animate: bool = False) -> None:
        left = sum(self._render_widths()[: self.fixed_columns])
        width = max(self.size.width, self.virtual_size.width)
        region = Region(int(self.scroll_x) + left, HEADER_HEIGHT + self._cursor, width - left, 1)
        spacing = Spacing(HEADER_HEIGHT, 0, 0, left)
        self.scroll_to_region(region, animate=animate, spacing=spacing, force=True)

    def _page_height(self) -> int:
        return self.scrollable_content_region.height - HEADER_HEIGHT

    def action_cursor_up(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self._cursor - 1)

    def action_cursor_down(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=self._cursor + 1)

    def action_page_down(self) -> None:
        self._set_hover(False)
        height = self._page_height()
        self.scroll_relative(y=height, animate=False, force=True)
        self.move_cursor(row=min(self._cursor + height, len(self._rows) - 1), scroll=False)

    def action_page_up(self) -> None:
        self._set_hover(False)
        height = self._page_height()
        self.scroll_relative(y=-height, animate=False)
        self.move_cursor(row=max(self._cursor - height, 0), scroll=False)

    def action_scroll_top(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=0)

    def action_scroll_bottom(self) -> None:
        self._set_hover(False)
        self.move_cursor(row=len(self._rows) - 1)

    def action_select_cursor(self) -> None:
        self._set_hover(False)
        key = self.row_key_at(self._cursor) if self.show_cursor else None
        if key is not None:
            self.post_message(self.RowSelected(self, self._cursor, key))
