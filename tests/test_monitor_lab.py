"""The monitor against the real lab host (the session `lab` fixture), driven through Pilot.

Each test waits on the app's own state with a deadline (never fixed sleeps) and puts the lab
back as it found it.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import wait_for
from tests.monitor_support import SIZE, until
from tui.app import MicroVMApp
from tui.config import load_settings
from tui.feed import REMOTE_EVERY, LiveSource
from tui.host.inventory import list_vms
from tui.host.links import LinkTable
from tui.host.model import Inventory, UnitState
from tui.widgets.vm_table import VMTable

pytestmark = pytest.mark.lab


@pytest.fixture(scope="module")
def settings(lab: Any) -> Any:
    return load_settings(lab.config_path)


def make(settings: Any, source: Any = None) -> MicroVMApp:
    return MicroVMApp(settings, source, tty_watch=False)


def sample(app: MicroVMApp, name: str) -> Any:
    return app.snapshot.samples.get(name) if app.snapshot else None


def state_cell(app: MicroVMApp, name: str) -> str:
    table = app.main_screen.query_one(VMTable)
    return table.get_cell(name, "state").plain if name in table.rows else ""


def console(lab: Any, text: str) -> None:
    path = lab.state_dir / "console" / "console-console.sock"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(str(path))
        sock.sendall(text.encode())
        time.sleep(0.2)  # let qemu read it before we hang up


async def test_a_busy_guest_shows_about_one_vcpu(lab: Any, settings: Any) -> None:
    app = make(settings)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: (s := sample(app, "console")) and s.qmp_status, 30)
        console(lab, "\nwhile :; do :; done &\n")
        try:
            # "A few polls": the next poll sees part of the loop, the one after the whole.
            start = app.polls
            await until(
                pilot,
                lambda: (s := sample(app, "console")) and (s.cpu_pct_of_vcpus or 0) > 60,
                timeout=20,
            )
            assert app.polls - start <= 6
            cell = app.main_screen.query_one(VMTable).get_cell("console", "cpu").plain
            assert float(cell.split("%")[0]) > 60
            assert cell.rstrip()[-1] in "▅▆▇█"  # the sparkline's newest bar is high
        finally:
            console(lab, "\nkill %1\n")
        await until(
            pilot,
            lambda: (s := sample(app, "console")) and (s.cpu_pct_of_vcpus or 100) < 30,
            timeout=30,
        )


async def test_a_vm_stopped_behind_the_apps_back_changes_within_two_polls(
    lab: Any, settings: Any
) -> None:
    units = ("microvm@idle.service", "microvm-tap-interfaces@idle.service")
    lab.manager.systemctl("start", "--no-block", units[0])
    try:
        app = make(settings)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: state_cell(app, "idle").startswith("●"), timeout=90)
            lab.manager.systemctl("stop", units[0])
            stopped_at = app.polls
            await until(pilot, lambda: not state_cell(app, "idle").startswith("●"), 10)
            assert app.polls - stopped_at <= 2
            assert state_cell(app, "idle") == "○ inactive"
            assert "idle" not in app.snapshot.samples
    finally:
        lab.manager.systemctl("stop", *units, check=False)


# --- a control socket that accepts and never answers ------------------------------------


class HungListener:
    """A unix socket that accepts connections and never says a word."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(16)
        self.conns: list[socket.socket] = []
        self.accepted = 0
        self._stop = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.sock.settimeout(0.2)
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            self.accepted += 1
            self.conns.append(conn)

    def close(self) -> None:
        self._stop = True
        self.thread.join(2)
        for c in self.conns:
            c.close()
        self.sock.close()


class WithFakeRunning(LiveSource):
    """The lab's listing, with the fake VM `hung` made to look running (its unit's MainPID is
    a `sleep` of ours): the unit cannot exist in the lab's manager, its socket can."""

    def __init__(self, settings: Any, pid: int) -> None:
        super().__init__(settings)
        self.pid = pid

    def listing(self) -> tuple[Inventory, LinkTable | None]:
        inv, links = super().listing()
        for vm in inv.vms:
            if vm.name == "hung":
                vm.unit = UnitState(
                    name="microvm@hung.service", load="loaded", active="active",
                    sub="running", main_pid=self.pid, restarts=0,
                )  # fmt: skip
        return inv, links


@pytest.fixture
def hung_state_dir(lab: Any) -> Iterator[Path]:
    """A state dir of links to the lab's running VMs plus `hung`, a copy of `idle`'s dir
    (same runner: socket `idle.sock` in *this* dir) with a listener that never answers."""
    root = Path(tempfile.mkdtemp(prefix="mvtui-hung-", dir="/var/tmp"))
    listener = None
    try:
        for name in ("web", "db", "decl", "console"):
            (root / name).symlink_to(lab.state_dir / name)
        shutil.copytree(lab.state_dir / "idle", root / "hung", symlinks=True)
        for leftover in (root / "hung").glob("*.sock"):
            leftover.unlink()
        listener = HungListener(root / "hung" / "idle.sock")
        yield root
    finally:
        if listener is not None:
            listener.close()
        shutil.rmtree(root, ignore_errors=True)


async def test_a_hung_qmp_socket_times_out_while_the_others_update(
    settings: Any, hung_state_dir: Path
) -> None:
    host = dataclasses.replace(settings.host, state_dir=hung_state_dir)
    sleeper = subprocess.Popen(["sleep", "600"])
    try:
        source = WithFakeRunning(host, sleeper.pid)
        app = make(dataclasses.replace(settings, host=host), source)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: sample(app, "hung") is not None, 30)
            await until(
                pilot, lambda: "timeout" in sample(app, "hung").reasons.get("qmp_status", ""), 15
            )
            assert sample(app, "hung").qmp_status is None
            # The session's deadline is what is left of the poll's 1 s bound when it starts
            # (a loaded machine starts it late): never more than 1.0 s.
            reason = sample(app, "hung").reasons["qmp_status"]
            assert re.match(r"QMP timeout after (0\.[1-9]|1\.0) s", reason), reason
            # The others keep updating, poll after poll, with answers from their sockets
            # (asked every REMOTE_EVERY polls when not on screen, as web is not).
            seen: list[float] = []
            ages: list[int] = []
            for _ in range(REMOTE_EVERY + 1):
                polls = app.polls
                await until(pilot, lambda polls=polls: app.polls > polls, 10)
                web = sample(app, "web")
                assert web.qmp_status == "running"
                assert "timeout" in sample(app, "hung").reasons["qmp_status"]
                seen.append(web.t)
                ages.append(web.remote_age)
                # One hung VM costs a poll the sampler's deadline, never more.
                assert app.snapshot.poll_ms < 1000 * (1.0 + 0.2) + 800
            assert seen == sorted(set(seen))
            assert 0 in ages and max(ages) < REMOTE_EVERY
            # The detail pane says why.
            table = app.main_screen.query_one(VMTable)
            table.move_cursor(row=table.get_row_index("hung"))
            await pilot.pause()
            pane = app.main_screen.query_one("#view-overview")
            assert "QMP timeout after 1.0 s" in "\n".join(pane.plain_lines)
    finally:
        sleeper.kill()
        sleeper.wait()


def qmp_greeting_time(path: str) -> float:
    """Connect like microvm-shutdown and time the greeting; then ask the status and leave."""
    t0 = time.monotonic()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5)
        sock.connect(path)
        reader = sock.makefile("rb")
        greeting = reader.readline()
        elapsed = time.monotonic() - t0
        assert b"QMP" in greeting
        sock.sendall(b'{"execute":"qmp_capabilities"}\n')
        assert b"return" in reader.readline()
    return elapsed


async def test_microvm_shutdown_gets_the_qmp_greeting_while_monitoring(
    lab: Any, settings: Any
) -> None:
    app = make(settings)
    path = str(lab.state_dir / "web" / "web.sock")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: (s := sample(app, "web")) and s.qmp_status, 30)
        times: list[float] = []
        errors: list[BaseException] = []

        def client() -> None:
            try:
                for _ in range(12):  # over several of the app's polls
                    times.append(qmp_greeting_time(path))
                    time.sleep(0.25)
            except BaseException as exc:
                errors.append(exc)

        polls = app.polls
        thread = threading.Thread(target=client)
        thread.start()
        await until(pilot, lambda: not thread.is_alive(), 60)
        assert not errors, errors
        assert app.polls - polls >= 2  # the app was polling web meanwhile
        assert max(times) < 1.0, times
        assert sample(app, "web").qmp_status == "running"


# --- real traffic toward a guest, over a tap and over a macvtap ---------------------------

SENDER = """
import socket, sys, time
ifname, dst, total, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
s.bind((ifname, 0))
frame = bytes.fromhex(dst.replace(":", "")) + bytes.fromhex("020000000001") + b"\\x88\\xb5"
frame += bytes(1400)
sent, t0 = 0, time.monotonic()
while sent < total:
    if sent > total * (time.monotonic() - t0) / seconds:
        time.sleep(0.005)  # evenly over SECONDS, so several polls see it
        continue
    try:
        sent += s.send(frame)
    except OSError:  # the queue is full: the guest is slow under TCG
        time.sleep(0.005)
print(sent)
"""


def guest_run(lab: Any, command: str) -> str:
    """Run COMMAND in the console guest's shell (its serial socket); its output."""
    path = lab.state_dir / "console" / "console-console.sock"
    tag = f"MVT{time.monotonic_ns()}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(1)
        sock.connect(str(path))
        sock.sendall(f"\necho {tag}B; {command}; echo {tag}E\n".encode())
        out = b""
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                out += sock.recv(65536)
            except TimeoutError:
                continue
            text = out.decode(errors="replace").replace("\r", "")
            start, end = text.rfind(f"{tag}B\n"), text.rfind(f"{tag}E\n")
            if 0 <= start < end:
                return text[start + len(tag) + 2 : end]
    raise AssertionError(f"the console guest did not run {command!r}: {out[-300:]!r}")


def guest_bytes(lab: Any) -> dict[str, tuple[int, int]]:
    """The guest's own counters, by MAC address: (rx bytes, tx bytes)."""
    out = guest_run(
        lab, "for i in /sys/class/net/eth*; do echo $(cat $i/address) "
        "$(cat $i/statistics/rx_bytes) $(cat $i/statistics/tx_bytes); done",
    )  # fmt: skip
    found = {}
    for line in out.splitlines():
        mac, rx, tx = line.split()
        found[mac] = (int(rx), int(tx))
    return found


def send_toward(lab: Any, via: str, mac: str, total: int, seconds: float) -> subprocess.Popen:
    return subprocess.Popen(
        ["ip", "netns", "exec", lab.netns, sys.executable, "-c", SENDER,
         via, mac, str(total), str(seconds)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["tap", "macvtap"])
async def test_traffic_toward_the_guest_shows_as_received(
    lab: Any, settings: Any, kind: str
) -> None:
    """A few MB sent toward `console` over its tap, then over its macvtap: the guest's own
    counters say it received them, and so must the app (↓, the guest's rx). A tap counts from
    the host's end (its tx is the guest's rx), a macvtap from the guest's (its rx)."""
    spec = lab.spec("console")
    nic = next(i for i in console_interfaces(lab) if i.type == kind)
    guest_run(lab, "for i in /sys/class/net/eth*; do ip link set ${i##*/} up; done")
    # Into the tap itself; for the macvtap, into the far end of its lower link, as traffic
    # from the network would come.
    via = nic.id if kind == "tap" else "uplink0-peer"
    assert spec.macvtap and spec.tap
    total, seconds = 4_000_000, 4.0
    app = make(settings)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: (s := sample(app, "console")) and nic.id in s.net, 30)
        before = guest_bytes(lab)[nic.mac]
        sender = send_toward(lab, via, nic.mac, total, seconds)
        try:
            rate = await until(
                pilot,
                lambda: (
                    (s := sample(app, "console"))
                    and (r := s.net.get(nic.id))
                    and r.guest_rx_bps > 200_000
                    and r
                ),
                timeout=seconds + 10,
            )
            assert rate.guest_tx_bps < 20_000, rate
            cell = app.main_screen.query_one(VMTable).get_cell("console", "net").plain
            down, up = cell.split()
            assert down.startswith("↓") and down.endswith(("KiB/s", "MiB/s")), cell
            assert up.startswith("↑") and up.endswith("B/s"), cell
        finally:
            sent = int(sender.communicate(timeout=seconds + 30)[0])
    after = guest_bytes(lab)[nic.mac]
    assert sent >= total
    assert after[0] - before[0] >= 0.9 * sent  # the guest received them
    assert after[1] - before[1] < 0.05 * sent  # and sent little


def console_interfaces(lab: Any) -> list[Any]:
    vm = next(v for v in list_vms(lab.settings, links=False).vms if v.name == "console")
    return vm.interfaces


# --- a helper unit that failed for real -----------------------------------------------------

TAP_FAILED = "microvm-tap-interfaces@idle.service failed (start/restart resets it): "
TAP_ERROR = "ioctl(TUNSETIFF): Device or resource busy"
TAP_UNIT = "microvm-tap-interfaces@idle.service"


def ip_in_lab(lab: Any, *args: str) -> None:
    subprocess.run(["ip", "-n", lab.netns, *args], check=True, capture_output=True, timeout=10)


def helper_line(lab: Any, since: float) -> str:
    """Whether journald has the tap helper's error line written since SINCE ("" not yet) and
    gave it its unit ("unit"). Under the lab's user manager journald finds a line's unit only
    from the writer's cgroup, so a helper reaped before journald read its line (a loaded
    machine) leaves the line without one ("no unit"); PID 1 on a host passes the unit's name
    with the stream, so there it always has one."""
    argv = [*lab.settings.journalctl_argv(), "--output=json", "--all", f"--since=@{since:.6f}"]
    argv.append("SYSLOG_IDENTIFIER=microvm-tap-interfaces@idle")
    out = subprocess.run(argv, capture_output=True, timeout=30, check=False).stdout
    for raw in out.splitlines():
        record = json.loads(raw)
        if TAP_ERROR in str(record.get("MESSAGE")):
            return "unit" if record.get("_SYSTEMD_UNIT") == TAP_UNIT else "no unit"
    return ""


async def test_a_failed_helper_is_the_vms_problem_and_start_resets_it(
    lab: Any, settings: Any
) -> None:
    """idle's tap cannot be made (its name is taken, as an altname of the lab's uplink peer):
    microvm-tap-interfaces@idle fails for real, so does the VM's start ("a dependency job
    failed"). The table, the Overview and `list` say so with the helper's last log line;
    once the name is free again, start resets exactly that helper first and says so."""
    from tui.host.actions import operations as ops

    units = ("microvm@idle.service", TAP_UNIT)
    ip_in_lab(lab, "link", "property", "add", "dev", "uplink0-peer", "altname", "vm-idle")
    freed = False
    try:
        for _attempt in range(3):
            since = time.time()
            started = lab.manager.systemctl("start", units[0], check=False)
            assert started.returncode != 0
            line = wait_for(lambda t=since: helper_line(lab, t), 60, what="the helper's line")
            if line == "unit":
                break
            lab.manager.systemctl("reset-failed", *units, check=False)
        else:
            pytest.fail("journald never gave the helper's line its unit in 3 tries")

        def idle_problems() -> list[str]:
            data = json.loads(
                subprocess.run(
                    [sys.executable, "-m", "tui", "list", "--json",
                     "--config", str(lab.config_path)],
                    capture_output=True, text=True, check=True, timeout=60,
                ).stdout
            )  # fmt: skip
            return next(vm for vm in data["vms"] if vm["name"] == "idle")["problems"]

        # The helper's line is in the journal with its unit: the reason says it (until journald
        # had it, the reason was the unit's result, "result exit-code").
        wait_for(lambda: idle_problems() == [TAP_FAILED + TAP_ERROR], 60, what="the reason")
        app = make(settings)
        async with app.run_test(size=SIZE) as pilot:
            table = app.main_screen.query_one(VMTable)
            await until(pilot, lambda: "idle" in table.rows, 30)
            assert table.get_cell("idle", "problems").plain.startswith(
                "⚠ 1: microvm-tap-interfaces@idle"
            )
            table.move_cursor(row=table.get_row_index("idle"))
            await pilot.pause()
            overview = "\n".join(app.main_screen.query_one("#view-overview").plain_lines)
            assert TAP_ERROR in overview
        ip_in_lab(lab, "link", "property", "del", "dev", "uplink0-peer", "altname", "vm-idle")
        freed = True
        log: list[str] = []
        ops.start(lab.settings, "idle", ops.Reporter(log=log.append))
        assert log[0] == (
            "systemctl reset-failed microvm-tap-interfaces@idle.service (failed helper units)"
        )
        assert log[1] == "systemctl start microvm@idle.service"
        vm = next(v for v in list_vms(lab.settings, links=False).vms if v.name == "idle")
        assert vm.problems == [] and vm.unit.active == "active"
    finally:
        if not freed:
            ip_in_lab(lab, "link", "property", "del", "dev", "uplink0-peer", "altname", "vm-idle")
        lab.manager.systemctl("stop", *units, check=False)
        lab.manager.systemctl("reset-failed", *units, check=False)


async def test_memory_says_which_cgroup_it_came_from_or_why_not(lab: Any, settings: Any) -> None:
    """The lab's units get no v1 memory cgroup of their own on a hybrid machine whose manager
    runs inside another memory cgroup (systemd makes them only where its v1 path matches its
    ControlGroup): QEMU then sits in that shared cgroup, and the app must not take its figures
    for the VM's. Where the unit has one (v2, or a matching v1 path), it is used."""
    from tui.host.sampling import cgroup

    app = make(settings)
    async with app.run_test(size=SIZE) as pilot:
        web = await until(pilot, lambda: (s := sample(app, "web")) and s.mem_host_bytes and s, 30)
        unit = next(v.unit for v in app.snapshot.inventory.vms if v.name == "web")
        layout = cgroup.host_layout()
        own = cgroup.process_v1_cgroup(web.pid, "memory")
        if layout.v2_has("memory") or own == unit.control_group:
            assert web.mem_host_source.startswith("cgroup"), web.mem_host_source
        elif own is not None and not own.endswith("/microvm@web.service"):
            assert web.mem_host_source == "process RssAnon+RssShmem"
            assert web.reasons["mem_host_cgroup"] == (
                f"its process is in {own} of the v1 memory hierarchy, not a cgroup of its own"
            )
        else:
            assert web.mem_host_source == "cgroup v1 memory.stat"
        table = app.main_screen.query_one(VMTable)
        table.move_cursor(row=table.get_row_index("web"))
        await pilot.pause()
        lines = app.main_screen.query_one("#view-overview").plain_lines
        footprint = next(line for line in lines if "host footprint" in line)
        assert footprint.split("host footprint", 1)[1].strip().endswith("MiB")
