"""ConsoleConnection and ConsoleManager without a lab: our own unix socket servers, files, and a
stand-in journalctl. Waits poll real state with a deadline."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.conftest import wait_for
from tui.host import tools
from tui.host.console import (
    ConnectionState,
    ConsoleConnection,
    ConsoleEndpoint,
    ConsoleManager,
    EndpointKind,
    TakeoverError,
)
from tui.host.model import VM
from tui.host.settings import HostSettings

STREAMS = Path(__file__).parent / "fixtures" / "console_streams"
SETTINGS = HostSettings()


class Server:
    """A unix socket server like qemu's serial chardev: one client at a time; echoes input
    (upper-cased) and can send on its own; can go away and come back (a VM restart)."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)
        self.client: socket.socket | None = None
        self.received = bytearray()
        self._listener: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self.connections = 0
        self.start()

    def start(self) -> None:
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(self.path)
        listener.listen(1)
        self._listener = listener
        self._thread = threading.Thread(target=self._serve, args=(listener,), daemon=True)
        self._thread.start()

    def _serve(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            self.client = client
            self.connections += 1
            while True:
                try:
                    data = client.recv(65536)
                except OSError:
                    break
                if not data:
                    break
                self.received += data
                with contextlib.suppress(OSError):
                    client.sendall(data.upper())
            client.close()

    def send(self, data: bytes) -> None:
        assert self.client is not None
        self.client.sendall(data)

    def stop(self) -> None:
        """Like qemu exiting: the client sees EOF, the socket file goes away."""
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self.client is not None:
            with contextlib.suppress(OSError):
                self.client.shutdown(socket.SHUT_RDWR)
            self.client.close()
            self.client = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)


class Discovery:
    """A discover function whose answer the test changes."""

    def __init__(self, endpoint: ConsoleEndpoint) -> None:
        self.endpoint = endpoint
        self.calls = 0

    def __call__(self, vm: VM, settings: HostSettings) -> ConsoleEndpoint:
        self.calls += 1
        return self.endpoint


def vm(name: str = "t", path: Path = Path("/nonexistent")) -> VM:
    return VM(name=name, path=path)


def unix(path: str, **kw: object) -> ConsoleEndpoint:
    return ConsoleEndpoint(vm="t", kind=EndpointKind.UNIX, path=path, interactive=True, **kw)  # type: ignore[arg-type]


class Recorder:
    def __init__(self) -> None:
        self.data = bytearray()
        self.states: list[ConnectionState] = []
        self.lock = threading.Lock()

    def on_data(self, data: bytes) -> None:
        with self.lock:
            self.data += data

    def on_status(self, status: object) -> None:
        self.states.append(status.state)  # type: ignore[attr-defined]

    def has(self, needle: bytes) -> bool:
        with self.lock:
            return needle in self.data


def connect(endpoint: ConsoleEndpoint, **kw: object) -> tuple[ConsoleConnection, Recorder]:
    # The VM's state dir holds the socket (a socket elsewhere is refused: tui.host.console.trust).
    where = Path(endpoint.path).parent if endpoint.path else Path("/nonexistent")
    conn = ConsoleConnection(vm(path=where), SETTINGS, discover=Discovery(endpoint), **kw)  # type: ignore[arg-type]
    rec = Recorder()
    conn.attach(rec.on_data, rec.on_status)
    conn.start()
    return conn, rec


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "serial.sock")
    yield srv
    srv.stop()


def relay_children() -> list[psutil.Process]:
    return [p for p in psutil.Process().children() if p.name() == "cat"]


@pytest.mark.parametrize("relay", [True, False], ids=["cat-relay", "read-in-thread"])
def test_typed_bytes_reach_the_guest_and_its_output_comes_back(
    server: Server, relay: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not relay:  # a host without cat: the reader thread reads the socket itself
        monkeypatch.setattr(tools, "find", lambda name: None)
    conn, rec = connect(unix(server.path))
    try:
        wait_for(lambda: conn.status.interactive, 5, what="connected")
        assert conn.status.text == f"connected to {server.path}"
        assert conn.write(b"echo hi\r")
        wait_for(lambda: rec.has(b"ECHO HI\r"), 5, what="the echo")
        assert server.received == b"echo hi\r"
    finally:
        conn.close()
    assert conn.status.state is ConnectionState.CLOSED
    assert not conn.write(b"x")


def test_the_relay_drains_the_socket_and_ends_with_the_connection(server: Server) -> None:
    """The serial socket is read by a cat of ours (by absolute path) into a pipe: the guest
    never waits for the UI. Closing the connection ends it by its pid."""
    conn, rec = connect(unix(server.path))
    try:
        wait_for(lambda: conn.status.interactive and server.client is not None, 5)
        wait_for(lambda: len(relay_children()) == 1, 5, what="the relay")
        (relay,) = relay_children()
        assert relay.exe() == tools.find("cat") and os.path.isabs(relay.exe())
        # Single-byte sends, as QEMU's UART makes them, through the relay's pipe.
        for byte in b"x" * 2000:
            server.send(bytes([byte]))
        wait_for(lambda: rec.has(b"x" * 2000), 5, what="the bytes")
    finally:
        conn.close()
    assert not relay.is_running() or relay.status() == psutil.STATUS_ZOMBIE
    assert relay_children() == []


def test_buffer_is_bounded_and_attaching_later_misses_nothing(server: Server) -> None:
    conn, rec = connect(unix(server.path), buffer_limit=64 * 1024)
    try:
        wait_for(lambda: conn.status.interactive and server.client is not None, 5)
        lines = b"".join(b"line %06d\r\n" % i for i in range(40_000))  # 520 KB
        half = len(lines) // 2
        server.send(lines[:half])
        wait_for(lambda: rec.has(lines[half - 13 : half]), 10, what="the first half")
        late = Recorder()
        sub = conn.attach(late.on_data, late.on_status)
        server.send(lines[half:])
        wait_for(lambda: late.has(b"line 039999\r\n"), 10, what="the second half")
        assert len(sub.history) <= 64 * 1024
        assert sub.history.startswith(b"line ")  # cut at a line start
        whole = sub.history + bytes(late.data)
        assert lines.endswith(whole)  # history + live = the stream's tail, exactly once
        assert bytes(rec.data) == lines
        assert len(conn.buffer()) <= 64 * 1024
        conn.detach(sub.token)
        assert conn.attached == 1
    finally:
        conn.close()


def test_a_full_subscriber_holds_the_reading_but_typed_bytes_still_go_out(
    server: Server,
) -> None:
    """Back-pressure instead of loss: while the subscriber says it is full the guest's output
    stays in the socket (the guest waits), keys are still sent; resume() reads on at once."""
    asked = threading.Semaphore(0)
    holding = threading.Event()
    holding.set()

    def full() -> bool:
        asked.release()  # one look per turn of the reader's loop
        return holding.is_set()

    endpoint = unix(server.path)
    conn = ConsoleConnection(
        vm(path=Path(server.path).parent), SETTINGS, discover=Discovery(endpoint)
    )
    rec = Recorder()
    conn.attach(rec.on_data, rec.on_status, full=full)
    conn.start()
    try:
        wait_for(lambda: conn.status.interactive and server.client is not None, 5)
        assert conn.write(b"typed while held\r")
        wait_for(lambda: server.received == b"typed while held\r", 5, what="the key")
        # The server echoed at once; the reader looks at its subscriber each turn, and turns
        # on its 10 ms hold poll: after a few more turns the echo would have been read.
        for _ in range(5):
            assert asked.acquire(timeout=5)
        assert not rec.has(b"TYPED"), "read while the subscriber was full"
        holding.clear()
        conn.resume()
        wait_for(lambda: rec.has(b"TYPED WHILE HELD\r"), 5, what="the held output")
    finally:
        conn.close()


def test_reconnects_by_itself_when_the_socket_comes_back(server: Server) -> None:
    conn, rec = connect(unix(server.path))
    try:
        wait_for(lambda: server.connections == 1 and conn.status.interactive, 5)
        server.stop()
        wait_for(lambda: conn.status.state is ConnectionState.RECONNECTING, 5, what="noticed")
        assert not conn.write(b"lost\r")  # not interactive while reconnecting
        server.start()
        wait_for(lambda: server.connections == 2 and conn.status.interactive, 5, what="back")
        server.send(b"[    0.000000] Linux version 6.1\r\n")
        wait_for(lambda: rec.has(b"Linux version"), 5)
        assert rec.has(b"reconnected to")
        assert ConnectionState.RECONNECTING in rec.states
    finally:
        conn.close()


def test_follows_a_log_file_through_truncation_and_replacement(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    log.write_bytes(b"old boot\r\n" * 3)
    endpoint = ConsoleEndpoint(vm="t", kind=EndpointKind.LOGFILE, path=str(log))
    conn, rec = connect(endpoint)
    try:
        wait_for(lambda: rec.has(b"old boot\r\n" * 3), 5, what="history")
        assert conn.status.state is ConnectionState.READ_ONLY
        assert not conn.write(b"x")
        with open(log, "ab") as f:
            f.write(b"appended\r\n")
        wait_for(lambda: rec.has(b"appended"), 5)
        log.write_bytes(b"truncated\r\n")
        wait_for(lambda: rec.has(b"truncated"), 5)
        log.unlink()
        log.write_bytes(b"a new file\r\n")
        wait_for(lambda: rec.has(b"a new file"), 5)
    finally:
        conn.close()


def test_journal_follower_is_ended_by_pid(tmp_path: Path) -> None:
    # A stand-in for `journalctl -o json -f`: prints real journalctl lines, then follows forever.
    fake = tmp_path / "journalctl.py"
    pidfile = tmp_path / "pid"
    fake.write_text(
        "import os, sys, time\n"
        f"open({str(pidfile)!r}, 'w').write(str(os.getpid()))\n"
        f"sys.stdout.buffer.write(open({str(STREAMS / 'journal_web.jsonl')!r}, 'rb').read())\n"
        "sys.stdout.flush()\n"
        "while True:\n"
        "    time.sleep(1)\n"
    )
    endpoint = ConsoleEndpoint(
        vm="t", kind=EndpointKind.JOURNAL, argv=(sys.executable, str(fake)), source="journal"
    )
    conn, rec = connect(endpoint)
    try:
        wait_for(lambda: rec.has(b"microvm-lab guest web up\r\n"), 10, what="journal lines")
        assert rec.has(b"\x1b[2m-- Stopping microvm@web.service... --")
        pid = int(pidfile.read_text())
        os.kill(pid, 0)  # running
    finally:
        conn.close()

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # A zombie would still answer; Popen.wait in close() reaped it.
        return False

    wait_for(gone, 5, what="journalctl to end")


def test_a_confirmed_takeover_switches_from_history_to_the_socket(
    server: Server, tmp_path: Path
) -> None:
    log = tmp_path / "vm.log"
    log.write_bytes(b"boot on stdio\r\n")
    history = ConsoleEndpoint(vm="t", kind=EndpointKind.LOGFILE, path=str(log))
    offer = ConsoleEndpoint(
        vm="t",
        kind=EndpointKind.TAKEOVER,
        path=server.path,
        needs_confirmation=True,
        main_pid=4242,
        fallback=history,
    )
    calls: list[ConsoleEndpoint] = []

    def takeover(v: VM, s: HostSettings, e: ConsoleEndpoint) -> ConsoleEndpoint:
        calls.append(e)
        return unix(server.path, source="takeover", main_pid=4242)

    discovery = Discovery(offer)
    conn = ConsoleConnection(vm(path=tmp_path), SETTINGS, discover=discovery, takeover=takeover)
    rec = Recorder()
    conn.attach(rec.on_data, rec.on_status)
    conn.start()
    try:
        wait_for(lambda: conn.status.takeover_available, 5, what="the offer")
        assert conn.status.state is ConnectionState.READ_ONLY
        assert "t: take over" in conn.status.read_only_reason
        wait_for(lambda: rec.has(b"boot on stdio"), 5)
        assert not calls  # nothing happens without a yes
        assert conn.confirm_takeover()
        wait_for(lambda: conn.status.interactive, 5, what="taken over")
        assert calls == [offer]
        assert rec.has(b"took over the serial console")
        conn.write(b"ls\r")
        wait_for(lambda: rec.has(b"LS\r"), 5)

        # The VM restarts: the socket goes, discovery finds stdio again with a new pid.
        discovery.endpoint = ConsoleEndpoint(
            vm="t",
            kind=EndpointKind.TAKEOVER,
            path=server.path,
            needs_confirmation=True,
            main_pid=4343,
            fallback=history,
        )
        server.stop()
        wait_for(lambda: conn.status.takeover_ended, 5, what="the takeover to end")
        assert conn.status.state is ConnectionState.READ_ONLY
        assert "takeover ended" in conn.status.read_only_reason
        assert len(calls) == 1  # not taken over again by itself
    finally:
        conn.close()


def test_a_read_only_connection_sends_nothing_and_never_takes_over(
    server: Server, tmp_path: Path
) -> None:
    """The app is read-only: the connection is view only whatever its caller asks."""
    conn, rec = connect(unix(server.path), read_only=True)
    try:
        wait_for(lambda: conn.status.interactive and server.client, 5, what="connected")
        server.send(b"guest output\r\n")
        wait_for(lambda: rec.has(b"guest output"), 5, what="the output")  # viewing works
        assert not conn.write(b"reboot\r")
        server.send(b"marker\r\n")  # a round trip after the write
        wait_for(lambda: rec.has(b"marker"), 5, what="the marker")
        assert server.received == b""
    finally:
        conn.close()

    log = tmp_path / "vm.log"
    log.write_bytes(b"boot on stdio\r\n")
    offer = ConsoleEndpoint(
        vm="t",
        kind=EndpointKind.TAKEOVER,
        path=server.path,
        main_pid=4242,
        fallback=ConsoleEndpoint(vm="t", kind=EndpointKind.LOGFILE, path=str(log)),
    )
    calls: list[ConsoleEndpoint] = []

    def takeover(v: VM, s: HostSettings, e: ConsoleEndpoint) -> ConsoleEndpoint:
        calls.append(e)
        return unix(server.path, source="takeover", main_pid=4242)

    conn, rec = connect(offer, takeover=takeover, read_only=True)
    try:
        wait_for(lambda: rec.has(b"boot on stdio"), 5, what="the history")
        wait_for(lambda: conn.status.state is ConnectionState.READ_ONLY, 5, what="read-only")
        status = conn.status
        assert not status.takeover_available
        assert status.read_only_reason == "serial on stdio, showing its history"
        assert not conn.confirm_takeover()
        log.write_bytes(b"boot on stdio\r\nmore\r\n")  # the history goes on being followed
        wait_for(lambda: rec.has(b"more"), 5, what="more history")
        assert calls == []
    finally:
        conn.close()

    # Made view only while it offers a takeover: the offer is no longer honoured.
    conn, rec = connect(offer, takeover=takeover)
    try:
        wait_for(lambda: conn.status.takeover_available, 5, what="the offer")
        conn.read_only = True
        assert not conn.confirm_takeover()
        assert not conn.write(b"x")
        assert calls == []
    finally:
        conn.close()


def test_failed_takeover_says_why_and_stays_read_only(tmp_path: Path) -> None:
    log = tmp_path / "vm.log"
    log.write_bytes(b"")
    offer = ConsoleEndpoint(
        vm="t",
        kind=EndpointKind.TAKEOVER,
        path=str(tmp_path / "s.sock"),
        main_pid=1,
        fallback=ConsoleEndpoint(vm="t", kind=EndpointKind.LOGFILE, path=str(log)),
    )

    def refuse(v: VM, s: HostSettings, e: ConsoleEndpoint) -> ConsoleEndpoint:
        raise TakeoverError("QMP chardev-change refused: nope")

    conn = ConsoleConnection(vm(), SETTINGS, discover=Discovery(offer), takeover=refuse)
    conn.start()
    try:
        wait_for(lambda: conn.status.takeover_available, 5)
        conn.confirm_takeover()
        wait_for(lambda: "takeover failed" in conn.status.read_only_reason, 5)
        assert conn.status.state is ConnectionState.READ_ONLY
    finally:
        conn.close()


def test_nothing_to_attach_to_is_a_reason_not_an_error() -> None:
    none = ConsoleEndpoint(vm="t", kind=EndpointKind.NONE, explanation="t is not running")
    conn, _rec = connect(none)
    try:
        wait_for(lambda: conn.status.state is ConnectionState.WAITING, 5)
        assert conn.status.read_only_reason == "t is not running"
        assert not conn.write(b"x")
    finally:
        conn.close()


def test_discovery_that_raises_is_contained() -> None:
    def broken(v: VM, s: HostSettings) -> ConsoleEndpoint:
        raise RuntimeError("boom")

    conn = ConsoleConnection(vm(), SETTINGS, discover=broken)
    conn.start()
    try:
        wait_for(lambda: "discovery failed" in conn.status.text, 5)
    finally:
        conn.close()


def test_manager_keeps_connections_bounded_and_closes_them(tmp_path: Path) -> None:
    made: list[ConsoleConnection] = []

    def factory(v: VM, s: HostSettings) -> ConsoleConnection:
        none = ConsoleEndpoint(vm=v.name, kind=EndpointKind.NONE, explanation="stopped")
        conn = ConsoleConnection(v, s, discover=Discovery(none))
        made.append(conn)
        return conn

    manager = ConsoleManager(SETTINGS, limit=2, factory=factory)
    a = manager.open(vm("a"))
    token = a.attach(lambda d: None).token  # attached: never evicted
    manager.open(vm("b"))
    assert manager.open(vm("b")) is made[1]  # the same connection again
    manager.open(vm("c"))  # over the limit: b (idle, least recent) goes
    assert manager.names() == ["a", "c"]
    assert made[1].closed
    a.detach(token)
    manager.close_all()
    assert len(manager) == 0
    assert all(c.closed for c in made)
    wait_for(lambda: not [t for t in threading.enumerate() if t.name.startswith("console-")], 5)


def test_pty_endpoint_both_ways_and_hangup() -> None:
    # We play the hypervisor: it holds the master side, the console opens the pty by path.
    master, slave = os.openpty()
    path = os.ttyname(slave)
    os.close(slave)
    endpoint = ConsoleEndpoint(
        vm="t", kind=EndpointKind.PTY, path=path, interactive=True, main_pid=os.getpid()
    )
    conn, rec = connect(endpoint)
    try:
        wait_for(lambda: conn.status.interactive, 5, what="pty opened")
        assert conn.status.text == f"connected to {path}"
        os.write(master, b"login: ")
        wait_for(lambda: rec.has(b"login: "), 5)
        assert conn.write(b"root\r")
        got = b""
        while b"root\r" not in got:
            got += os.read(master, 100)
        assert got == b"root\r"  # raw: no echo, no CR translation on our side
    finally:
        os.close(master)  # the hypervisor went away
        wait_for(lambda: conn.status.state is not ConnectionState.CONNECTED, 5, what="hang-up")
        conn.close()
