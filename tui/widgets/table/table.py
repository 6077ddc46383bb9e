"""RowTable: rows of Text cells keyed by a string, drawn a line at a time from cached strips.

The rows' order is a list of keys: sorting reorders it and nothing else. A line is drawn from
the row's cached strips (see ``row_cache``); a changed cell bumps its own and its row's
version, so only that cell is rendered through Rich again (the row is styled again from its
cells), and only the cell's region is repainted. A column that changes width renders its
cells again and repaints the table. The cursor is a row index; its row and the hovered row are
drawn with DataTable's cursor and hover styles (``cursor=False``: no cursor is drawn); the
cursor's moves and keys are in ``cursor``, the mouse in ``mouse``.

``set_rows`` shows a whole list of rows at once (a poll's): it renders again only the cells
that changed, keeps the cursor on its row's key, and while the same rows show in the same
order a column only widens, so a figure going 10.2% -> 9.9% -> 10.2% repaints one cell, not
the table.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.binding import BindingType
from textual.geometry import Region, Size
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.widgets.table import messages, paint, styles
from tui.widgets.table.columns import Column
from tui.widgets.table.cursor import CURSOR_BINDINGS, TableCursor
from tui.widgets.table.mouse import TableMouse
from tui.widgets.table.paint import HEADER_HEIGHT
from tui.widgets.table.row_cache import RenderStats, RowCache


class Row:
    """One row: its cells by column key, each cell's version and the row's (a new one at every
    change of one of its cells). Versions are the table's, never reused: a row removed and added
    again under the same key is never drawn from what its first self left in the cache."""

    __slots__ = ("cells", "key", "version", "versions")

    def __init__(self, key: str, cells: dict[str, Text], version: int) -> None:
        self.key = key
        self.cells = cells
        self.version = version
        self.versions = dict.fromkeys(cells, version)


class RowTable(TableCursor, TableMouse, ScrollView, can_focus=True):
    """A row-cursor table of Text cells (one line a row), keyed by string."""

    DEFAULT_CSS = styles.DEFAULT_CSS
    COMPONENT_CLASSES: ClassVar[set[str]] = styles.COMPONENT_CLASSES
    ALLOW_SELECT = False
    BINDINGS: ClassVar[list[BindingType]] = CURSOR_BINDINGS

    RowHighlighted = messages.RowHighlighted
    RowSelected = messages.RowSelected
    HeaderSelected = messages.HeaderSelected

    def __init__(
        self,
        *,
        cursor: bool = True,
        fixed_columns: int = 0,
        zebra_stripes: bool = False,
        cell_padding: int = 1,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self.show_cursor = cursor
        self.fixed_columns = fixed_columns
        self.zebra_stripes = zebra_stripes
        self.cell_padding = cell_padding
        self.columns: dict[str, Column] = {}
        self._rows: dict[str, Row] = {}
        self._order: list[str] = []
        self._order_stale = False  # rows were removed: _order still names them
        self._index: dict[str, int] | None = {}  # None: to be worked out again
        self._cursor = 0
        self._highlighted: tuple[int, str] | None = None  # last RowHighlighted posted
        self._hover_row = 0  # HEADER for the header
        self._show_hover = False
        self._widths: tuple[int, ...] | None = None
        self._header_version = 0
        self._versions = itertools.count(1)  # for rows and cells (see Row)
        self._cache = RowCache()
        self._looks: paint.Looks | None = None
        self._table_styles: dict[str, Style] = {}
        self._size_pending = False  # the virtual size changed since the last paint

    # --- what it holds ---------------------------------------------------------------------

    @property
    def rows(self) -> Mapping[str, Row]:
        return self._rows

    @property
    def row_count(self) -> int:
        return len(self._rows)

    @property
    def ordered_keys(self) -> list[str]:
        """Row keys in on-screen order (the table's own list: do not change it)."""
        if self._order_stale:
            rows = self._rows
            self._order = [key for key in self._order if key in rows]
            self._order_stale = False
        return self._order

    @property
    def render_stats(self) -> RenderStats:
        """Counters of rows rendered and served from cache (see ``row_cache``)."""
        return self._cache.stats

    def get_row_index(self, key: str) -> int:
        if self._index is None or self._order_stale:
            self._index = {k: i for i, k in enumerate(self.ordered_keys)}
        return self._index[key]

    def get_cell(self, row_key: str, column_key: str) -> Text:
        return self._rows[row_key].cells[column_key]

    def get_row(self, row_key: str) -> list[Text]:
        cells = self._rows[row_key].cells
        return [cells[key] for key in self.columns]

    def row_key_at(self, index: int) -> str | None:
        order = self.ordered_keys
        return order[index] if 0 <= index < len(order) else None

    # --- changing it -----------------------------------------------------------------------

    def add_column(self, label: str | Text, *, key: str, min_width: int = 0) -> None:
        """A column after the others; MIN_WIDTH: its content is never narrower."""
        text = label if isinstance(label, Text) else Text(label)
        column = self.columns[key] = Column(key, text, min_width=min_width)
        column.fit_label()
        for row in self._rows.values():
            row.cells[key] = paint.EMPTY
            row.versions[key] = row.version = next(self._versions)
            column.add_cell(0)
        self._widths_changed()

    def set_column_label(self, key: str, label: Text) -> None:
        column = self.columns[key]
        column.label = label
        self._header_version += 1
        if column.fit_label():
            self._widths_changed()
        else:
            self.refresh(Region(0, 0, self.size.width, HEADER_HEIGHT))

    def add_row(self, *cells: Text, key: str) -> str:
        if key in self._rows:
            raise KeyError(f"a row {key!r} is in the table")
        by_column = dict(zip(self.columns, cells, strict=True))
        widened = False
        for column_key, column in self.columns.items():
            widened |= column.add_cell(by_column[column_key].cell_len)
        self._rows[key] = Row(key, by_column, next(self._versions))
        index = len(self.ordered_keys)
        self._order.append(key)
        if self._index is not None:
            self._index[key] = index
        self._size_changed()
        if widened:
            self._widths_changed()
        else:
            self.refresh_row(index)
        if len(self._rows) == 1:
            self._post_highlighted()
        return key

    def remove_row(self, key: str) -> None:
        row = self._rows.pop(key)
        for column_key, column in self.columns.items():
            column.remove_cell(row.cells[column_key].cell_len)
        self._order_stale = True
        self._index = None
        self._size_changed()
        self.refresh()
        if self._cursor >= len(self._rows):
            self._cursor = max(0, len(self._rows) - 1)
        self._post_highlighted()

    def update_cell(
        self,
        row_key: str,
        column_key: str,
        value: Text,
        *,
        update_width: bool = True,
        shrink: bool = True,
    ) -> None:
        """Put VALUE in a cell: its row is rendered again (and repainted, when on screen).
        UPDATE_WIDTH False: the column keeps its width (a wider text is cut); SHRINK False:
        the column widens for a wider text but a narrower one leaves it as wide."""
        row = self._rows[row_key]
        old = row.cells[column_key]
        row.cells[column_key] = value
        row.versions[column_key] = row.version = next(self._versions)
        column = self.columns[column_key]
        if column.replace_cell(old.cell_len, value.cell_len, update_width, shrink):
            self._widths_changed()
        else:
            self.refresh_cell(self.get_row_index(row_key), column_key)

    def set_rows(self, rows: Sequence[tuple[str, Sequence[Text]]]) -> None:
        """Show ROWS (key, cells), in this order: rows that went are removed, new ones added,
        and of the others only the cells that changed (text or style) are put again, so an
        unchanged list renders and repaints nothing. The cursor stays on its row's key. While
        the same rows show in the same order a column only widens; when rows come, go or
        move, the columns fit their cells (and floors) again."""
        keys = [key for key, _ in rows]
        same = keys == self.ordered_keys
        selected = self.row_key_at(self._cursor)
        wanted = set(keys)
        for key in [key for key in self._rows if key not in wanted]:
            self.remove_row(key)
        column_keys = list(self.columns)
        for key, cells in rows:
            row = self._rows.get(key)
            if row is None:
                self.add_row(*cells, key=key)
                continue
            for column_key, cell in zip(column_keys, cells, strict=True):
                if not _same_text(row.cells[column_key], cell):
                    self.update_cell(key, column_key, cell, shrink=not same)
        if same:
            return
        if keys != self.ordered_keys:
            self.reorder(keys)
        if any([column.fit() for column in self.columns.values()]):
            self._widths_changed()
        if selected in self._rows:
            self.move_cursor(row=self.get_row_index(selected), scroll=False)
        self._post_highlighted()

    def clear(self, columns: bool = False) -> None:
        self._rows.clear()
        self._order = []
        self._order_stale = False
        self._index = {}
        self._cursor = 0
        self._highlighted = None
        if columns:
            self.columns = {}
        else:
            for column in self.columns.values():
                column.widths.clear()
        self._cache.clear()
        self._widths_changed()
        self.scroll_to(0, 0, animate=False)

    def sort(self, key: Callable[[str], Any], reverse: bool = False) -> None:
        """Put the rows in the order of KEY (called with each row key). The cursor stays at
        its index; the rows are drawn again from cache."""
        self._order = sorted(self.ordered_keys, key=key, reverse=reverse)
        self._index = None
        self.refresh()

    def reorder(self, keys: list[str]) -> None:
        """Put the rows in the order of KEYS (every row key, once: what ``sort`` would give)."""
        if len(keys) != len(self._rows) or not all(key in self._rows for key in keys):
            raise ValueError("reorder takes every row key once")
        self._order = list(keys)
        self._order_stale = False
        self._index = None
        self.refresh()

    def _widths_changed(self) -> None:
        self._widths = None
        self._size_changed()
        self.refresh()

    def _size_changed(self) -> None:
        padding = self.cell_padding
        width = sum(column.render_width(padding) for column in self.columns.values())
        size = Size(width, HEADER_HEIGHT + len(self._rows))
        if size != self.virtual_size:
            self.virtual_size = size
            self._size_pending = True

    # --- drawing ---------------------------------------------------------------------------

    def refresh_row(self, index: int) -> None:
        """Repaint the row at INDEX, when it is on screen."""
        y = HEADER_HEIGHT + index - int(self.scroll_y)
        if HEADER_HEIGHT <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def refresh_cell(self, index: int, column_key: str) -> None:
        """Repaint one cell, when on screen. Only its region: Textual writes a repainted line
        to the terminal from its start to the region's end, not the whole line."""
        y = HEADER_HEIGHT + index - int(self.scroll_y)
        if not HEADER_HEIGHT <= y < self.size.height:
            return
        widths = self._render_widths()
        column = list(self.columns).index(column_key)
        x = sum(widths[:column])
        if column >= self.fixed_columns:  # the scrolling columns move under the fixed ones
            x -= int(self.scroll_x)
            left = sum(widths[: self.fixed_columns])
            if x + widths[column] <= left:
                return
        self.refresh(Region(max(0, x), y, widths[column], 1))

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._looks = None
        self._table_styles = {}
        self._cache.forget_styles()
        self.refresh()

    def forget_rendered(self) -> None:
        """Drop every row rendered and styled: the next paint draws all from scratch."""
        self._looks = None
        self._table_styles = {}
        self._cache.clear()
        self.refresh()

    def _table_style(self, name: str) -> Style:
        style = self._table_styles.get(name)
        if style is None:
            if name == "base":
                style = self.rich_style
            else:
                style = self.get_component_styles(name).rich_style
            self._table_styles[name] = style
        return style

    def _render_widths(self) -> tuple[int, ...]:
        if self._widths is None:
            padding = self.cell_padding
            self._widths = tuple(c.render_width(padding) for c in self.columns.values())
        return self._widths

    def render_lines(self, crop: Region) -> list[Strip]:
        self._size_pending = False
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        base = self._table_style("base")
        if y < HEADER_HEIGHT:
            return self._line(None, paint.HEADER, width, base)
        index = y - HEADER_HEIGHT + int(self.scroll_y)
        key = self.row_key_at(index)
        if key is None:
            return Strip.blank(width, base)
        return self._line(self._rows[key], index, width, base)

    def _line(self, row: Row | None, index: int, width: int, base: Style) -> Strip:
        widths = self._render_widths()
        if row is None:
            row_key = ("\0header", self._header_version, widths)
        else:
            row_key = (row.key, row.version, widths)
        header = row is None
        cursor = self.show_cursor and not header and index == self._cursor
        hover = self._show_hover and index == self._hover_row
        parity = index % 2 if self.zebra_stripes and not header else 0
        strips_key = (row_key, parity, cursor, hover, width)
        strips = self._cache.strips(strips_key)
        if strips is None:
            cells = self._row_cells(row, widths)
            strips = self._style_row(cells, index, header, hover, cursor, width)
            self._cache.keep_strips(strips_key, strips)
        return paint.line(*strips, int(self.scroll_x), width, base)

    def _row_cells(self, row: Row | None, widths: tuple[int, ...]) -> list[list[Segment]]:
        """Each cell of ROW (None: the header) rendered at its column's width: from the cache
        when the cell and its width are the same as when it was last rendered."""
        cache = self._cache
        rendered = []
        new = 0
        for column, width in zip(self.columns.values(), widths, strict=True):
            if row is None:
                key = ("\0header", column.key, self._header_version, width)
                text = column.label
            else:
                key = (row.key, column.key, row.versions[column.key], width)
                text = row.cells[column.key]
            segments = cache.cell(key)
            if segments is None:
                app = self.app
                options = app.console_options
                segments = paint.render_cell(app.console, options, text, width, self.cell_padding)
                cache.keep_cell(key, segments)
                new += 1
            rendered.append(segments)
        cache.count_row(new)
        return rendered

    def _style_row(
        self,
        cells: list[list[Any]],
        index: int,
        header: bool,
        hover: bool,
        cursor: bool,
        width: int,
    ) -> tuple[Strip, Strip]:
        if self._looks is None:
            self._looks = paint.Looks(self.get_component_rich_style)
        if header:
            fixed_style = row_style = self._table_style("datatable--header")
        else:
            fixed_style = self._table_style("datatable--fixed") + Style.from_meta({"fixed": True})
            if self.zebra_stripes:
                row_style = self._table_style(
                    "datatable--odd-row" if index % 2 else "datatable--even-row"
                )
            else:
                row_style = self._table_style("base")
        fixed = self.fixed_columns
        scrolling_width = sum(self._render_widths()[fixed:])
        look = paint.RowLook(fixed_style, row_style, header, hover, cursor)
        return paint.style_row(cells, look, self._looks, fixed, max(0, width - scrolling_width))

    # --- many rows at once -----------------------------------------------------------------

    def add_rows(self, rows: Iterable[tuple[str, list[Text]]]) -> None:
        for key, cells in rows:
            self.add_row(*cells, key=key)


def _same_text(old: Text, new: Text) -> bool:
    """The same cell on screen: text, style and spans (``Text.__eq__`` ignores the style)."""
    return old.plain == new.plain and old.style == new.style and old.spans == new.spans
