"""Malformed and hostile D-Bus replies: a real systemd never sends them, so a fake peer does
(``FakeSystemdPeer``, a unix socket speaking the D-Bus wire protocol as systemd's private
socket would). Every case ends in a one-line note and the systemctl path, or in values left
out: never a traceback, a hang or a hostile string in the table."""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from jeepney import HeaderFields, Message, Parser
from jeepney.wrappers import DBusAddress, new_method_return, new_signal

from tests.conftest import wait_for
from tui.host.dbus import Endpoint, message_size
from tui.host.hostloop import HostLoop
from tui.host.model import UnitState
from tui.host.settings import HostSettings
from tui.host.systemd import unit_states
from tui.host.systemd_bus import UnitWatch
from tui.host.systemd_values import apply_properties, listed_units

Reply = Callable[[Message], bytes | None]  # a call -> the bytes to answer with (None: silence)

ROOT = "/org/freedesktop/systemd1"
GOOD_PATH = "/org/freedesktop/systemd1/unit/microvm_40good_2eservice"


def ret(call: Message, signature: str | None = None, body: tuple = ()) -> bytes:
    return new_method_return(call, signature, body).serialise(serial=1000)


def row(name: str, active: str = "active", path: str = GOOD_PATH) -> tuple:
    return (name, "", "loaded", active, "running", "", path, 0, "", "/")


class FakeSystemdPeer:
    """A peer on a unix socket: answers EXTERNAL auth, then each call as ANSWER says."""

    def __init__(self, path: Path, answer: Reply) -> None:
        self.path = path
        self.answer = answer
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(4)
        self.conn: socket.socket | None = None
        self.members: list[str] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        self.conn = conn
        buf = b""
        while b"\r\n" not in buf:
            buf += conn.recv(4096)
        conn.sendall(b"OK 0123456789abcdef0123456789abcdef\r\n")
        while b"BEGIN\r\n" not in buf:
            buf += conn.recv(4096)
        parser = Parser()
        parser.add_data(buf.split(b"BEGIN\r\n", 1)[1])
        while True:
            while (msg := parser.get_next_message()) is not None:
                self.members.append(msg.header.fields.get(HeaderFields.member, ""))
                out = self.answer(msg)
                if out:
                    conn.sendall(out)
            data = conn.recv(65536)
            if not data:
                return
            parser.add_data(data)

    def send(self, data: bytes) -> None:
        assert self.conn is not None
        self.conn.sendall(data)

    def close(self) -> None:
        self.server.close()
        if self.conn is not None:
            self.conn.close()


@pytest.fixture
def loop() -> Iterator[HostLoop]:
    the_loop = HostLoop(name="mvtui-test-fakebus")
    yield the_loop
    the_loop.close()


def watch_on(tmp_path: Path, loop: HostLoop, answer: Reply) -> tuple[UnitWatch, FakeSystemdPeer]:
    peer = FakeSystemdPeer(tmp_path / "private", answer)
    settings = HostSettings(state_dir=tmp_path, timeout=0.5)
    return UnitWatch(settings, Endpoint(peer.path, bus=False), loop=loop, retry=60), peer


def systemd_like(rows: list[tuple], props: dict[str, tuple]) -> Reply:
    def answer(call: Message) -> bytes | None:
        member = call.header.fields.get(HeaderFields.member)
        if member == "Subscribe":
            return ret(call)
        if member == "ListUnitsByPatterns":
            return ret(call, "a(ssssssouso)", (rows,))
        if member == "GetAll":
            return ret(call, "a{sv}", (props,))
        if member == "Get":
            return ret(call, "v", (("t", 1_700_000_000_000_000),))
        return None

    return answer


def header_only(body_length: int) -> bytes:
    """A method return whose header claims BODY_LENGTH bytes of body."""
    fields = b""
    return b"l\x02\x01\x01" + struct.pack("<III", body_length, 1, len(fields)) + fields


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        (header_only(0x7FFF_FFF0), "bytes (at most"),
        (b"HTTP/1.1 400 Bad Request\r\n\r\n" + b"x" * 64, "not a D-Bus message"),
    ],
    ids=["claims-2-GB", "not-d-bus"],
)
def test_a_reply_we_cannot_accept_ends_the_watch_with_one_line(
    tmp_path: Path, loop: HostLoop, raw: bytes, said: str
) -> None:
    watch, peer = watch_on(tmp_path, loop, lambda call: raw)
    try:
        report = unit_states(watch, ["microvm@good.service"])
        assert watch.note is not None and said in watch.note, watch.note
        assert "\n" not in watch.note and "Traceback" not in watch.note
        assert report.note == watch.note  # systemctl answered (or said why it could not)
        assert "microvm@good.service" in report.units
    finally:
        watch.close()
        peer.close()


def test_a_body_that_does_not_parse_is_a_malformed_message(tmp_path: Path, loop: HostLoop) -> None:
    def answer(call: Message) -> bytes:
        good = ret(call, "a(ssssssouso)", ([row("microvm@good.service")],))
        return good[:-9] + b"\xff" * 9  # the last row's fields overwritten with garbage

    watch, peer = watch_on(tmp_path, loop, answer)
    try:
        unit_states(watch, ["microvm@good.service"])
        assert watch.note is not None
        assert "malformed" in watch.note or "no list of units" in watch.note, watch.note
    finally:
        watch.close()
        peer.close()


def test_silence_is_a_timeout_not_a_hang(tmp_path: Path, loop: HostLoop) -> None:
    watch, peer = watch_on(tmp_path, loop, lambda call: None)
    try:
        unit_states(watch, ["microvm@good.service"])
        assert watch.note is not None and "no answer within 0.5 s" in watch.note, watch.note
    finally:
        watch.close()
        peer.close()


def test_hostile_rows_and_values_are_left_out(tmp_path: Path, loop: HostLoop) -> None:
    rows = [
        row("microvm@good.service", active="act\x1b[31mive"),
        row("microvm@\x1b]0;owned\x07.service"),
        row("microvm@other.service", path="/etc/passwd"),
        row("sshd.service", path="/org/freedesktop/systemd1/unit/sshd_2eservice"),
    ]
    props = {
        "MainPID": ("s", "1234"),  # wrong type
        "NRestarts": ("u", 5),
        "ControlGroup": ("s", "/../../etc"),
        "Result": ("s", "x" * 1000),
        "ExecMainStatus": ("i", -1),
    }
    watch, peer = watch_on(tmp_path, loop, systemd_like(rows, props))
    try:
        report = unit_states(watch, ["microvm@good.service", "microvm@other.service"])
        assert watch.note is None, watch.note
        assert set(watch.list_units(["*"])) == {"microvm@good.service"}
        good = report.units["microvm@good.service"]
        assert (good.active, good.main_pid, good.control_group, good.result) == (
            None,
            None,
            None,
            None,
        )
        assert (good.restarts, good.exec_main_status) == (5, -1)
        assert good.active_enter_usec == 1_700_000_000_000_000
        other = report.units["microvm@other.service"]
        assert (other.active, other.restarts) == ("inactive", 0)  # not listed: not loaded

        # Signals with odd bodies are ignored; a good one is applied.
        emitter = DBusAddress(GOOD_PATH, interface="org.freedesktop.DBus.Properties")
        unit_iface = "org.freedesktop.systemd1.Unit"
        odd = [
            new_signal(emitter, "PropertiesChanged", "s", ("just one",)),
            new_signal(emitter, "PropertiesChanged", "sa{sv}as", (unit_iface, {}, ["x"] * 3)),
            new_signal(
                DBusAddress(
                    "/org/freedesktop/systemd1", interface="org.freedesktop.systemd1.Manager"
                ),
                "UnitNew",
                "so",
                ("microvm@\x1b[2J.service", "/org/freedesktop/systemd1/unit/x"),
            ),
            new_signal(
                emitter,
                "PropertiesChanged",
                "sa{sv}as",
                (unit_iface, {"ActiveState": ("s", "active"), "SubState": ("u", 7)}, []),
            ),
        ]
        for i, sig in enumerate(odd):
            peer.send(sig.serialise(serial=2000 + i))
        wait_for(
            lambda: watch.show(["microvm@good.service"])["microvm@good.service"].active == "active",
            5,
            what="the good signal applied",
        )
        assert set(watch.list_units(["*"])) == {"microvm@good.service"}
        assert watch.note is None
    finally:
        watch.close()
        peer.close()


def test_values_are_checked_one_by_one() -> None:
    state = UnitState("microvm@x.service")
    apply_properties(state, {"MainPID": ("u", 1 << 40), "NRestarts": ("u", True)})
    assert (state.main_pid, state.restarts) == (None, None)
    apply_properties(state, "not a dict")
    apply_properties(state, {"ActiveEnterTimestamp": ("t", 0), "ControlGroup": ("s", "a/b")})
    assert (state.active_enter_usec, state.control_group) == (None, None)
    with pytest.raises(Exception, match="no list of units"):
        listed_units(("not a list",))
    assert listed_units(([("short",), row("microvm@a.service")],)).keys() == {"microvm@a.service"}
    with pytest.raises(Exception, match="at most"):
        message_size(header_only(1 << 30))
