"""The VM table renders again only the rows a poll changed, and what it shows is always what
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
    t.forget_rendered()  # every row rendered and styled again
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
        # The first polls widen columns (every row drawn again at the new widths): skip them.
        for n in range(1, 7):
            await until(pilot, lambda n=n: app.polls >= n)
            app.poll()
        await until(pilot, lambda: app.polls >= 7)
        await pilot.pause()
        rendered(t)
        before = {key: t.get_row(key) for key in t.order}
        widths = {key: c.content_width for key, c in t.columns.items()}
        t.render_stats.reset()
        app.poll()
        await until(pilot, lambda: app.polls >= 8)
        await pilot.pause()
        assert {key: c.content_width for key, c in t.columns.items()} == widths
        changed = [key for key in t.order if t.get_row(key) != before[key]]
        assert "web" in changed, "the recording changes web's CPU"
        assert len(changed) < len(t.order), "some rows stay the same"
        # The poll's paint rendered each changed cell once, and no other.
        cells = sum(
            a != b for key in changed for a, b in zip(t.get_row(key), before[key], strict=True)
        )
        assert t.render_stats.rendered == len(changed)
        assert t.render_stats.cells_rendered == cells < len(changed) * len(t.columns)
        t.render_stats.reset()
        drawn = rendered(t)  # the header and every row, from the cache
        assert t.render_stats.rendered == 0
        assert t.render_stats.strips_cached == 1 + len(t.order)
        assert drawn == fully_rendered(t)


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
