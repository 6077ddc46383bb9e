"""systemd over D-Bus (tui.host.systemd_bus) against the lab's real manager on its real
dbus-daemon: the table follows start/stop/restart and crashes through systemd's signals (a poll
asks the manager nothing), a unit that is not loaded is never loaded by us, and with the bus
gone systemctl answers, with a one-line reason, until the bus is back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jeepney import HeaderFields, Message

from tests.conftest import wait_for
from tui.host.dbus import Connection, Endpoint, method
from tui.host.hostloop import HostLoop
from tui.host.inventory import list_vms
from tui.host.systemd import PATTERNS, unit_states
from tui.host.systemd_bus import MANAGER, NAME, PROPS, ROOT, RULES, UnitWatch, systemd_client

pytestmark = pytest.mark.lab

IDLE = "microvm@idle.service"
CRASHY = "microvm@crashy.service"


def loaded_units(lab: Any) -> set[str]:
    out = lab.manager.systemctl("list-units", "--all", "--output=json", "--", *PATTERNS)
    return {row["unit"] for row in json.loads(out.stdout)}


def shown(lab: Any, unit: str) -> dict[str, str]:
    """`systemctl show` of a unit that is loaded (the test makes sure it is)."""
    props = "ActiveState,SubState,MainPID,NRestarts,ControlGroup"
    out = lab.manager.systemctl("show", "-p", props, "--", unit)
    return dict(line.split("=", 1) for line in out.stdout.splitlines() if "=" in line)


class UnitNews:
    """A second client of the lab's bus, subscribed to the manager: every unit it loads
    (``UnitNew``), even one unloaded again a moment later (which list-units would miss)."""

    def __init__(self, lab: Any, loop: HostLoop) -> None:
        self.loop = loop
        self.loaded: list[str] = []

        def on_signal(message: Message) -> None:
            if message.header.fields.get(HeaderFields.member) == "UnitNew":
                self.loaded.append(message.body[0])

        async def start() -> Connection:
            conn = await Connection.open(Endpoint(lab.manager.bus_path), 10, on_signal)
            await conn.add_matches([RULES[0]], 10)
            await conn.call(method(ROOT, MANAGER, "Subscribe", destination=NAME), 10)
            return conn

        self.conn = loop.run(start(), 20)

    def seen(self) -> list[str]:
        """What was loaded so far: a round trip to the manager first, so every UnitNew it
        sent before answering has arrived."""
        version = method(ROOT, PROPS, "Get", "ss", (MANAGER, "Version"), NAME)
        self.loop.run(self.conn.call(version, 10), 20)
        return list(self.loaded)

    def close(self) -> None:
        self.loop.loop.call_soon_threadsafe(self.conn.close)


@pytest.fixture
def loop() -> Iterator[HostLoop]:
    the_loop = HostLoop(name="mvtui-test-bus")
    yield the_loop
    the_loop.close()


@pytest.fixture
def watch(lab: Any, loop: HostLoop) -> Iterator[UnitWatch]:
    w = UnitWatch(lab.settings, Endpoint(lab.manager.bus_path), loop=loop, retry=0.5)
    wait_for(lambda: w.syncs >= 1 or w.note, 30, what="the first read of the table")
    assert w.note is None, w.note
    yield w
    w.close()


def test_the_lab_settings_name_the_lab_bus_and_the_monitor_follows_it(lab: Any) -> None:
    assert lab.settings.bus_socket() == (lab.manager.bus_path, True)
    client = systemd_client(lab.settings)
    try:
        assert isinstance(client, UnitWatch)
        report = unit_states(client, [CRASHY, "microvm@web.service"])
        assert report.error is None and report.note is None
        web = report.units["microvm@web.service"]
        expected = shown(lab, "microvm@web.service")
        assert (web.active, web.sub) == (expected["ActiveState"], expected["SubState"])
        assert web.main_pid == int(expected["MainPID"])
        assert web.control_group == expected["ControlGroup"]
    finally:
        client.close()


def test_states_follow_start_restart_stop_through_signals(lab: Any, watch: UnitWatch) -> None:
    syncs = watch.syncs

    def idle() -> Any:
        return unit_states(watch, [IDLE]).units[IDLE]

    assert (idle().active, idle().sub, idle().restarts) == ("inactive", "dead", 0)
    try:
        lab.manager.systemctl("start", "--no-block", IDLE)
        running = wait_for(lambda: idle().main_pid and idle(), 60, what="idle running")
        assert (running.active, running.sub) == ("active", "running")
        expected = shown(lab, IDLE)
        assert running.main_pid == int(expected["MainPID"])
        wait_for(lambda: idle().control_group, 10, what="idle's cgroup")
        assert idle().control_group == expected["ControlGroup"]

        # A poll reads the table: systemd is asked nothing, however often we look (meanwhile
        # the watch itself may look up the cgroup of a new main pid: crashy restarts).
        calls, cgroups = watch.calls, watch.cgroup_asks
        for _ in range(50):
            unit_states(watch, [IDLE, CRASHY, "microvm@web.service"])
        assert watch.calls - calls <= watch.cgroup_asks - cgroups  # read in this order

        lab.manager.systemctl("restart", "--no-block", IDLE)
        wait_for(
            lambda: idle().main_pid not in (None, running.main_pid) and idle().active == "active",
            60,
            what="idle restarted with a new pid",
        )
        assert idle().main_pid == int(shown(lab, IDLE)["MainPID"])
    finally:
        lab.manager.systemctl("stop", IDLE)
    stopped = wait_for(lambda: idle().active == "inactive" and idle(), 30, what="idle stopped")
    assert (stopped.sub, stopped.main_pid, stopped.control_group) == ("dead", None, None)
    # Every change came by signal: the table was never read again in full.
    assert watch.syncs == syncs


def test_restarts_grow_on_a_crash_through_signals(lab: Any, watch: UnitWatch) -> None:
    def restarts() -> int:
        return unit_states(watch, [CRASHY]).units[CRASHY].restarts or 0

    first = restarts()
    calls = watch.calls
    # crashy's hypervisor exits a second after each start: systemd restarts it (RestartSec 2s).
    grown = wait_for(lambda: restarts() >= first + 2 and restarts(), 60, what="two more restarts")
    # The counts came in signals; only the new main process's cgroup is asked, once a start
    # (systemd counts a restart before it starts the new process: read the calls first; one
    # start may land between the two reads, and one more before ``first`` was read).
    asked = watch.calls - calls
    now = restarts()
    assert asked <= now - first + 2, (asked, first, now)
    assert int(shown(lab, CRASHY)["NRestarts"]) >= grown
    assert watch.syncs == 1


def test_a_unit_that_is_not_loaded_is_never_loaded_by_the_watch(lab: Any, loop: HostLoop) -> None:
    before = loaded_units(lab)
    assert IDLE not in before
    vms = list_vms(lab.settings, links=False).vms
    idle = next(vm for vm in vms if vm.name == "idle")
    nobody = "microvm@nosuchvm.service"
    names = [idle.unit.name, *(h.name for h in idle.helper_units), nobody]
    news = UnitNews(lab, loop)
    watch = UnitWatch(lab.settings, Endpoint(lab.manager.bus_path), loop=loop)
    try:
        report = unit_states(watch, names)
        assert watch.note is None and watch.syncs == 1
        for name in names:
            unit = report.units[name]
            assert (unit.active, unit.sub, unit.restarts) == ("inactive", "dead", 0), unit
        assert not set(names) & set(news.seen()), news.seen()
    finally:
        watch.close()
        news.close()
    after = loaded_units(lab)
    assert not set(names) & after, set(names) & after


def test_no_bus_means_systemctl_with_a_one_line_reason(lab: Any, loop: HostLoop) -> None:
    watch = UnitWatch(lab.settings, Endpoint(Path(lab.root) / "no-such-bus"), loop=loop)
    try:
        report = unit_states(watch, ["microvm@web.service"])
        assert report.error is None  # systemctl answered
        assert report.units["microvm@web.service"].active == "active"
        assert report.note is not None and "\n" not in report.note
        assert "cannot connect" in report.note and "asking systemctl instead" in report.note
    finally:
        watch.close()


def test_the_bus_going_away_and_back_is_followed(lab: Any, watch: UnitWatch) -> None:
    try:
        lab.manager.systemctl("stop", "dbus.socket", "dbus.service")
        wait_for(lambda: watch.note, 30, what="the watch to notice the bus is gone")
        assert "asking systemctl instead" in watch.note and "\n" not in watch.note
        report = unit_states(watch, ["microvm@web.service"])
        assert report.error is None and report.note == watch.note
        assert report.units["microvm@web.service"].active == "active"
    finally:
        lab.manager.ensure_bus()
    wait_for(lambda: watch.note is None, 30, what="the watch back on the bus")
    assert watch.syncs >= 2
    web = unit_states(watch, ["microvm@web.service"]).units["microvm@web.service"]
    assert web.main_pid == int(shown(lab, "microvm@web.service")["MainPID"])
