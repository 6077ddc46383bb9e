"""Navigation, help, palette, read-only feedback and quitting (issue 10, items 11-20), driven
with Pilot through the real app fed by recorded lab data; jobs come from fake actions
(tests/test_actions_ui_support.py) so a job can be held running."""

from __future__ import annotations

import dataclasses

from rich.text import Text
from textual.widgets import Static, Tabs

from tests.monitor_support import SIZE, frames, make_app, replay, until
from tests.test_actions_ui_support import Gate, runner_with
from tui.actions import ActionsController
from tui.app import MicroVMApp
from tui.bindings import collect, collect_for_help
from tui.commands import MonitorCommands
from tui.feed import ReplaySource
from tui.host.actions.jobs import Job, JobState
from tui.screens.confirm import ConfirmScreen
from tui.screens.help import HelpScreen
from tui.screens.jobs import JobsScreen
from tui.screens.main import MainScreen
from tui.widgets.detail.pane import DetailPane
from tui.widgets.host_header import HostHeader
from tui.widgets.jobs_table import JobsTable
from tui.widgets.vm_table import COLUMN_KEYS, NAME_WIDTH, VMTable

NARROW_SIZE = (80, 24)


def table(app: MicroVMApp) -> VMTable:
    return app.main_screen.query_one(VMTable)


def header_lines(app: MicroVMApp) -> list[str]:
    return app.main_screen.query_one(HostHeader).plain_lines


def notes(app: MicroVMApp) -> list[tuple[str, str]]:
    return [(n.title, n.message) for n in app._notifications]


def with_gate(app: MicroVMApp, gate: Gate) -> MicroVMApp:
    """APP with a job runner whose restart blocks until GATE is released (or cancelled)."""
    app.actions.shutdown(1)
    app.actions = ActionsController(
        app,
        app.settings,
        read_only_reason=app.read_only_reason,
        on_change=app._job_changed,
        runner=runner_with({"restart": gate.action("restart")}),
    )
    return app


async def ready(pilot, app: MicroVMApp) -> None:  # type: ignore[no-untyped-def]
    await until(pilot, lambda: app.polls >= 1)


async def select(pilot, app: MicroVMApp, name: str) -> None:  # type: ignore[no-untyped-def]
    t = table(app)
    t.move_cursor(row=t.get_row_index(name))
    await pilot.pause()


# --- 15: home/end, 20: enter ------------------------------------------------------------------


async def test_home_and_end_move_the_cursor_not_sideways() -> None:
    app = make_app(replay())
    async with app.run_test(size=NARROW_SIZE) as pilot:
        await ready(pilot, app)
        t = table(app)
        await pilot.press("end")
        await until(pilot, lambda: t.cursor_row == t.row_count - 1)
        assert t.scroll_x == 0
        await pilot.press("home")
        await until(pilot, lambda: t.cursor_row == 0)
        assert t.scroll_x == 0


async def test_enter_opens_the_vm_and_a_second_enter_its_console() -> None:
    app = make_app(replay())
    consoles: list[str | None] = []
    app.action_console = lambda: consoles.append(app.main_screen.selected_name)  # type: ignore[method-assign]
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "web")
        app.main_screen.add_class("-table-only")  # the detail hidden: Enter shows it
        await pilot.press("enter")
        await pilot.pause()
        pane = app.main_screen.query_one(DetailPane)
        assert isinstance(app.focused, Tabs) and pane in app.focused.ancestors
        assert not app.main_screen.has_class("-table-only")
        assert consoles == []
        await pilot.press("enter")
        await until(pilot, lambda: consoles == ["web"])
        await pilot.press("escape")  # back to the table
        await pilot.pause()
        assert app.focused is table(app)


# --- 14: sort arrows ----------------------------------------------------------------------------


async def test_the_sort_arrow_shows_on_every_column() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        t = table(app)
        for key in COLUMN_KEYS:
            for reverse in (False, True):
                t.set_sort(key, reverse)
                await pilot.pause()
                column = t.columns[key]
                label = column.label.plain
                assert label.rstrip().endswith("▼" if reverse else "▲"), (key, label)
                # The column is wide enough for its label, arrow included.
                assert column.content_width >= column.label.cell_len, (
                    key,
                    label,
                )


# --- 13: Esc clears a kept filter; "3 of 7" ----------------------------------------------------


async def test_escape_clears_a_kept_filter_and_the_header_counts_what_is_shown() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("slash", *"running", "enter")
        await until(pilot, lambda: table(app).filter_text == "running")
        shown = table(app).row_count
        assert 0 < shown < 7
        assert app.focused is table(app)
        assert f"{shown} of 7 VMs" in header_lines(app)[1]
        await pilot.press("escape")
        await until(pilot, lambda: table(app).row_count == 7)
        assert table(app).filter_text == ""
        assert "7 VMs" in header_lines(app)[1] and " of 7" not in header_lines(app)[1]


# --- 16 and 9.9: narrow terminals, long names -------------------------------------------------


def _long_name_source(name: str) -> ReplaySource:
    snaps = []
    for snap in frames():
        vms = [
            dataclasses.replace(vm, name=name) if vm.name == "idle" else vm
            for vm in snap.inventory.vms
        ]
        inventory = dataclasses.replace(snap.inventory, vms=vms)
        snaps.append(dataclasses.replace(snap, inventory=inventory))
    return ReplaySource(snaps, start_at_last=True)


async def test_narrow_terminal_pins_the_name_and_drops_low_value_columns() -> None:
    app = make_app(replay())
    async with app.run_test(size=NARROW_SIZE) as pilot:
        await ready(pilot, app)
        t = table(app)
        assert t.fixed_columns == 1
        keys = list(t.columns)
        assert keys[0] == "name" and "vcpu" not in keys and "hypervisor" not in keys
        assert t.row_count == 7
        await select(pilot, app, "web")
        t.set_sort("vcpu")  # sorting by a left-out column brings it back
        await pilot.pause()
        assert "vcpu" in t.columns
        assert t.selected_name == "web"
        t.set_sort("name")
        await pilot.resize_terminal(*SIZE)
        await until(pilot, lambda: "hypervisor" in t.columns)
        assert list(t.columns) == list(COLUMN_KEYS)
        assert t.get_cell("web", "hypervisor").plain == "qemu"


async def test_a_250_character_name_is_cut_with_an_ellipsis() -> None:
    name = "n" * 250
    app = make_app(_long_name_source(name))
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        t = table(app)
        shown = t.get_cell(name, "name").plain
        assert shown.endswith("…") and len(shown) == NAME_WIDTH
        assert t.columns["name"].render_width(t.cell_padding) <= NAME_WIDTH + 4


# --- 11: read-only says why ---------------------------------------------------------------------


async def test_read_only_keys_and_palette_say_why() -> None:
    app = make_app(replay(), read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "web")
        for key, label in (("t", "Start"), ("R", "Restart"), ("D", "Delete"), ("n", "Create")):
            await pilot.press(key)
            await until(
                pilot, lambda label=label: any(t == f"{label}: not done" for t, _ in notes(app))
            )
            assert isinstance(app.screen, MainScreen)
        assert ("Start: not done", "read-only: started with --read-only.") in notes(app)
        app.clear_notifications()
        provider = MonitorCommands(app.screen)
        restart = next(c for c in provider.commands() if c.title == "Restart web")
        await provider._runner(restart)()
        await until(
            pilot,
            lambda: ("Restart: not done", "read-only: started with --read-only.") in notes(app),
        )
        assert isinstance(app.screen, MainScreen)
        await pilot.press("j")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        said = str(app.screen.query_one("#jobs-read-only", Static).content)
        assert "actions are off" in said and "--read-only" in said


async def test_read_only_reason_fits_the_header_at_80_columns() -> None:
    app = make_app(replay(), read_only=True)
    async with app.run_test(size=NARROW_SIZE) as pilot:
        await ready(pilot, app)
        assert "read-only: started with --read-only" in header_lines(app)[1]


# --- 12: quitting during a job --------------------------------------------------------------------


async def test_quit_during_a_job_asks_and_cancels_it() -> None:
    gate = Gate()
    app = with_gate(make_app(replay()), gate)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        job = app.actions.submit("restart", "web")
        assert job is not None
        await until(pilot, gate.started.is_set)
        # 20: the row and the header show the job while it runs.
        await until(pilot, lambda: "⚙" in table(app).get_cell("web", "name").plain)
        assert "⚙" not in table(app).get_cell("db", "name").plain
        assert "⚙ 1 busy" in header_lines(app)[1]
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.screen.title_text == "1 job running (restart web): quit and cancel it?"
        await pilot.press("escape")  # no: the app and the job go on
        await until(pilot, lambda: isinstance(app.screen, MainScreen))
        assert app.return_code is None and not app.actions.feed.job(job.id).state.finished
        await pilot.press("q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        app.screen.action_confirm()
        await until(pilot, lambda: app.return_code == 0)
    states = [j.state for j in app.actions.runner.jobs()]
    assert states == [JobState.CANCELLED]


async def test_quit_without_jobs_quits_at_once() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await pilot.press("q")
        await pilot.pause()
        assert not app.is_running


async def test_the_job_marker_leaves_when_the_job_ends() -> None:
    gate = Gate()
    app = with_gate(make_app(replay()), gate)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        app.actions.submit("restart", "web")
        await until(pilot, lambda: "⚙" in table(app).get_cell("web", "name").plain)
        gate.release()
        await until(pilot, lambda: "⚙" not in table(app).get_cell("web", "name").plain)
        assert "busy" not in header_lines(app)[1]


# --- 17: the jobs table keeps up with wider cells ---------------------------------------------


async def test_jobs_table_columns_widen_while_open() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        screen = JobsScreen(app.actions.feed, animate=False)
        await app.push_screen(screen)
        jobs_table = screen.query_one(JobsTable)
        job = Job(id=1, action="update", vm="web", state=JobState.QUEUED, created=1.0)
        jobs_table.update_job(job)
        await pilot.pause()
        long = "the build of web failed: builder for '/nix/store/…-web.drv' failed"
        jobs_table.update_job(
            dataclasses.replace(
                job, state=JobState.CANCELLED, started=1.0, ended=3.0, result=long, version=2
            )
        )
        await pilot.pause()
        for column in jobs_table.columns.values():
            widest = max(
                Text.from_markup(c).cell_len if isinstance(c, str) else c.cell_len
                for c in jobs_table.get_column(column.key)
            )
            assert column.content_width >= widest, column.key.value


# --- 18: help -------------------------------------------------------------------------------------


async def test_help_lists_our_keys_by_screen_without_textual_generics() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        infos = collect_for_help(app)
        described = {b.description for b in infos}
        assert not any("Move cursor" in d or "completion" in d for d in described)
        # Ours (they have an id, for [keys]) or one of the fixed lines: no generic bindings.
        assert all(b.id or b.action == "" for b in infos)
        sections = list(dict.fromkeys(b.section for b in infos))
        assert sections[0] == "Monitor" and "Jobs panel" in sections and "Console" in sections
        keys = {k for b in infos for k in b.keys}
        assert {"ctrl+]", "shift+pgup", "ctrl+f", "x", "l", "o"} <= keys
        jobs_keys = {k for b in infos if b.section == "Jobs panel" for k in b.keys}
        assert {"x", "l", "o", "?"} <= jobs_keys
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))
        footer = str(app.screen.query_one("#help-footer", Static).content)
        assert "[keys] table" in footer
        await pilot.press("escape")
        # ? in the jobs panel opens the help too.
        await pilot.press("j")
        await until(pilot, lambda: isinstance(app.screen, JobsScreen))
        await pilot.press("question_mark")
        await until(pilot, lambda: isinstance(app.screen, HelpScreen))


# --- 19: palette ----------------------------------------------------------------------------------


async def test_palette_names_the_vm_and_has_no_generic_entries() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "web")
        provider = MonitorCommands(app.screen)
        titles = {c.title for c in provider.commands()}
        assert {"Restart web", "Start web", "Stop web", "Force stop web", "Delete web"} <= titles
        assert not any("Move cursor" in t or "completion" in t for t in titles)
        hits = [h async for h in provider.search("theme")]
        assert not any("cursor" in str(h.text) for h in hits)
        assert not any("Kill" in b.description for b in collect(app))
        assert not any("Kill" in b.description for b in collect_for_help(app))


# --- 22: the create dialog ------------------------------------------------------------------------


async def test_create_dialog_offers_the_usual_flake_and_a_visible_checkbox() -> None:
    from textual.widgets import Checkbox, Input

    from tests.test_actions_ui_support import ActionsTestApp, fake_vms
    from tui.screens.create import CreateScreen

    vms = fake_vms()
    vms[1] = dataclasses.replace(vms[1], flake="github:me/vms")
    app = ActionsTestApp(vms)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.main_screen.table.row_count > 0)
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, CreateScreen))
        # Three VMs use git+file:///etc/nixos, one github:me/vms.
        assert app.screen.query_one("#flake", Input).value == "git+file:///etc/nixos"
        box = app.screen.query_one("#start", Checkbox)
        seen = []
        for value in (False, True):
            box.value = value
            await pilot.pause()
            style = box.get_visual_style("toggle--button")
            fg, bg = style.foreground, style.background
            assert fg is not None and bg is not None
            assert abs(fg.brightness - bg.brightness) > 0.25, (value, fg, bg)
            seen.append(fg)
        assert seen[0] != seen[1]  # checked and unchecked differ
        await pilot.press("escape")
        # The last flake used is offered next time (the app keeps it in its state file).
        app.actions.last_flake = "path:/srv/vms"
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, CreateScreen))
        assert app.screen.query_one("#flake", Input).value == "path:/srv/vms"


# --- 23: paths wrap at their separators -----------------------------------------------------------


def test_wrap_at_breaks_cuts_after_separators_and_folds_only_long_words() -> None:
    from tui.widgets.wrap import wrap_at_breaks

    def lines(text: str, width: int) -> list[str]:
        return [t.plain for t in wrap_at_breaks(Text(text), width)]

    assert lines("/var/lib/microvms/web/web-data.img", 14) == [
        "/var/lib/",
        "microvms/web/",
        "web-data.img",
    ]
    assert lines("microvm-tap-interfaces@web.service", 16) == [
        "microvm-tap-",
        "interfaces@",
        "web.service",
    ]
    assert lines("short", 10) == ["short"]
    assert lines("abcdefghijkl", 5) == ["abcde", "fghij", "kl"]  # no break: folded
    assert "".join(lines("/a/b c/d-e@f", 3)) == "/a/b c/d-e@f".replace(" ", "")


async def test_storage_and_units_wrap_paths_at_separators_at_80_columns() -> None:
    app = make_app(replay())
    async with app.run_test(size=(80, 40)) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "web")
        pane = app.main_screen.query_one(DetailPane)
        await pilot.press("3")
        await pilot.pause()
        storage = pane.query_one("#view-storage").plain_lines
        image = [line.split(" ")[0] for line in storage[3:8] if line and not line.startswith(" ")]
        image = [p for p in image if p]
        assert "".join(image).endswith("/microvms/web/web-data.img"), storage
        assert all(p[-1] in "/-" for p in image[:-1]), image  # every cut after a separator
        await pilot.press("5")
        await pilot.pause()
        units = "\n".join(pane.query_one("#view-units").plain_lines)
        assert "microvm@web.serv " not in units and "\nice" not in units, units
        assert "\nweb.service" in units


# --- also measured: the History tab's graphs ------------------------------------------------------


async def test_history_graph_rows_are_few_segments_and_unchanged_data_does_not_repaint() -> None:
    from tui.widgets.history_graph import HistoryGraph

    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        await select(pilot, app, "web")
        await pilot.press("6")
        await pilot.pause()
        graph = app.main_screen.query_one("#cpu-graph", HistoryGraph)
        width = graph.size.width
        # Neighbouring columns differ, none is zero (a zero is drawn muted: a style run).
        series = [float(10 + i % 9 * 10) for i in range(width)]
        series[-3] = None  # type: ignore[call-overload]
        graph.set_data(series, 100.0)
        await pilot.pause()
        rows = [graph.render_line(y) for y in range(graph.size.height)]
        assert [r.cell_length for r in rows] == [width] * graph.size.height
        assert rows[0].text.startswith("   100% ") and rows[-1].text.startswith("     0% ")
        assert rows[-1].text[-3] == "·"  # the unread poll: a dot on the base line
        # Runs of one style are one segment: a row costs a few segments, not one per cell.
        assert max(len(list(r)) for r in rows) <= 8
        refreshes: list[object] = []
        original = graph.refresh
        graph.refresh = lambda *a, **k: refreshes.append(a) or original(*a, **k)  # type: ignore[method-assign]
        graph.set_data(list(series), 100.0)
        assert refreshes == []  # the same data: nothing repainted
        graph.set_data([*series[1:], 50.0], 100.0)
        assert refreshes


async def test_ctrl_q_on_the_quit_question_quits() -> None:
    gate = Gate()
    app = with_gate(make_app(replay()), gate)
    async with app.run_test(size=SIZE) as pilot:
        await ready(pilot, app)
        app.actions.submit("restart", "web")
        await until(pilot, gate.started.is_set)
        await pilot.press("ctrl+q")
        await until(pilot, lambda: isinstance(app.screen, ConfirmScreen))
        assert app.return_code is None  # asking, not quitting
        await pilot.press("ctrl+q")  # asked already: a second quit is the answer
        await until(pilot, lambda: app.return_code == 0)
    assert [j.state for j in app.actions.runner.jobs()] == [JobState.CANCELLED]
