"""ConsoleScreen wiring without a lab: a stand-in connection that calls back from its own
thread, like the real one."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from textual.app import App
from textual.binding import Binding
from textual.pilot import Pilot

from tui.host.console import (
    ConnectionState,
    ConsoleEndpoint,
    ConsoleStatus,
    EndpointKind,
    Subscription,
)
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.screens import console as console_screen
from tui.screens.console import ConsoleScreen, TakeoverScreen, short_path

CONNECTED = ConsoleStatus(
    ConnectionState.CONNECTED,
    "connected to /var/lib/microvms/t/t-console.sock",
    endpoint=ConsoleEndpoint(
        vm="t", kind=EndpointKind.UNIX, path="/var/lib/microvms/t/t-console.sock", interactive=True
    ),
)
OFFER = ConsoleEndpoint(
    vm="t",
    kind=EndpointKind.TAKEOVER,
    path="/var/lib/microvms/t/microvm-tui.console.sock",
    transcript="/var/lib/microvms/t/microvm-tui.console.log",
    needs_confirmation=True,
    main_pid=7,
    fallback=ConsoleEndpoint(vm="t", kind=EndpointKind.LOGFILE, path="/var/log/t.log"),
)
READ_ONLY_OFFER = ConsoleStatus(
    ConnectionState.READ_ONLY,
    "following /var/log/t.log",
    endpoint=OFFER.fallback,
    read_only_reason="serial on stdio, showing its history · t: take over",
    takeover_available=True,
    discovered=OFFER,
)


class FakeConnection:
    def __init__(self, status: ConsoleStatus, history: bytes = b"") -> None:
        self.status = status
        self.history = history
        self.written = bytearray()
        self.on_data: Any = None
        self.on_status: Any = None
        self.full: Any = None  # the screen's "hold the reading" question
        self.resumed = 0
        self.detached = False
        self.confirmed = 0
        self.takeover_declined = False

    def attach(self, on_data, on_status=None, full=None) -> Subscription:  # type: ignore[no-untyped-def]
        self.on_data, self.on_status, self.full = on_data, on_status, full
        return Subscription(1, self.history, self.status)

    def resume(self) -> None:
        self.resumed += 1

    def detach(self, token: int) -> None:
        self.detached = True

    def write(self, data: bytes) -> bool:
        self.written += data
        return True

    def confirm_takeover(self) -> bool:
        self.confirmed += 1
        return True

    def from_thread(self, *chunks: bytes, status: ConsoleStatus | None = None) -> None:
        def run() -> None:
            for chunk in chunks:
                self.on_data(chunk)
            if status is not None:
                self.on_status(status)

        thread = threading.Thread(target=run)
        thread.start()
        thread.join()


class Manager:
    def __init__(self, conn: FakeConnection) -> None:
        self.conn = conn

    def open(self, vm: VM) -> FakeConnection:
        return self.conn


class HostApp(App[None]):
    """An app with bindings that must not fire from keys typed at a console."""

    BINDINGS = [Binding("q", "record('q')", "Quit"), Binding("c", "record('c')", "Console")]

    def __init__(self, conn: FakeConnection, read_only_reason: str | None = None) -> None:
        super().__init__()
        self.conn = conn
        self.read_only_reason = read_only_reason
        self.hits: list[str] = []
        self.notes: list[str] = []

    def notify(self, message: str, **kwargs: Any) -> None:  # type: ignore[override]
        self.notes.append(message)
        super().notify(message, **kwargs)

    def on_mount(self) -> None:
        self.push_screen(
            ConsoleScreen(
                VM(name="t", path=Path("/t")),
                HostSettings(),
                Manager(self.conn),  # type: ignore[arg-type]
                read_only_reason=self.read_only_reason,
            )
        )

    def action_record(self, what: str) -> None:
        self.hits.append(what)

    @property
    def console_screen(self) -> ConsoleScreen:
        screen = next(s for s in self.screen_stack if isinstance(s, ConsoleScreen))
        return screen


def text(screen: ConsoleScreen) -> str:
    term = screen.terminal
    return "\n".join(term.render_line(y).text.rstrip() for y in range(term.rows))


async def until(pilot: Pilot[Any], predicate: Any, tries: int = 200) -> None:
    for _ in range(tries):
        if predicate():
            return
        await pilot.pause(0.01)
    raise AssertionError("condition not met")


async def test_keys_go_to_the_connection_and_output_comes_back() -> None:
    conn = FakeConnection(CONNECTED, history=b"earlier output\r\n")
    app = HostApp(conn)
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.console_screen
        assert "earlier output" in text(screen)
        assert "connected to /var/lib/microvms/t/t-console.sock" in screen.terminal.status
        await pilot.press("l", "s", "enter", "q", "c")
        assert bytes(conn.written) == b"ls\rqc"
        assert app.hits == []  # typed at the guest, not app bindings
        conn.from_thread(b"bin  etc", b"  proc\r\n", b"t:/# ")
        await until(pilot, lambda: "bin  etc  proc" in text(screen))
        await pilot.press("ctrl+right_square_bracket")
        await until(pilot, lambda: not isinstance(app.screen, ConsoleScreen))
        assert conn.detached


async def test_read_only_swallows_app_bindings_and_says_why() -> None:
    status = ConsoleStatus(
        ConnectionState.READ_ONLY,
        "following /var/log/t.log",
        endpoint=OFFER.fallback,
        read_only_reason="no interactive serial endpoint, showing its history",
        discovered=ConsoleEndpoint(
            vm="t",
            kind=EndpointKind.LOGFILE,
            path="/var/log/t.log",
            explanation="Read-only: no QMP.",
            hint="microvm.qemu.serialConsole = false;",
        ),
    )
    conn = FakeConnection(status)
    app = HostApp(conn)
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.console_screen
        assert screen.terminal.read_only
        assert "no interactive serial endpoint" in screen.terminal.read_only_reason
        info = str(screen.query_one("#console-info").content)  # type: ignore[attr-defined]
        assert "Read-only: no QMP." in info and "serialConsole = false" in info
        await pilot.press("q", "c", "x", "enter")
        assert app.hits == [] and conn.written == b""
        await pilot.press("escape")
        await until(pilot, lambda: not isinstance(app.screen, ConsoleScreen))


async def test_takeover_is_asked_once_and_confirmed() -> None:
    conn = FakeConnection(READ_ONLY_OFFER)
    app = HostApp(conn)
    async with app.run_test(size=(100, 40)) as pilot:
        await until(
            pilot, lambda: isinstance(app.screen, TakeoverScreen) and app.screen.query("#body")
        )
        body = str(app.screen.query_one("#body").content)  # type: ignore[attr-defined]
        assert "one-way until t restarts" in body and "/var/log/t.log" in body
        await pilot.press("n")
        await until(pilot, lambda: isinstance(app.screen, ConsoleScreen))
        assert conn.confirmed == 0
        # Not asked again by itself; t asks again.
        conn.from_thread(status=READ_ONLY_OFFER)
        await pilot.pause()
        assert isinstance(app.screen, ConsoleScreen)
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, TakeoverScreen))
        await pilot.press("y")
        await until(pilot, lambda: conn.confirmed == 1)
        conn.from_thread(b"taken\r\n", status=CONNECTED)
        screen = app.console_screen
        await until(pilot, lambda: not screen.terminal.read_only and "taken" in text(screen))


async def test_view_only_screen_neither_asks_nor_types_even_if_offered() -> None:
    """Even when a connection offers a takeover and is interactive, a read-only app's
    screen does not ask, does not take over, and sends nothing."""
    conn = FakeConnection(READ_ONLY_OFFER)
    app = HostApp(conn, read_only_reason="started with --read-only")
    async with app.run_test(size=(100, 40)) as pilot:
        await until(pilot, lambda: app.console_screen.console_status is not None)
        await pilot.pause()
        assert isinstance(app.screen, ConsoleScreen) and app.notes == []  # nothing asked
        await pilot.press("t")
        await until(pilot, lambda: app.notes)
        assert "view only" in app.notes[0] and "started with --read-only" in app.notes[0]
        assert isinstance(app.screen, ConsoleScreen) and conn.confirmed == 0
        conn.from_thread(b"interactive now\r\n", status=CONNECTED)
        screen = app.console_screen
        await until(pilot, lambda: "interactive now" in text(screen))
        await until(pilot, lambda: "view only" in screen.terminal.read_only_reason)
        assert screen.terminal.read_only
        await pilot.press("l", "s", "enter", "f12")
        screen.terminal.post_message(screen.terminal.Input(b"reply"))  # even if one got out
        await pilot.pause()
        assert conn.written == b"" and app.hits == []


async def test_a_flood_far_ahead_of_the_screen_holds_the_reading_and_loses_no_byte(
    monkeypatch,
) -> None:
    monkeypatch.setattr(console_screen, "HOLD_AT", 64 * 1024)
    conn = FakeConnection(CONNECTED)
    app = HostApp(conn)
    async with app.run_test() as pilot:
        await pilot.pause()
        screen = app.console_screen
        lines = [b"line %06d\r\n" % i for i in range(20_000)]
        # All of it arrives while the UI thread is busy (in this very test step).
        conn.from_thread(*lines)
        assert conn.full(), "220 KB waiting: the connection is asked to hold its reading"
        await until(pilot, lambda: "line 019999" in text(screen))
        assert screen.bytes_fed == sum(map(len, lines))  # every byte, none skipped
        assert not conn.full() and conn.resumed == 1  # caught up: reading goes on at once


def test_short_path() -> None:
    assert short_path("/a/b") == "/a/b"
    long = "/var/tmp/mvtui-lab-console-O15F/microvms/console/console-console.sock"
    short = short_path(long, 40)
    assert short.startswith("…/") and short.endswith("console/console-console.sock")
    assert len(short) <= 40
