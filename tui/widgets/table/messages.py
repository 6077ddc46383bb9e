"""What a RowTable tells its screen (handlers: ``on_row_table_row_highlighted`` and so on)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text
from textual.message import Message

if TYPE_CHECKING:
    from tui.widgets.table.table import RowTable


class TableMessage(Message):
    def __init__(self, table: RowTable) -> None:
        super().__init__()
        self.table = table

    @property
    def control(self) -> RowTable:
        return self.table


class RowHighlighted(TableMessage, namespace="row_table"):
    """The cursor is on another row (or on a row again, after the table had none)."""

    def __init__(self, table: RowTable, cursor_row: int, row_key: str) -> None:
        super().__init__(table)
        self.cursor_row = cursor_row
        self.row_key = row_key


class RowSelected(TableMessage, namespace="row_table"):
    """Enter on a row, or a click on the row the cursor is on."""

    def __init__(self, table: RowTable, cursor_row: int, row_key: str) -> None:
        super().__init__(table)
        self.cursor_row = cursor_row
        self.row_key = row_key


class HeaderSelected(TableMessage, namespace="row_table"):
    """A click on a column's label."""

    def __init__(self, table: RowTable, column_key: str, column_index: int, label: Text) -> None:
        super().__init__(table)
        self.column_key = column_key
        self.column_index = column_index
        self.label = label
