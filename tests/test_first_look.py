"""A big host's launch: the first look reads a screenful of state dirs in the table's order
(the rest are counted as still being read), then every VM while systemd has not answered, then
the units; the app shows each of them in turn."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import until_in_app, wait_for
from tests.synthetic_host import make_host
from tui.feed import LiveSource, Prefetched, Snapshot
from tui.feed.live import FirstScreen
from tui.host.inventory import first_names
from tui.host.model import PENDING
from tui.host.settings import HostSettings
from tui.widgets.vm_rows import COLUMNS, STATE_DIR_COLUMNS, first_by_name

ROOT = Path(__file__).resolve().parent.parent
N_VMS = 150
SCREEN = 20


class SilentManager:
    """A unix socket at RUNTIME/bus that takes connections and never says a word: a systemd
    (and bus) that does not answer, as a stopped or swamped manager. ``close`` ends it: every
    connection is closed, and the next one is refused."""

    def __init__(self, runtime: Path) -> None:
        runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.path = runtime / "bus"
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(self.path))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self) -> None:
        if self.sock.fileno() < 0:
            return  # closed already
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.path.unlink(missing_ok=True)
        for conn in self.conns:
            conn.close()


@pytest.fixture
def big_host(tmp_path: Path) -> Iterator[tuple[HostSettings, SilentManager]]:
    state = make_host(tmp_path, N_VMS)
    silent = SilentManager(tmp_path / "run")
    settings = HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(tmp_path / "run")},
        timeout=5.0,
    )
    try:
        yield settings, silent
    finally:
        silent.close()


def _names(snap: Snapshot) -> list[str]:
    return [vm.name for vm in snap.inventory.vms]


def _all_names() -> list[str]:
    return [f"vm{i:04d}" for i in range(N_VMS)]


def test_the_first_look_is_a_screenful_then_every_vm_then_the_units(
    big_host: tuple[HostSettings, SilentManager],
) -> None:
    settings, silent = big_host
    source = LiveSource(settings, first_screen=FirstScreen(count=SCREEN))
    try:
        first = source.first_look()
        assert first.partial
        assert _names(first) == _all_names()[:SCREEN]  # the table's top, by name
        assert first.inventory.unread == N_VMS - SCREEN  # counted, still to be read
        assert all(vm.unit is not None and vm.unit.active == PENDING for vm in first.inventory.vms)
        assert all(vm.vcpu == 2 and vm.hypervisor == "qemu" for vm in first.inventory.vms)

        # systemd does not answer: every VM's state dir now, units still pending.
        every = source.poll()
        assert every.partial and every.inventory.unread == 0
        assert _names(every) == _all_names()
        assert all(vm.unit is not None and vm.unit.active == PENDING for vm in every.inventory.vms)
        assert first.inventory.vms[0].unit.active == PENDING  # what was shown is not changed

        silent.close()  # the manager goes away: the answer is an error, for every VM at once
        units = source.poll()  # the units, shown before the links and samples
        assert units.partial and units.inventory.unread == 0 and units.samples == {}
        assert _names(units) == _all_names()
        assert all(vm.unit is not None and vm.unit.active != PENDING for vm in units.inventory.vms)
        assert units.inventory.systemd_error
        full = source.poll()
        assert not full.partial and _names(full) == _all_names()
        assert full.inventory.systemd_error
    finally:
        source.close()


def test_a_reversed_sort_reads_the_last_names_first(
    big_host: tuple[HostSettings, SilentManager],
) -> None:
    settings, _ = big_host
    source = LiveSource(settings, first_screen=FirstScreen(count=SCREEN, from_end=True))
    try:
        first = source.first_look()
        assert sorted(_names(first)) == _all_names()[-SCREEN:]
        assert first.inventory.unread == N_VMS - SCREEN
    finally:
        source.close()


def test_a_host_that_fits_on_a_screen_is_read_whole_at_once(tmp_path: Path) -> None:
    state = make_host(tmp_path, 12)
    settings = HostSettings(
        state_dir=state,
        systemd_scope="user",
        systemd_env={"XDG_RUNTIME_DIR": str(tmp_path / "no-manager")},
    )
    source = LiveSource(settings, first_screen=FirstScreen(count=SCREEN))
    try:
        first = source.first_look()
        assert first.partial and first.inventory.unread == 0 and len(first.inventory.vms) == 12
        units = source.poll()  # systemd was asked by the first look: its answer, not a 2nd look
        assert units.partial and len(units.inventory.vms) == 12
        assert all(vm.unit is not None and vm.unit.active != PENDING for vm in units.inventory.vms)
        full = source.poll()
        assert not full.partial and len(full.inventory.vms) == 12
    finally:
        source.close()


def test_the_screenful_is_taken_in_the_tables_order_by_lower_case_name() -> None:
    dirs = [Path("/s") / n for n in ("Web", "alpha", "db", "Cache", "zeta")]
    assert [p.name for p in first_names(dirs, 3)] == ["alpha", "Cache", "db"]
    assert [p.name for p in first_names(dirs, 2, from_end=True)] == ["Web", "zeta"]
    assert first_names(dirs, 5) is dirs  # all of them: nothing left to read


def test_which_sorts_the_names_alone_decide() -> None:
    assert first_by_name(None, None) is False  # the default: by name, A to Z
    assert first_by_name("name", True) is True
    assert first_by_name("cpu", None) is True  # biggest first: unknown ones last, Z to A
    assert first_by_name("state", False) is False
    for column in STATE_DIR_COLUMNS:
        assert first_by_name(column, None) is None  # every state dir is read first
    assert first_by_name("gone-column", None) is False  # a stale remembered sort
    assert {c.key for c in COLUMNS} > STATE_DIR_COLUMNS


AS_NOBODY = """
import json, os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
import tui.feed, tui.host.runners.dispatch
from tui.feed.live import FirstScreen
from tui.host.settings import HostSettings
os.setgroups([]); os.setresgid(65534, 65534, 65534); os.setresuid(65534, 65534, 65534)
source = tui.feed.LiveSource(
    HostSettings(state_dir=Path({state!r}), systemd_scope="user",
                 systemd_env={{"XDG_RUNTIME_DIR": "/nonexistent"}}),
    first_screen=FirstScreen(count=5),
)
snap = source.first_look()
print(json.dumps({{"unread": snap.inventory.unread,
                  "vms": {{vm.name: vm.problems for vm in snap.inventory.vms}}}}))
"""


def test_an_unreadable_vm_in_the_first_screenful_says_why_in_one_line() -> None:
    # As nobody (root reads everything): vm0001's state dir is root's only.
    top = Path(tempfile.mkdtemp(prefix="mvtui-first-"))
    try:
        top.chmod(0o755)
        host = make_host(top, 12)
        (host / "vm0001").chmod(0o700)
        code = AS_NOBODY.format(root=str(ROOT), state=str(host))
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
        )
    finally:
        shutil.rmtree(top)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["unread"] == 7
    assert list(seen["vms"]) == [f"vm{i:04d}" for i in range(5)]
    assert seen["vms"]["vm0001"] == ["cannot read the state dir: Permission denied"]
    assert seen["vms"]["vm0000"] == []


class HeldAfterFirst:
    """The app's source, its polls after the first held until ``go`` is set (a test sees the
    first look on screen before anything else comes)."""

    free = 1  # polls answered before ``go``

    def __init__(self, source: Prefetched | LiveSource) -> None:
        self.source = source
        self.go = threading.Event()
        self.polls = 0

    def poll(self, focus: str | None = None) -> Snapshot:
        self.polls += 1
        if self.polls > self.free:
            self.go.wait(60)
        return self.source.poll(focus)

    def close(self) -> None:
        self.go.set()
        self.source.close()


async def test_the_app_shows_the_first_screenful_then_fills_in(
    big_host: tuple[HostSettings, SilentManager],
) -> None:
    from tui.app import MicroVMApp
    from tui.config import Settings
    from tui.widgets.host_header import HostHeader
    from tui.widgets.vm_table import VMTable

    settings, silent = big_host
    source = HeldAfterFirst(Prefetched(LiveSource(settings, first_screen=FirstScreen(SCREEN))))
    app = MicroVMApp(Settings(host=settings), source, tty_watch=False)  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.main_screen.query_one(VMTable)
        header = app.main_screen.query_one(HostHeader)
        await until_in_app(pilot, lambda: app.polls >= 1, 30, what="the first look")
        assert table.order == _all_names()[:SCREEN]
        assert table.selected_name == "vm0000"
        assert "asking systemd" in str(table.get_cell("vm0000", "state"))
        text = header.text.plain
        assert f"{N_VMS} VMs (reading {N_VMS - SCREEN} more state dirs…)" in text, text
        source.go.set()
        await until_in_app(
            pilot, lambda: len(table.order) == N_VMS, 60, what="every VM in the table"
        )
        assert table.order == _all_names()
        assert "reading" not in header.text.plain
        silent.close()
        await until_in_app(
            pilot,
            lambda: app.snapshot is not None and not app.snapshot.partial,
            60,
            what="systemd's answer (an error)",
        )
        assert "asking systemd" not in str(table.get_cell("vm0000", "state"))


def test_the_agent_sends_a_big_hosts_rest_at_once_not_an_interval_later(
    tmp_path: Path, big_host: tuple[HostSettings, SilentManager]
) -> None:
    """Over the agent: the first screenful, then every VM while systemd is silent, then (the
    manager gone) the units, each at once although the interval is an hour."""
    from tests.test_agent_server import read_message, send
    from tui.agent import codec, protocol

    settings, silent = big_host
    config = tmp_path / "agent.toml"
    config.write_text(
        f'[host]\nsystemd_scope = "user"\ntimeout = 5\n'
        f'systemd_env = {{ XDG_RUNTIME_DIR = "{settings.systemd_env["XDG_RUNTIME_DIR"]}" }}\n'
    )
    config.chmod(0o600)
    argv = ["--config", str(config), "--state-dir", str(settings.state_dir), "agent"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui", *argv],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert read_message(proc)["type"] == "hello"
        send(proc, {"type": "start", "protocol": protocol.PROTOCOL, "app": "t", "interval": 3600})
        state = read_message(proc)["full"]
        first = codec.snapshot_from_wire(state)
        assert first.partial and len(first.inventory.vms) == 64  # FIRST_LOOK_VMS
        assert first.inventory.unread == N_VMS - 64
        codec.apply_patch(state, read_message(proc)["patch"])
        every = codec.snapshot_from_wire(state)
        assert every.partial and _names(every) == _all_names() and every.inventory.unread == 0
        silent.close()
        codec.apply_patch(state, read_message(proc, timeout=30)["patch"])
        units = codec.snapshot_from_wire(state)  # the units, before the links and samples
        assert units.partial and units.inventory.systemd_error
        codec.apply_patch(state, read_message(proc, timeout=30)["patch"])
        full = codec.snapshot_from_wire(state)
        assert not full.partial and full.inventory.systemd_error
    finally:
        proc.kill()
        proc.wait()


class _Stepped:
    """A source whose first look waits for ``go`` (or raises ``fail``): Prefetched's thread."""

    def __init__(self, answer: Snapshot, fail: BaseException | None = None) -> None:
        self.answer, self.fail = answer, fail
        self.go, self.done = threading.Event(), threading.Event()

    def first_look(self) -> Snapshot:
        try:
            self.go.wait(60)
            if self.fail is not None:
                raise self.fail
            return self.answer
        finally:
            self.done.set()

    def poll(self, focus: str | None = None) -> Snapshot:
        return self.answer

    def close(self) -> None:
        self.go.set()


def test_prefetched_gives_its_first_answer_only_once_it_is_in(tmp_path: Path) -> None:
    from tui.host.model import Inventory

    answer = Snapshot(inventory=Inventory(state_dir=tmp_path), partial=True)
    stepped = _Stepped(answer)
    source = Prefetched(stepped)  # type: ignore[arg-type]
    assert source.ready() is None  # not in yet: never waits
    stepped.go.set()
    # The thread puts the answer right after the first look returns (no event for that).
    assert wait_for(source.ready, 10, 0.01, what="the first answer") is answer
    assert source.ready() is None  # taken: the next answers are polls
    assert source.poll() is answer


def test_prefetched_leaves_a_failed_first_look_to_the_poll(tmp_path: Path) -> None:
    from tui.host.model import Inventory

    stepped = _Stepped(Snapshot(inventory=Inventory(state_dir=tmp_path)), OSError("no dir"))
    source = Prefetched(stepped)  # type: ignore[arg-type]
    stepped.go.set()
    stepped.done.wait(10)
    assert source.ready() is None
    with pytest.raises(OSError, match="no dir"):
        source.poll()


class ReadyThenHeld(HeldAfterFirst):
    """A source whose first answer is in before the app starts (``ready``) and whose polls
    are all held until ``go``: what the app shows first came without a poll."""

    free = 0

    def __init__(self, first: Snapshot, source: LiveSource) -> None:
        super().__init__(source)
        self.first: Snapshot | None = first

    def ready(self) -> Snapshot | None:
        first, self.first = self.first, None
        return first


async def test_a_first_look_read_while_textual_loaded_is_shown_without_a_poll(
    big_host: tuple[HostSettings, SilentManager],
) -> None:
    """The first look, read in a thread while the app loaded, is on screen as soon as the
    main screen is composed: in its first frame, not after a frame of an empty table and a
    poll's round trip."""
    from tui.app import MicroVMApp
    from tui.config import Settings
    from tui.widgets.vm_table import VMTable

    settings, _ = big_host
    live = LiveSource(settings, first_screen=FirstScreen(SCREEN))
    source = ReadyThenHeld(live.first_look(), live)
    app = MicroVMApp(Settings(host=settings), source, tty_watch=False)  # type: ignore[arg-type]
    async with app.run_test(size=(160, 48)) as pilot:
        table = app.main_screen.query_one(VMTable)
        # Already at the first await: shown while the main screen was mounted.
        assert app.polls == 1 and table.order == _all_names()[:SCREEN]
        await until_in_app(pilot, lambda: source.polls == 1, 30, what="the next poll asked")
        assert app.polls == 1  # held: what is shown did not come from a poll
        source.go.set()
        await until_in_app(pilot, lambda: app.polls >= 2, 60, what="the next poll shown")
