"""The table at 2000 rows (issue 9, "Scale"): the rows arrive in sort order (a screenful
first, the rest in steps), and after every sort and filter the table shows the right rows in
the right order with the cursor on the VM it was on. Timings live in bench/table_scale.py."""

from __future__ import annotations

import random
from pathlib import Path

from textual.pilot import Pilot

from tests.monitor_support import SIZE, make_app, until
from tui.feed import ReplaySource, Snapshot
from tui.host.model import VM, Drift, Inventory, UnitState
from tui.widgets.vm_table import FIRST_ROWS, VMTable

N = 2000
FILL_S = 120.0  # the whole fill, on a shared machine under load

# Unit state by VM number, and the State column's order (running first, stopped last).
ACTIVE, FAILED, INACTIVE = "active", "failed", "inactive"
STATE_RANK = {ACTIVE: 0, FAILED: 3, INACTIVE: 4}


def _state(i: int) -> str:
    return ACTIVE if i % 10 == 0 else FAILED if i % 10 == 1 else INACTIVE


def big_snapshot() -> Snapshot:
    """N stopped-or-active VMs without samples, listed in no particular order."""
    numbers = list(range(N))
    random.Random(9).shuffle(numbers)
    vms = [
        VM(
            name=f"vm{i:04d}",
            path=Path(f"/var/lib/microvms/vm{i:04d}"),
            hypervisor="qemu",
            drift=Drift.CURRENT,
            vcpu=2,
            mem_mib=512,
            unit=UnitState(name=f"microvm@vm{i:04d}.service", active=_state(i), restarts=0),
        )
        for i in numbers
    ]
    return Snapshot(inventory=Inventory(state_dir=Path("/var/lib/microvms"), vms=vms))


def by_name() -> list[str]:
    return [f"vm{i:04d}" for i in range(N)]


def by_state() -> list[str]:
    return sorted(by_name(), key=lambda n: (STATE_RANK[_state(int(n[2:]))], n))


async def filled(pilot: Pilot) -> VMTable:
    app = pilot.app
    await until(pilot, lambda: app.polls >= 1)  # type: ignore[attr-defined]
    table = app.screen.query_one(VMTable)
    await until(pilot, lambda: not table.filling and table.row_count == table.matched, FILL_S)
    return table


def header(table: VMTable) -> str:
    return table.render_line(0).text


async def test_a_big_host_arrives_in_sort_order_a_screenful_first() -> None:
    app = make_app(ReplaySource([big_snapshot()]))
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        table = app.main_screen.query_one(VMTable)
        # The first show put in the first rows in sort order, not the first ones listed.
        first = table.order
        assert FIRST_ROWS <= len(first) < N
        assert first == by_name()[: len(first)]
        assert table.matched == N
        await until(pilot, lambda: not table.filling, FILL_S)
        assert table.order == by_name()
        assert table.selected_name == "vm0000" and table.cursor_row == 0


async def test_sorting_2000_rows_keeps_the_cursor_on_its_vm() -> None:
    app = make_app(ReplaySource([big_snapshot()]))
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot)
        table.focus()
        table.select_name("vm1234")
        await pilot.pause()

        await pilot.press("s")  # Name -> State
        await pilot.pause()
        assert table.sort_column == "state"
        assert table.order == by_state()
        assert table.selected_name == "vm1234"
        assert table.cursor_row == by_state().index("vm1234")
        assert "State ▲" in header(table) and "Name ▲" not in header(table)

        await pilot.press("S")  # reversed: the same rows, back to front
        await pilot.pause()
        assert table.order == by_state()[::-1]
        assert table.selected_name == "vm1234"
        assert "State ▼" in header(table)

        await pilot.press("down")
        await pilot.pause()
        expected = by_state()[::-1][by_state()[::-1].index("vm1234") + 1]
        assert table.selected_name == expected

        # Every VM has the same hypervisor: sorted by it the order is the names'.
        app.main_screen.action_sort_by("name")
        await pilot.pause()
        app.main_screen.action_sort_by("hypervisor")
        await pilot.pause()
        assert table.order == by_name()
        assert table.selected_name == expected
        # The order stayed the same, the arrow still moved.
        assert "Hypervisor ▲" in header(table) and "Name ▲" not in header(table)


async def test_filtering_2000_rows_shows_the_matches_and_keeps_the_cursor() -> None:
    app = make_app(ReplaySource([big_snapshot()]))
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot)
        table.focus()
        table.select_name("vm1903")
        await pilot.pause()

        await pilot.press("slash", *"vm19", "enter")
        await filled(pilot)
        matches = [n for n in by_name() if "vm19" in n]
        assert table.matched == len(matches) == 100
        assert table.order == matches
        assert table.selected_name == "vm1903"

        await pilot.press("escape")  # the filter cleared: every VM, the cursor stays
        await filled(pilot)
        assert table.order == by_name()
        assert table.selected_name == "vm1903"

        await pilot.press("slash", *"failed", "enter")  # the state's words match too
        await filled(pilot)
        failed = [n for n in by_name() if _state(int(n[2:])) == FAILED]
        assert table.order == failed and len(failed) == N // 10
        assert table.selected_name in failed  # vm1903 is not: the cursor is on a match

        picked = table.selected_name
        await pilot.press("escape")
        await filled(pilot)
        assert table.order == by_name()
        assert table.selected_name == picked


async def test_a_sort_of_2000_rows_renders_at_most_the_rows_on_screen() -> None:
    app = make_app(ReplaySource([big_snapshot()]))
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot)
        table.focus()
        await pilot.pause()
        on_screen = table.size.height  # the header and the rows under it
        stats = table.render_stats

        stats.reset()
        await pilot.press("S")  # Name, reversed: the cursor stays on vm0000, now the last row;
        await pilot.pause()  # the rows around it were drawn before: only the header is rendered
        assert table.order[0] == "vm1999" and table.selected_name == "vm0000"
        assert stats.rendered == 1
        assert "Name ▼" in header(table)

        stats.reset()
        await pilot.press("s")  # State: the active VMs on top (vm0000, vm0010, ...), new rows
        await pilot.pause()
        assert table.order[:3] == ["vm0000", "vm0010", "vm0020"]
        assert 1 < stats.rendered <= on_screen
        assert stats.rendered + stats.cells_cached + stats.strips_cached <= on_screen
