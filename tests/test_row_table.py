"""RowTable (tui/widgets/table): a sort reorders the rows and draws them from cache, an update
renders only its row again, what is drawn is always what a fresh render draws, and the
cursor, keys, mouse and messages work as the screens use them."""

from __future__ import annotations

import dataclasses
from typing import Any

from rich.text import Text
from textual.app import App, ComposeResult

from tests.monitor_support import until
from tui.widgets.table import RowTable

ROWS = 30
SIZE = (60, 40)  # every row on screen (the header, 30 rows, blank lines under them)


def cells(i: int) -> list[Text]:
    return [Text(f"row{i:02d}"), Text(str(i * 7 % 11)), Text("x" * (i % 5))]


def key(i: int) -> str:
    return f"row{i:02d}"


class TableApp(App[None]):
    def __init__(self, rows: int = ROWS) -> None:
        super().__init__()
        self.rows = rows
        self.seen: list[Any] = []

    def compose(self) -> ComposeResult:
        table = RowTable(zebra_stripes=True, fixed_columns=1, id="t")
        for column in ("name", "n", "xs"):
            table.add_column(column.upper(), key=column)
        for i in range(self.rows):
            table.add_row(*cells(i), key=key(i))
        yield table

    def on_mount(self) -> None:
        self.query_one(RowTable).focus()

    def on_row_table_row_highlighted(self, event: RowTable.RowHighlighted) -> None:
        self.seen.append(("highlighted", event.row_key))

    def on_row_table_row_selected(self, event: RowTable.RowSelected) -> None:
        self.seen.append(("selected", event.row_key))

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        self.seen.append(("header", event.column_key))


def lines(t: RowTable) -> list[list[Any]]:
    return [list(t.render_line(y)) for y in range(t.size.height)]


def fresh_lines(t: RowTable) -> list[list[Any]]:
    t.forget_rendered()
    return lines(t)


def text_of(t: RowTable, key: str) -> str:
    return t.render_line(1 + t.get_row_index(key)).text


async def test_a_sort_reorders_the_rows_and_renders_none_again() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        t = app.query_one(RowTable)
        await pilot.pause()
        lines(t)
        t.render_stats.reset()
        t.sort(key=lambda k: k, reverse=True)
        drawn = lines(t)
        stats = dataclasses.replace(t.render_stats)
        assert stats.rendered == 0  # every row came from the cache
        assert stats.cells_cached + stats.strips_cached == ROWS + 1
        assert t.ordered_keys[0] == "row29" and text_of(t, "row29").lstrip().startswith("row29")
        assert drawn == fresh_lines(t)
        assert t.render_stats.rendered == ROWS + 1  # the header and each row, after forgetting


async def test_an_update_renders_its_cell_again_and_no_other() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        t = app.query_one(RowTable)
        await pilot.pause()
        lines(t)
        t.render_stats.reset()
        t.update_cell("row05", "n", Text("9"))  # as wide as before: no column changes width
        drawn = lines(t)
        assert t.render_stats.rendered == 1
        assert t.render_stats.cells_rendered == 1  # the row's other cells from the cache
        assert t.render_stats.strips_cached == ROWS  # the header and the 29 others
        assert "9" in text_of(t, "row05").split()
        assert drawn == fresh_lines(t)
        # A wider cell widens its column: every row is drawn again, at the new widths.
        t.render_stats.reset()
        t.update_cell("row05", "xs", Text("y" * 12))
        drawn = lines(t)
        assert t.columns["xs"].content_width == 12
        assert t.render_stats.rendered == ROWS + 1
        assert t.render_stats.cells_rendered == ROWS + 1  # that column's cells, its label's
        assert drawn == fresh_lines(t)


async def test_the_cursor_moves_by_key_and_tells_the_screen() -> None:
    app = TableApp(rows=200)
    async with app.run_test(size=SIZE) as pilot:
        t = app.query_one(RowTable)
        await until(pilot, lambda: ("highlighted", "row00") in app.seen)
        await pilot.press("down", "down")
        await pilot.pause()
        assert t.cursor_row == 2 and app.seen[-1] == ("highlighted", "row02")
        await pilot.press("pagedown")
        await pilot.pause()
        page = t.cursor_row
        assert page > 2 + 30
        await pilot.press("end")
        await pilot.pause()
        assert t.cursor_row == 199 and app.seen[-1] == ("highlighted", t.ordered_keys[199])
        # The cursor's row is on screen, drawn with the cursor's style.
        y = 1 + 199 - int(t.scroll_y)
        assert 1 <= y < t.size.height
        cursor = t.get_component_rich_style("datatable--cursor")
        assert list(t.render_line(y))[1].style.bgcolor == cursor.bgcolor
        await pilot.press("home")
        await pilot.pause()
        assert t.cursor_row == 0 and t.scroll_y == 0
        await pilot.press("enter")
        await pilot.pause()
        assert app.seen[-1] == ("selected", t.ordered_keys[0])


async def test_clicks_on_a_header_and_on_rows() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        t = app.query_one(RowTable)
        await pilot.pause()
        name_width = t.columns["name"].render_width(t.cell_padding)
        await pilot.click(RowTable, offset=(name_width + 1, 0))  # the "N" label
        await pilot.pause()
        assert app.seen[-1] == ("header", "n")
        await pilot.click(RowTable, offset=(2, 1 + 4))
        await pilot.pause()
        assert t.cursor_row == 4 and app.seen[-1] == ("highlighted", "row04")
        await pilot.click(RowTable, offset=(2, 1 + 4))  # the cursor's row again: selected
        await pilot.pause()
        assert app.seen[-1] == ("selected", "row04")
        # Under the hovered row, the hover style; drawn as a fresh render draws it.
        await pilot.hover(RowTable, offset=(2, 1 + 6))
        await pilot.pause()
        hover = t.get_component_rich_style("datatable--hover")
        assert list(t.render_line(1 + 6))[-1].style.bgcolor == hover.bgcolor
        assert lines(t) == fresh_lines(t)


async def test_removed_rows_leave_the_order_and_the_cursor_stays_in_the_table() -> None:
    app = TableApp()
    async with app.run_test(size=SIZE) as pilot:
        t = app.query_one(RowTable)
        t.move_cursor(row=ROWS - 1)
        for i in range(20, ROWS):
            t.remove_row(f"row{i:02d}")
        await pilot.pause()
        assert t.row_count == 20 and t.ordered_keys == [f"row{i:02d}" for i in range(20)]
        assert t.cursor_row == 19 and app.seen[-1] == ("highlighted", "row19")
        assert t.get_row_index("row19") == 19
        assert t.virtual_size.height == 1 + 20
        # A key removed and added again, with other cells: drawn with those, not the old ones.
        lines(t)
        t.remove_row("row03")
        t.add_row(Text("row03"), Text("5"), Text("zz"), key="row03")
        assert t.ordered_keys[-1] == "row03"
        assert text_of(t, "row03").split() == ["row03", "5", "zz"]
        assert lines(t) == fresh_lines(t)
        await until(pilot, lambda: t.size.height == 1 + 20)  # the table's height is auto
