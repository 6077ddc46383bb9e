"""The fleet view (``--all-hosts``) from recorded lab data, no lab needed: ``FleetSource`` joins
hosts under ``HOST/NAME`` keys without one host waiting for another; the app's fleet screen
lists every host's VMs with a Host column, host rows with reachability, a host switcher (``:``
and the palette's "Host: NAME"), filter and sort across hosts, and Enter opens the VM's usual
detail; actions go to each VM's host (tests/test_fleet_actions.py).

SVG: ``snapshots/test_fleet_view/`` (tests/snapshot_support.py); refresh with
``--snapshot-update`` for exactly these tests.
"""

from __future__ import annotations

import dataclasses
import threading
import time

from textual.pilot import Pilot
from textual.screen import Screen

from tests.monitor_support import SIZE, make_app, replay, settings, until
from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: F401
from tui.actions import ACTIONS, ActionId
from tui.agent.client import RemoteHostError
from tui.agent.fleet_jobs import CREATE_REFUSED
from tui.app import MicroVMApp
from tui.feed import Snapshot
from tui.feed.fleet import FLEET_REMOTE, FleetSnapshot, FleetSource
from tui.host.text import is_clean
from tui.screens.fleet import FleetScreen, HostPicker
from tui.widgets.fleet_table import FleetTable, HostsTable

LAB_VMS = ["broken", "console", "crashy", "db", "decl", "idle", "web"]
REFUSED = "ssh: connect to host 127.0.0.1 port 1: Connection refused"


class FakeDownHost:
    """A remote host whose every poll fails as an unreachable host's does (RemoteSource's
    error, ssh's own line)."""

    def __init__(self, name: str, reason: str = REFUSED) -> None:
        self.name = name
        self.reason = reason
        self.polls = 0

    def poll(self, focus: str | None = None) -> Snapshot:
        self.polls += 1
        raise RemoteHostError(self.name, self.reason)

    def close(self) -> None:
        pass


class StuckHost:
    """A host whose poll hangs until released (a host that never answers)."""

    def __init__(self) -> None:
        self.release = threading.Event()

    def poll(self, focus: str | None = None) -> Snapshot:
        self.release.wait(60)
        raise RemoteHostError("stuck", "released")

    def close(self) -> None:
        self.release.set()


def fleet(interval: float = 3600.0, **extra: object) -> FleetSource:
    sources = {"local": replay(), "far": replay(), **extra}
    return FleetSource(sources, local="local", interval=interval)  # type: ignore[arg-type]


# --- the source -------------------------------------------------------------------------------


def test_fleet_keys_are_host_qualified_and_a_down_host_says_why() -> None:
    source = fleet(gone=FakeDownHost("gone"))
    try:
        snap = source.poll("far/web")
    finally:
        source.close()
    assert isinstance(snap, FleetSnapshot)
    keys = [vm.name for vm in snap.inventory.vms]
    assert keys == [f"local/{n}" for n in LAB_VMS] + [f"far/{n}" for n in LAB_VMS]
    assert snap.members["far/web"] == ("far", "web")
    assert set(snap.samples) <= set(keys) and "far/web" in snap.samples
    assert snap.samples["far/web"].name == "far/web"
    assert all(k.startswith(("local/", "far/")) for k in snap.crash_looping)
    assert snap.history["local/web"]  # the replayed history, under the fleet key
    hosts = {s.name: s for s in snap.hosts}
    assert [s.name for s in snap.hosts] == ["local", "far", "gone"]
    assert hosts["local"].local and hosts["local"].reachable
    assert hosts["far"].reachable and not hosts["far"].local
    assert not hosts["gone"].reachable
    assert hosts["gone"].error == REFUSED
    assert source.members["far"].focus == "web" and source.members["local"].focus is None
    assert snap.hostname == "3 hosts, 2 reachable"


class FocusHost:
    """A host that remembers the focus of each poll and what it was told between polls (a
    remote host's agent is told with ``set_focus``)."""

    def __init__(self) -> None:
        self.source = replay()
        self.polled: list[str | None] = []
        self.told: list[str | None] = []

    def set_focus(self, focus: str | None) -> None:
        self.told.append(focus)

    def poll(self, focus: str | None = None) -> Snapshot:
        self.polled.append(focus)
        return self.source.poll(focus)

    def close(self) -> None:
        pass


def test_a_new_focus_is_polled_at_once_on_its_host() -> None:
    """The fleet's members poll every hour here: a poll with the new focus, and the host told
    of it, can only come from the focus change; the fleet's poll returns with it."""
    near, far = FocusHost(), FocusHost()
    source = FleetSource({"local": near, "far": far}, local="local", interval=3600.0)  # type: ignore[dict-item]
    try:
        source.poll(None)  # the first answers
        assert far.polled == [None] and far.told == []
        source.poll("far/web")  # returns with the focused host's poll done
        assert far.told == ["web"] and far.polled == [None, "web"]
        assert near.polled == [None] and near.told == []  # another host's VM: not polled
        source.poll("far/web")  # the same focus: no poll
        assert far.told == ["web"]
    finally:
        source.close()
    assert far.polled == [None, "web"]


def test_a_host_that_never_answers_holds_up_no_other() -> None:
    stuck = StuckHost()
    down = FakeDownHost("gone")
    source = FleetSource(
        {"local": replay(), "stuck": stuck, "gone": down},  # type: ignore[dict-item]
        local="local",
        interval=0.05,
        first_wait=0.5,
    )
    try:
        t0 = time.monotonic()
        snap = source.poll()
        assert time.monotonic() - t0 < 5  # the first poll's bounded wait, not the stuck host's
        hosts = {s.name: s for s in snap.hosts}
        assert hosts["local"].reachable
        assert not hosts["stuck"].answered and hosts["stuck"].error is None
        first = hosts["local"].polls
        # The others keep polling (and the down host keeps retrying) while one host hangs.
        until_polls = time.monotonic() + 10
        while source.members["local"].copy().polls < first + 3 or down.polls < 3:
            assert time.monotonic() < until_polls, "the other hosts stopped polling"
            with source.members["local"].changed:
                source.members["local"].changed.wait(0.5)
        assert not source.members["stuck"].copy().answered
    finally:
        source.close()


# --- the app ------------------------------------------------------------------------------------


def fleet_app(source: FleetSource) -> MicroVMApp:
    return MicroVMApp(settings(), source, tty_watch=False, remote=FLEET_REMOTE)


async def first_fleet(pilot: Pilot) -> FleetScreen:
    app = pilot.app
    await until(pilot, lambda: app.polls >= 1 and isinstance(app.screen, FleetScreen))  # type: ignore[attr-defined]
    screen = app.screen
    assert isinstance(screen, FleetScreen)
    await until(pilot, lambda: screen.table.row_count > 0)
    await pilot.pause()
    return screen


def test_fleet_view_snapshot(snap_compare) -> None:
    """Three hosts: this one and a second with the same recorded VMs (same names, one table,
    a Host column), and one down with ssh's reason; host rows with VM counts by state,
    drift, CPU and memory."""
    assert snap_compare(
        fleet_app(fleet(gone=FakeDownHost("gone"))), terminal_size=SIZE, run_before=first_fleet
    )


async def test_fleet_view_filter_sort_switch_and_enter() -> None:
    app = fleet_app(fleet(gone=FakeDownHost("gone", "ssh: \x1b[31mevil\x1b]0;t\x07 reason")))
    async with app.run_test(size=SIZE) as pilot:
        screen = await first_fleet(pilot)
        table = screen.query_one(FleetTable)
        assert table.row_count == 2 * len(LAB_VMS)
        hosts = screen.query_one(HostsTable)
        assert hosts.row_count == 3
        gone = " ".join(c.plain for c in hosts.get_row("gone"))
        assert "down: ssh: " in gone and "evil" in gone and is_clean(gone)
        # Actions go to each VM's host (tests/test_fleet_actions.py); this host's as root,
        # and far here is a recording without an agent: its VMs take none, said in one line.
        assert app.read_only_reason is None
        assert app.actions.runner.refusal("far/web") == (
            "far's VMs take no actions here: no [hosts.far] agent carries them."
        )

        # The filter works across hosts: "web" is on both.
        await pilot.press("slash", *"web", "enter")
        await until(pilot, lambda: table.row_count == 2)
        assert sorted(k for k in table.keys) == ["far/web", "local/web"]
        screen.query_one("#fleet-filter").value = ""  # type: ignore[attr-defined]
        await until(pilot, lambda: table.row_count == 2 * len(LAB_VMS))

        # Sort: by host first, then by name across hosts (the two webs side by side).
        assert [k for k in table.keys][:2] == ["local/broken", "local/console"]
        await pilot.press("s")
        order = table.keys[:4]
        assert order == ["local/broken", "far/broken", "local/console", "far/console"]

        # Console and logs go to the VM's own host under its own name (the routing itself,
        # without opening a console on the recorded lab's paths: test_remote_streams.py).
        snap = app.snapshot
        local = app.streams.console(
            next(v for v in snap.inventory.vms if v.name == "local/db"), snap
        )
        assert not isinstance(local, str) and local.vm.name == "db"
        assert local.manager is not app.consoles  # the fleet's own manager of this host's VMs
        far = app.streams.console(next(v for v in snap.inventory.vms if v.name == "far/db"), snap)
        assert far == (
            "Consoles and logs of far's VMs are not available: "
            "no [hosts.far] in the config says how to reach it."
        )

        # The host switcher: ':' and a host; only its VMs.
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, HostPicker))
        await pilot.press("down", "down", "enter")  # All hosts, local, far
        await until(pilot, lambda: table.host == "far")
        assert table.row_count == len(LAB_VMS)
        assert all(k.startswith("far/") for k in table.keys)

        # The palette's "Host: NAME" entries.
        from tui.commands import MonitorCommands

        provider = MonitorCommands(app.screen)
        titles = [c.title for c in provider.commands()]
        assert {"Host: all hosts", "Host: local", "Host: far", "Host: gone"} <= set(titles)
        await app.run_action("show_host('local')")
        await until(pilot, lambda: table.host == "local")

        # Enter: the VM's usual detail on the monitor, under its fleet key.
        table.move_cursor(row=table.get_row_index("local/db"))
        table.focus()
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, FleetScreen))
        assert app.main_screen.selected_name == "local/db"
        assert app.main_screen.views["local/db"].vm.name == "local/db"

        # A VM of a host the config does not name (no ssh to reach it): refused in one line.
        app.main_screen.table.select_name("far/db")
        await pilot.press("l")
        await until(pilot, lambda: any("no [hosts.far]" in n.message for n in app._notifications))
        assert app.screen is app.main_screen
        # ':' comes back to the fleet view.
        await pilot.press("colon")
        await until(pilot, lambda: isinstance(app.screen, FleetScreen))
        assert app.is_running


async def test_the_fleet_tables_draw_again_only_the_rows_that_changed() -> None:
    """A poll with the same figures draws no row again; one VM's new CPU figure draws that
    row alone (and it is what the screen shows); a host's new figure, that host's row."""
    app = fleet_app(fleet())
    async with app.run_test(size=SIZE) as pilot:
        screen = await first_fleet(pilot)
        table, hosts = screen.table, screen.query_one(HostsTable)
        snap = screen.snapshot
        assert snap is not None
        await pilot.pause()
        vms, hosts_drawn = table.render_stats, hosts.render_stats  # RowTable's counters
        assert vms.rendered >= table.row_count and hosts_drawn.rendered >= hosts.row_count

        def drawn() -> tuple[int, int, int, int, int, int]:
            return (
                vms.rendered,
                vms.styled,
                vms.cells_rendered,
                hosts_drawn.rendered,
                hosts_drawn.styled,
                hosts_drawn.cells_rendered,
            )

        before = drawn()
        screen.show(snap)  # an idle host's poll: the same rows, the same figures
        await pilot.pause()
        assert drawn() == before  # no row rendered, no row styled again

        key = "far/db"  # running, not under the cursor
        assert table.selected_key != key
        sample = dataclasses.replace(snap.samples[key], cpu_pct_of_vcpus=77.7)
        screen.show(dataclasses.replace(snap, samples={**snap.samples, key: sample}))
        await pilot.pause()
        # That row alone, and in it that cell alone; the hosts' figures did not change.
        assert drawn() == (before[0] + 1, before[1] + 1, before[2] + 1, *before[3:])
        assert table.get_row(key)[4].plain == "77.7%"
        shown = app.export_screenshot()
        assert "77.7%" in shown

        far = next(h for h in snap.hosts if h.name == "far")
        assert far.snapshot is not None and far.snapshot.host is not None
        busier = dataclasses.replace(far.snapshot.host, cpu_pct=12.5)
        far_now = dataclasses.replace(far, snapshot=dataclasses.replace(far.snapshot, host=busier))
        hosts_now = [far_now if h.name == "far" else h for h in snap.hosts]
        before = drawn()
        screen.show(dataclasses.replace(snap, hosts=hosts_now))
        await pilot.pause()
        assert drawn()[3:] == (before[3] + 1, before[4] + 1, before[5] + 1)
        assert "12.5%" in " ".join(c.plain for c in hosts.get_row("far"))
        assert "12.5%" in app.export_screenshot()

        # The keys still move the cursor (a row's key, kept across polls).
        table.focus()
        first = table.selected_key
        await pilot.press("down")
        assert table.selected_key == table.keys[table.keys.index(first) + 1]
        await pilot.press("end")
        assert table.selected_key == table.keys[-1]
        screen.show(snap)
        await pilot.pause()
        assert table.selected_key == table.keys[-1]


def footer_words(screen: Screen) -> list[str]:
    """What the screen's footer shows: each key's description (Textual's FooterKey)."""
    return [key.description for key in screen.query("FooterKey")]  # type: ignore[attr-defined]


async def test_the_fleet_views_footer_leaves_out_create_and_its_key_says_why() -> None:
    """Create is refused in the fleet view (which host?): the fleet view's footer leaves its
    "New VM" out (so does the monitor's under it), while the one-host monitor shows it; its
    key still says why, in one line, and opens nothing."""
    new_vm = ACTIONS[ActionId.CREATE].description
    one_host = make_app(replay())
    async with one_host.run_test(size=SIZE) as pilot:
        main = one_host.main_screen
        await until(pilot, lambda: one_host.polls >= 1 and "Refresh" in footer_words(main))
        assert new_vm in footer_words(main)

    app = fleet_app(fleet())
    async with app.run_test(size=SIZE) as pilot:
        screen = await first_fleet(pilot)
        await until(pilot, lambda: "Refresh" in footer_words(screen))
        assert new_vm not in footer_words(screen)
        assert not app.main_screen.active_bindings["n"].binding.show
        await pilot.press("n")
        await until(pilot, lambda: app._notifications)
        assert [n.message for n in app._notifications] == [CREATE_REFUSED]
        assert app.screen is screen  # no create dialog


def test_all_hosts_flag_is_the_apps_and_lists_own() -> None:
    from tui.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(["--all-hosts"]).fleet is True
    assert parser.parse_args([]).fleet is False
    listed = parser.parse_args(["list", "--json", "--all-hosts"])
    assert listed.all_hosts is True and listed.fleet is False
