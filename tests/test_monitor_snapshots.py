"""Snapshots of the monitor, fed by recorded lab data (tests/fixtures/monitor, see record.py).

SVGs live in the top-level ``snapshots/test_monitor_snapshots/`` (tests/snapshot_support.py).
Refresh with ``pytest tests/test_monitor_snapshots.py --snapshot-update`` and look at them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot

from tests.monitor_support import SIZE, empty_source, make_app, replay, until
from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: F401
from tui.widgets.vm_table import VMTable

TABS = ("overview", "network", "storage", "shares", "units", "history")


def drive(vm: str | None = None, keys: tuple[str, ...] = ()) -> Callable[[Pilot], Awaitable[None]]:
    """Wait for the first poll, put the cursor on VM, press KEYS."""

    async def run_before(pilot: Pilot) -> None:
        app = pilot.app
        await until(pilot, lambda: app.polls >= 1)  # type: ignore[attr-defined]
        if vm is not None:
            table = app.screen.query_one(VMTable)
            table.move_cursor(row=table.get_row_index(vm))
        await pilot.pause()
        if keys:
            await pilot.press(*keys)
        await pilot.pause()

    return run_before


def test_main_screen(snap_compare) -> None:
    """Host totals, every lab VM (running, stale, declarative, crash-looping, stopped,
    broken) with state markers, CPU sparklines, and web's Overview below."""
    assert snap_compare(make_app(replay()), terminal_size=SIZE, run_before=drive("web"))


def test_main_screen_at_80_columns_scrolled_right(snap_compare) -> None:
    """80x24, read-only: the reason fits the header; vCPU and Hypervisor left out; scrolled to
    the right end, the Name column stays pinned."""

    async def run_before(pilot: Pilot) -> None:
        await drive("web")(pilot)
        table = pilot.app.screen.query_one(VMTable)
        table.scroll_to(x=table.max_scroll_x, animate=False)
        await pilot.pause()

    assert snap_compare(
        make_app(replay(), read_only=True), terminal_size=(80, 24), run_before=run_before
    )


@pytest.mark.parametrize("tab", TABS[1:])
def test_detail_tab(snap_compare, tab: str) -> None:
    """Each detail tab for web (tap, 9p share, volume, helper units, CPU/memory history)."""
    key = str(TABS.index(tab) + 1)
    assert snap_compare(make_app(replay()), terminal_size=SIZE, run_before=drive("web", (key,)))


def test_console_network_with_macvtap(snap_compare) -> None:
    assert snap_compare(make_app(replay()), terminal_size=SIZE, run_before=drive("console", ("2",)))


def test_history_after_a_busy_loop(snap_compare) -> None:
    """console ran a busy loop for a third of the recording: the CPU graph shows it."""
    assert snap_compare(make_app(replay()), terminal_size=SIZE, run_before=drive("console", ("6",)))


def test_empty_state(snap_compare) -> None:
    assert snap_compare(
        make_app(empty_source("/var/lib/microvms")), terminal_size=SIZE, run_before=drive()
    )


def test_state_dir_unreadable(snap_compare) -> None:
    source = empty_source(
        "/var/lib/microvms", error="cannot read the state dir /var/lib/microvms: Permission denied"
    )
    assert snap_compare(make_app(source), terminal_size=SIZE, run_before=drive())


def test_host_without_systemd(snap_compare) -> None:
    """systemd unreachable (recorded): units unknown with the reason, nothing sampled."""
    assert snap_compare(
        make_app(replay("nosystemd.json")), terminal_size=SIZE, run_before=drive("web")
    )


@pytest.mark.parametrize("tab", TABS[:5])
def test_vm_with_every_problem(snap_compare, tab: str) -> None:
    """`troubled`: QMP timeout, unreadable cgroup, missing tap, missing share source, dead
    virtiofsd, missing volume, failed helper unit, crash-looping, stale."""
    key = str(TABS.index(tab) + 1)
    assert snap_compare(
        make_app(replay("problems.json")), terminal_size=SIZE, run_before=drive("troubled", (key,))
    )


def test_read_only_and_sorted_by_cpu(snap_compare) -> None:
    async def run_before(pilot: Pilot) -> None:
        await drive("web")(pilot)
        pilot.app.screen.action_sort_by("cpu")  # type: ignore[attr-defined]
        await pilot.pause()

    assert snap_compare(
        make_app(replay(), read_only=True), terminal_size=SIZE, run_before=run_before
    )


def test_help_screen(snap_compare) -> None:
    assert snap_compare(
        make_app(replay()), terminal_size=SIZE, run_before=drive("web", ("question_mark",))
    )


def test_light_theme(snap_compare) -> None:
    assert snap_compare(
        make_app(replay(), theme="textual-light"), terminal_size=SIZE, run_before=drive("web")
    )
