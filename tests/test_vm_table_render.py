"""The VM table renders again only the cells a poll changed, and what it shows is always what
a full re-render would show (recorded lab data, played poll by poll); level styles and the
table's own styles are worked out once, not at every repaint, and still follow the theme and
focus."""

from __future__ import annotations

from typing import Any

from textual.dom import DOMNode

from tests.monitor_support import SIZE, make_app, replay, until
from tui.app import MicroVMApp
from tui.widgets.levels import level_style
from tui.widgets.vm_table import PREFIX, VMTable


def table(app: MicroVMApp) -> VMTable:
    return app.main_screen.query_one(VMTable)


def rendered(t: VMTable) -> list[list[Any]]:
    return [list(t.render_line(y)) for y in range(t.size.height)]


def fully_rendered(t: VMTable) -> list[list[Any]]:
    t._update_count += 1  # DataTable's own invalidation: every cache key changes
    for memo in ("_kept_rich_style", "_kept_component_styles"):  # and the styles kept
        t.__dict__.pop(memo, None)
    return rendered(t)


async def test_lines_match_a_full_render_after_every_poll() -> None:
    source = replay(start_at_last=False)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        t = table(app)
        for n in range(1, len(source.frames) + 1):
            await until(pilot, lambda n=n: app.polls >= n)
            await pilot.pause()
            assert rendered(t) == fully_rendered(t), f"poll {n}"
            if n % 3 == 0:  # the cursor moves now and then: its line is drawn too
                await pilot.press("down")
                await pilot.pause()
                assert rendered(t) == fully_rendered(t), f"poll {n}, cursor moved"
            app.poll()


async def test_a_poll_renders_only_the_changed_cells_again() -> None:
    source = replay(start_at_last=False)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        t = table(app)
        # The first polls widen columns (a full re-render, as DataTable does it): skip them.
        for n in range(1, 7):
            await until(pilot, lambda n=n: app.polls >= n)
            app.poll()
        await until(pilot, lambda: app.polls >= 7)
        await pilot.pause()
        rendered(t)
        cache = t._cell_render_cache
        keys = list(cache.keys())  # LRUCache has no __iter__
        before = {k: cache.get(k) for k in keys if k[0].value == "web"}
        old = {c: t.get_cell("web", c) for c in ("name", "cpu", "hypervisor")}
        updates = t._update_count
        app.poll()
        await until(pilot, lambda: app.polls >= 8)
        await pilot.pause()
        assert t.get_cell("web", "cpu") != old["cpu"], "the recording changes web's CPU"
        assert t._update_count == updates  # no full invalidation: the order did not change
        rendered(t)
        # Same key, same rendered object: kept; a new object: rendered again.
        kept = {k[1].value for k, v in before.items() if cache.get(k) is v}
        dropped = {k[1].value for k, v in before.items() if cache.get(k) is not v}
        assert "cpu" in dropped
        assert {"name", "hypervisor"} <= kept
        assert t.get_cell("web", "name") == old["name"]
        assert rendered(t) == fully_rendered(t)


def fresh_level_style(widget: Any, level: str) -> Any:
    """What level_style says with nothing kept from before."""
    widget.__dict__.pop("_level_styles", None)
    return level_style(widget, PREFIX, level)


RESTYLES = ("theme", "blur", "focus")  # what makes Textual apply CSS to the table again


async def restyle(pilot: Any, t: VMTable, change: str) -> None:
    if change == "theme":
        t.app.theme = "textual-light"
    elif change == "blur":
        t.blur()
    else:
        t.focus()
    await pilot.pause()
    await pilot.pause()


async def test_level_styles_are_kept_across_repaints_and_follow_theme_and_focus() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        t = table(app)
        await until(pilot, lambda: app.polls >= 1)
        await pilot.pause()
        first = level_style(t, PREFIX, "muted")
        t.refresh()  # forgets Textual's own cache: ours stays
        assert level_style(t, PREFIX, "muted") is first
        for change in RESTYLES:
            await restyle(pilot, t, change)
            kept = level_style(t, PREFIX, "muted")
            assert kept == fresh_level_style(t, "muted"), change
        assert level_style(t, PREFIX, "muted") != first  # the light theme's muted colour


def fresh_table_styles(t: VMTable) -> list[Any]:
    """What Textual itself works out, with nothing kept."""
    names = ("datatable--header", "datatable--odd-row", "datatable--cursor")
    return [DOMNode.rich_style.fget(t)] + [  # type: ignore[attr-defined]
        DOMNode.get_component_styles(t, name).rich_style for name in names
    ]


def kept_table_styles(t: VMTable) -> list[Any]:
    names = ("datatable--header", "datatable--odd-row", "datatable--cursor")
    return [t.rich_style] + [t.get_component_styles(name).rich_style for name in names]


async def test_table_styles_are_kept_across_repaints_and_follow_theme_and_focus() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        t = table(app)
        await until(pilot, lambda: app.polls >= 1)
        await pilot.pause()
        first = kept_table_styles(t)
        header = t.get_component_styles("datatable--header")
        t.refresh()  # a repaint: what was worked out stays
        assert t.get_component_styles("datatable--header") is header
        for change in RESTYLES:
            await restyle(pilot, t, change)
            assert kept_table_styles(t) == fresh_table_styles(t), change
        assert kept_table_styles(t) != first  # the light theme's colours
