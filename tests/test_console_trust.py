"""A hostile QMP answer must not steer a file open (tui.host.console.trust).

A fake QMP server (tests/fakes/qmp.py) answers ``query-chardev`` with hostile paths: a device
whose open has effects (a FIFO stands in for /dev/watchdog: a blocked reader on it wakes up
when anyone opens it for writing, so an open is seen), another pty than the hypervisor's, a
socket outside the state dir, a symlink in the state dir pointing out. Discovery refuses each
with a reason and falls back to history; the connection refuses each too when handed one
directly (the check at open time, behind discovery's). A real process plays the hypervisor
holding its pty, and a real socket inside the state dir still connects.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.fakes.qmp import FakeQMPServer
from tests.test_console_connection import Discovery, Recorder, Server
from tui.host.console import ConnectionState, ConsoleConnection, ConsoleEndpoint, EndpointKind
from tui.host.console.chardevs import parse_chardevs
from tui.host.console.discovery import _from_chardevs, discover_endpoint
from tui.host.console.marker import TAKEOVER_LOG, TAKEOVER_SOCKET, TakeoverMarker, write_marker
from tui.host.console.trust import UntrustedEndpoint, check_pty, socket_address
from tui.host.model import VM, Drift, SerialSpec, UnitState
from tui.host.settings import HostSettings


class Hypervisor:
    """A real process standing in for qemu: it holds one side of a pty open."""

    def __init__(self, *, hold: str) -> None:
        self.master, slave = os.openpty()
        self.pty = os.ttyname(slave)
        held = slave if hold == "slave" else self.master
        self.proc = subprocess.Popen(["sleep", "300"], stdin=held, close_fds=True)
        os.close(slave)  # only the child holds the slave now (when it does)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait()
        os.close(self.master)


@pytest.fixture(params=["slave", "master"])
def hypervisor(request: pytest.FixtureRequest) -> Iterator[Hypervisor]:
    hv = Hypervisor(hold=request.param)
    yield hv
    hv.close()


class OpenDetector:
    """A FIFO (a device whose open does something, like /dev/watchdog): a reader blocked in
    open() returns as soon as anybody opens it for writing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        os.mkfifo(path)
        self.opened = threading.Event()
        self._thread = threading.Thread(target=self._wait, daemon=True)
        self._thread.start()

    def _wait(self) -> None:
        fd = os.open(self.path, os.O_RDONLY)  # blocks until a writer opens it
        self.opened.set()
        os.close(fd)

    def close(self) -> None:
        if not self.opened.is_set():  # release the blocked reader
            os.close(os.open(self.path, os.O_WRONLY | os.O_NONBLOCK))
        self._thread.join(5)


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VM]:
    state = tmp_path / "state" / "web"
    state.mkdir(parents=True)
    machine = VM(
        name="web",
        path=state,
        hypervisor="qemu",
        socket=str(state / "web.sock"),
        serial=SerialSpec("pty"),
        drift=Drift.CURRENT,
    )
    yield machine


@pytest.fixture
def qmp(vm: VM) -> Iterator[FakeQMPServer]:
    assert vm.socket
    server = FakeQMPServer(vm.socket)
    yield server
    server.close()


def settings(tmp_path: Path) -> HostSettings:
    (tmp_path / "logs").mkdir(exist_ok=True)
    return HostSettings(state_dir=tmp_path / "state", console_log_dir=tmp_path / "logs")


def discover(vm: VM, qmp: FakeQMPServer, filename: str, pid: int, tmp_path: Path):  # type: ignore[no-untyped-def]
    qmp.replies["query-chardev"] = [
        {"frontend-open": True, "filename": filename, "label": "serial0"},
        {"frontend-open": True, "filename": f"unix:{vm.socket},server=on", "label": "mon"},
    ]
    unit = UnitState(name="microvm@web.service", active="active", main_pid=pid)
    return discover_endpoint(vm, settings(tmp_path), unit=unit, qmp_timeout=2.0)


def assert_refused(endpoint: ConsoleEndpoint, words: str) -> None:
    assert not endpoint.interactive, endpoint
    assert endpoint.kind in (EndpointKind.LOGFILE, EndpointKind.JOURNAL), endpoint
    assert "refused" in endpoint.explanation and words in endpoint.explanation, endpoint


# --- ptys -----------------------------------------------------------------------------------


def test_the_hypervisors_own_pty_is_accepted_and_opened(
    vm: VM, qmp: FakeQMPServer, hypervisor: Hypervisor, tmp_path: Path
) -> None:
    ep = discover(vm, qmp, f"pty:{hypervisor.pty}", hypervisor.pid, tmp_path)
    assert ep.kind is EndpointKind.PTY and ep.path == hypervisor.pty and ep.interactive
    conn = ConsoleConnection(vm, settings(tmp_path), discover=Discovery(ep))
    rec = Recorder()
    conn.attach(rec.on_data, rec.on_status)
    conn.start()
    try:
        wait_for(lambda: conn.status.interactive, 5, what="pty opened")
        os.write(hypervisor.master, b"login: ")
        wait_for(lambda: rec.has(b"login: "), 5, what="output through the pty")
    finally:
        conn.close()


def test_another_pty_is_refused(
    vm: VM, qmp: FakeQMPServer, hypervisor: Hypervisor, tmp_path: Path
) -> None:
    master, slave = os.openpty()  # ours, not the hypervisor's (another user's tty, say)
    try:
        other = os.ttyname(slave)
        ep = discover(vm, qmp, f"pty:{other}", hypervisor.pid, tmp_path)
        assert_refused(ep, "not held open by the hypervisor")
        with pytest.raises(UntrustedEndpoint):
            check_pty(other, hypervisor.pid)
        with pytest.raises(UntrustedEndpoint, match="not known"):
            check_pty(hypervisor.pty, None)
    finally:
        os.close(master)
        os.close(slave)


@pytest.mark.parametrize(
    "path",
    ["/dev/watchdog", "/dev/null", "/dev/pts/ptmx", "/dev/pts/../tty", "/dev/pts/1/x", "/etc/x"],
)
def test_pty_paths_that_are_not_dev_pts_n_are_refused(
    vm: VM, qmp: FakeQMPServer, hypervisor: Hypervisor, tmp_path: Path, path: str
) -> None:
    ep = discover(vm, qmp, f"pty:{path}", hypervisor.pid, tmp_path)
    assert_refused(ep, "not")


def test_a_device_named_by_qmp_is_never_opened(
    vm: VM, qmp: FakeQMPServer, hypervisor: Hypervisor, tmp_path: Path
) -> None:
    fifo = OpenDetector(vm.path / "watchdog")
    try:
        ep = discover(vm, qmp, f"pty:{fifo.path}", hypervisor.pid, tmp_path)
        assert_refused(ep, "not a /dev/pts/N pty")
        # Handed to the connection directly (as if discovery had been fooled): still refused.
        forced = ConsoleEndpoint(
            vm="web",
            kind=EndpointKind.PTY,
            path=str(fifo.path),
            interactive=True,
            main_pid=hypervisor.pid,
        )
        conn = ConsoleConnection(vm, settings(tmp_path), discover=Discovery(forced))
        conn.start()
        try:
            wait_for(lambda: "cannot open" in conn.status.text, 5, what="the refusal")
            assert "not a /dev/pts/N pty" in conn.status.text
            assert conn.status.state is ConnectionState.WAITING
        finally:
            conn.close()
        assert not fifo.opened.wait(0.5)  # nobody opened it
    finally:
        fifo.close()


# --- sockets --------------------------------------------------------------------------------


@pytest.fixture
def outside(tmp_path: Path) -> Iterator[Server]:
    (tmp_path / "elsewhere").mkdir()
    server = Server(tmp_path / "elsewhere" / "evil.sock")
    yield server
    server.stop()


def _cases(vm: VM, outside: Server) -> dict[str, str]:
    (vm.path / "link.sock").symlink_to(outside.path)
    (vm.path / "sub").symlink_to(Path(outside.path).parent, target_is_directory=True)
    return {
        "outside": outside.path,
        "symlink": "link.sock",  # relative: against the state dir, as qemu's cwd
        "symlinked dir": "sub/evil.sock",
        "dotdot": "../../elsewhere/evil.sock",
    }


@pytest.mark.parametrize("case", ["outside", "symlink", "symlinked dir", "dotdot"])
def test_hostile_socket_paths_are_refused(
    vm: VM, qmp: FakeQMPServer, outside: Server, tmp_path: Path, case: str
) -> None:
    path = _cases(vm, outside)[case]
    ep = discover(vm, qmp, f"unix:{path},server=on", 4242, tmp_path)
    assert_refused(ep, "")
    # And at open time, for a path handed over directly.
    absolute = path if os.path.isabs(path) else str(vm.path / path)
    with pytest.raises(UntrustedEndpoint), socket_address(vm, absolute):
        pass
    forced = ConsoleEndpoint(vm="web", kind=EndpointKind.UNIX, path=absolute, interactive=True)
    conn = ConsoleConnection(vm, settings(tmp_path), discover=Discovery(forced))
    conn.start()
    try:
        wait_for(lambda: "cannot open" in conn.status.text, 5, what="the refusal")
    finally:
        conn.close()
    assert outside.connections == 0


def test_a_socket_in_the_state_dir_connects(vm: VM, qmp: FakeQMPServer, tmp_path: Path) -> None:
    server = Server(vm.path / "console.sock")
    try:
        ep = discover(vm, qmp, "unix:console.sock,server=on", 4242, tmp_path)
        assert ep.kind is EndpointKind.UNIX and ep.path == server.path and ep.interactive
        conn = ConsoleConnection(vm, settings(tmp_path), discover=Discovery(ep))
        rec = Recorder()
        conn.attach(rec.on_data, rec.on_status)
        conn.start()
        try:
            wait_for(lambda: conn.status.interactive, 5, what="connected")
            assert conn.write(b"hi\r")
            wait_for(lambda: rec.has(b"HI\r"), 5, what="the echo")
        finally:
            conn.close()
    finally:
        server.stop()


def test_the_runners_declared_socket_may_be_outside(
    vm: VM, outside: Server, tmp_path: Path
) -> None:
    vm.serial = SerialSpec("unix", outside.path, True)  # what the runner's arguments say
    with socket_address(vm, outside.path) as address:
        assert address.startswith("/proc/self/fd/")
    vm.serial = SerialSpec("unix", str(vm.path / "console.sock"), True)
    with pytest.raises(UntrustedEndpoint), socket_address(vm, outside.path):
        pass


# --- the takeover marker (a file in the state dir others can write) ---------------------------


@pytest.mark.parametrize("what", ["transcript", "socket"])
def test_a_planted_marker_naming_other_files_is_not_believed(
    vm: VM, tmp_path: Path, what: str
) -> None:
    secret = tmp_path / "root-only"
    secret.write_text("secret\n")
    sock, log = str(vm.path / TAKEOVER_SOCKET), str(vm.path / TAKEOVER_LOG)
    other_sock = str(vm.path / "other.sock")
    marker = TakeoverMarker(
        other_sock if what == "socket" else sock,
        str(secret) if what == "transcript" else log,
        42,
        "stdio",
        1.0,
        None,
        None,
        None,
    )
    write_marker(vm, marker)
    answer = other_sock if what == "socket" else sock
    chardevs = parse_chardevs(
        [{"frontend-open": True, "filename": f"unix:{answer},server=on", "label": "stdio"}]
    )
    ep = _from_chardevs(vm, settings(tmp_path), chardevs, 42, "")
    assert ep is not None and ep.source != "takeover" and ep.transcript is None
