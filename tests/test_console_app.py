"""The console inside the real app: MicroVMApp, `c` on a VM, the real ConsoleScreen, over real
ConsoleConnections to a unix socket server like qemu's serial chardev or a followed log file.

Only discovery (which endpoint a VM has) and the takeover step (QMP chardev-change, which needs
a real QEMU: the lab tests do that) are chosen by the test; everything after them is the app's
own code. Waits poll real state with a deadline.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets import Input as TextInput

from tests.conftest import until_in_app
from tests.fakes.flood_console import FakeFloodConsole
from tests.monitor_support import SIZE, make_app, replay
from tests.test_console_connection import Server
from tui import app as app_module
from tui.app import MicroVMApp
from tui.host.console import ConsoleConnection, ConsoleEndpoint, ConsoleManager, EndpointKind
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.screens.console import ConsoleScreen, TakeoverScreen
from tui.widgets.terminal import TerminalWidget

TakeoverFn = Callable[[VM, HostSettings, ConsoleEndpoint], ConsoleEndpoint]


class Endpoints:
    """The app's discovery, as the test says: VM name -> endpoint."""

    def __init__(self) -> None:
        self.by_name: dict[str, ConsoleEndpoint] = {}

    def __call__(self, vm: VM, settings: HostSettings) -> ConsoleEndpoint:
        return self.by_name.get(
            vm.name, ConsoleEndpoint(vm=vm.name, kind=EndpointKind.NONE, explanation="none here")
        )


def console_app(
    endpoints: Endpoints, takeover: TakeoverFn | None = None, **changes: Any
) -> MicroVMApp:
    """The real app on the recorded lab, its console manager built as the app builds it
    (read-only when the app is), with discovery (and the takeover step) from the test."""
    app = make_app(replay(), **changes)
    read_only = app.consoles.read_only

    def rebased(vm: VM) -> VM:
        # The console only opens sockets inside the VM's state dir: the recorded VM's state
        # dir is, for the test, the folder it put the VM's socket in.
        offered = endpoints.by_name.get(vm.name)
        if offered is not None and offered.path:
            return dataclasses.replace(vm, path=Path(offered.path).parent)
        return vm

    class Connection(ConsoleConnection):
        def update_vm(self, vm: VM) -> None:  # each poll's reading of the recorded VM
            super().update_vm(rebased(vm))

    def connection(vm: VM, settings: HostSettings) -> ConsoleConnection:
        return Connection(
            rebased(vm), settings, discover=endpoints, takeover=takeover, read_only=read_only
        )

    app.consoles = ConsoleManager(app.settings.host, read_only=read_only, factory=connection)
    return app


def unix(name: str, path: str, **kw: Any) -> ConsoleEndpoint:
    return ConsoleEndpoint(vm=name, kind=EndpointKind.UNIX, path=path, interactive=True, **kw)


def logfile(name: str, path: Path) -> ConsoleEndpoint:
    return ConsoleEndpoint(vm=name, kind=EndpointKind.LOGFILE, path=str(path), source="log")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    srv = Server(tmp_path / "serial.sock")
    yield srv
    srv.stop()


async def until(
    pilot: Pilot[Any], predicate: Callable[[], object], timeout: float = 10.0, what: str = ""
) -> Any:
    return await until_in_app(
        pilot, predicate, timeout, what=what, step=0.02, detail=lambda: describe(pilot.app)
    )


def describe(app: Any) -> str:
    screen = app.screen
    if not isinstance(screen, ConsoleScreen):
        return f"\nscreen: {screen!r}"
    term = screen.terminal
    return f"\nstatus: {screen.console_status}\nhint: {hint(term)}\npane:\n" + "\n".join(rows(term))


def console(app: MicroVMApp) -> ConsoleScreen | None:
    screen = app.screen
    return screen if isinstance(screen, ConsoleScreen) else None


def terminal(app: MicroVMApp) -> TerminalWidget:
    screen = console(app)
    assert screen is not None, f"no console screen: {app.screen!r}"
    return screen.terminal


def rows(term: TerminalWidget) -> list[str]:
    return [term.render_line(y).text.rstrip() for y in range(term.rows)]


def hint(term: TerminalWidget) -> str:
    return term.render_line(term.rows).text


def style_at(strip: Strip, x: int) -> Style:
    position = 0
    for segment in strip:
        if position <= x < position + segment.cell_length:
            return segment.style or Style.null()
        position += segment.cell_length
    raise IndexError(x)


def record_notifications(app: MicroVMApp) -> list[str]:
    """The messages of the app's notifications, as they are made."""
    notes: list[str] = []
    notify = app.notify

    def recording(message: str, **kwargs: Any) -> Any:
        notes.append(message)
        return notify(message, **kwargs)

    app.notify = recording  # type: ignore[method-assign]
    return notes


async def open_console(pilot: Pilot[Any], app: MicroVMApp, name: str) -> TerminalWidget:
    await until(pilot, lambda: app.polls >= 1)
    app.main_screen.table.select_name(name)
    await pilot.pause()
    await pilot.press("c")
    screen = await until(
        pilot,
        lambda: next((s for s in app.screen_stack if isinstance(s, ConsoleScreen)), None),
        what=f"{name}'s console",
    )
    return screen.terminal  # type: ignore[no-any-return]


# --- 6: search ----------------------------------------------------------------------------------


async def test_search_in_the_console_jumps_highlights_walks_back_and_says_not_found(
    server: Server,
) -> None:
    endpoints = Endpoints()
    endpoints.by_name["console"] = unix("console", server.path)
    app = console_app(endpoints)
    async with app.run_test(size=SIZE) as pilot:
        term = await open_console(pilot, app, "console")
        await until(pilot, lambda: not term.read_only and server.client is not None)
        lines = [b"line %03d\r\n" % i for i in range(200)]
        lines[20] = b"older Needle\r\n"
        lines[120] = b"newer needle\r\n"
        server.send(b"".join(lines) + b"prompt# ")
        await until(pilot, lambda: "prompt#" in "\n".join(rows(term)), what="the output")
        match_style = term.get_component_rich_style("terminal--search-match", partial=True)

        await pilot.press("ctrl+f")
        box = term.query_one("#terminal-search", TextInput)
        await until(pilot, lambda: box.has_focus)
        await pilot.press(*"needle", "enter")
        # Found: the view jumps back to the newer match and highlights it.
        await until(pilot, lambda: "newer needle" in rows(term), what="the jump to the match")
        assert term.scrollback_offset > 0
        y = rows(term).index("newer needle")
        assert style_at(term.render_line(y), 6).bgcolor == match_style.bgcolor
        assert style_at(term.render_line(y), 5).bgcolor != match_style.bgcolor

        # Enter again: the next (older) match.
        await pilot.press("enter")
        await until(pilot, lambda: "older Needle" in rows(term), what="the older match")
        y = rows(term).index("older Needle")
        assert style_at(term.render_line(y), 6).bgcolor == match_style.bgcolor

        # Not found: said in the hint line; the box's own keys (backspace) work.
        await pilot.press(*["backspace"] * 6, *"absent", "enter")
        await until(pilot, lambda: "not found: absent" in hint(term), what="not found")
        assert box.value == "absent"

        await pilot.press("escape")
        await until(pilot, lambda: term.has_focus and not box.display)
        assert console(app) is not None  # escape closed the box, not the console
        assert bytes(server.received) == b""  # nothing typed in the box went to the guest
        assert app.screen is console(app)


# --- 7: history sources are lines ---------------------------------------------------------------


async def test_log_history_with_bare_line_feeds_is_shown_as_lines(tmp_path: Path) -> None:
    log = tmp_path / "crashy.log"
    # What a crash-looping runner leaves in its log: qemu's complaint (bare LF), then the
    # guest's own lines (CR LF) of an earlier boot.
    log.write_bytes(
        b"qemu: could not load kernel '/var/empty/bzImage'\nStopped after 1 s\n"
        b"guest line one\r\nguest line two\r\n"
    )
    endpoints = Endpoints()
    endpoints.by_name["crashy"] = logfile("crashy", log)
    app = console_app(endpoints)
    async with app.run_test(size=SIZE) as pilot:
        term = await open_console(pilot, app, "crashy")
        await until(pilot, lambda: "guest line two" in "\n".join(rows(term)), what="the log")
        shown = [row for row in rows(term) if row]
        assert shown[:4] == [
            "qemu: could not load kernel '/var/empty/bzImage'",
            "Stopped after 1 s",
            "guest line one",
            "guest line two",
        ]
        # Lines appended later (followed live) are lines too.
        with log.open("ab") as f:
            f.write(b"restarting\nagain\n")
        await until(pilot, lambda: "again" in rows(term), what="the new lines")
        assert rows(term)[rows(term).index("again") - 1] == "restarting"


async def test_live_interactive_bytes_are_not_translated(server: Server) -> None:
    endpoints = Endpoints()
    endpoints.by_name["console"] = unix("console", server.path)
    app = console_app(endpoints)
    async with app.run_test(size=SIZE) as pilot:
        term = await open_console(pilot, app, "console")
        await until(pilot, lambda: not term.read_only and server.client is not None)
        server.send(b"\x1b[2J\x1b[Hab\ncd\r\n")  # a guest in raw mode moves down with LF
        await until(pilot, lambda: "cd" in "".join(rows(term)), what="the output")
        assert rows(term)[:2] == ["ab", "  cd"]


# --- 8: the guest learns the pane's size ----------------------------------------------------------


async def test_size_key_types_stty_for_the_pane_and_resize_queries_are_answered(
    server: Server,
) -> None:
    endpoints = Endpoints()
    endpoints.by_name["console"] = unix("console", server.path)
    app = console_app(endpoints)
    async with app.run_test(size=SIZE) as pilot:
        term = await open_console(pilot, app, "console")
        await until(pilot, lambda: not term.read_only and server.client is not None)
        assert "f12 send size" in hint(term)
        pane_rows, pane_cols = term.rows, term.columns
        assert (pane_rows, pane_cols) == (SIZE[1] - 2, SIZE[0])  # title line, hint line
        await pilot.press("f12")
        expected = f"stty rows {pane_rows} cols {pane_cols}\r".encode()
        await until(pilot, lambda: bytes(server.received) == expected, what="the stty line")
        assert f"sent: stty rows {pane_rows} cols {pane_cols}" in hint(term)

        # busybox resize: save cursor, reset margins, CUP 999;999, ask the cursor position.
        server.received.clear()
        server.send(b"\x1b7\x1b[r\x1b[999;999H\x1b[6n")
        report = f"\x1b[{pane_rows};{pane_cols}R".encode()
        await until(pilot, lambda: bytes(server.received) == report, what="the CPR")
        server.send(b"\x1b8")
        # xterm's text-area size report, which other resize scripts ask for.
        server.received.clear()
        server.send(b"\x1b[18t")
        report = f"\x1b[8;{pane_rows};{pane_cols}t".encode()
        await until(pilot, lambda: bytes(server.received) == report, what="the 18t report")


# --- 8b: a flood never starves the keyboard -----------------------------------------------------

FLOOD_BYTES = 4_000_000


async def test_a_key_reaches_the_guest_while_a_flood_runs_and_no_byte_is_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A "guest" printing a boot log as fast as the app reads it (far faster than the
    emulator): a key typed meanwhile is handled within a few slices of emulation (the feeder
    yields the event loop between slices) and goes out while the flood still runs; afterwards
    every byte of the flood has gone through the emulator."""
    log = (Path(__file__).parent / "fixtures/console_streams/web_history.bin").read_bytes()
    fake = FakeFloodConsole(
        str(tmp_path / "serial.sock"), log.replace(b"\x1bc", b""), FLOOD_BYTES, hold=True
    )
    endpoints = Endpoints()
    endpoints.by_name["console"] = unix("console", fake.path)
    app = console_app(endpoints)
    try:
        async with app.run_test(size=SIZE) as pilot:
            term = await open_console(pilot, app, "console")
            screen = console(app)
            assert screen is not None
            await until(pilot, lambda: not term.read_only)
            # How far the emulator had got when the screen handed the key to the connection.
            handed: list[int] = []
            write = ConsoleConnection.write

            def spy(self: ConsoleConnection, data: bytes) -> bool:
                if b"k" in data:  # a letter no terminal reply to the log's queries holds
                    handed.append(screen.bytes_fed)
                return write(self, data)

            monkeypatch.setattr(ConsoleConnection, "write", spy)
            fake.go.set()
            await until(pilot, lambda: screen.bytes_fed > 256 * 1024, what="the flood")
            fed_at_press = screen.bytes_fed
            await pilot.press("k")
            await until(pilot, lambda: b"k" in fake.received, timeout=30, what="the key")
            assert handed[0] - fed_at_press < 256 * 1024, (
                f"{handed[0] - fed_at_press} bytes emulated before the key was handled"
            )
            sent_then = next(sent for _, data, sent in fake.arrivals if b"k" in data)
            assert sent_then < FLOOD_BYTES, "the key went out only after the whole flood"
            total = FLOOD_BYTES + len(fake.done_marker)
            await until(pilot, lambda: screen.bytes_fed >= total, timeout=120, what="the end")
            assert screen.bytes_fed == total
            assert "FLOOD-DONE" in "\n".join(rows(term))
    finally:
        fake.stop()


# --- 9: the takeover question, once -------------------------------------------------------------


def takeover_offer(name: str, socket_path: str, log: Path) -> ConsoleEndpoint:
    return ConsoleEndpoint(
        vm=name,
        kind=EndpointKind.TAKEOVER,
        path=socket_path,
        transcript=str(log.with_suffix(".transcript")),
        needs_confirmation=True,
        main_pid=4242,
        fallback=logfile(name, log),
    )


class Takeovers:
    """The takeover step (QMP chardev-change on a real QEMU: see the lab tests): the
    console's socket is the test's server from then on."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.calls: list[str] = []

    def __call__(self, vm: VM, settings: HostSettings, offer: ConsoleEndpoint) -> ConsoleEndpoint:
        self.calls.append(vm.name)
        return unix(vm.name, self.server.path, source="takeover", main_pid=offer.main_pid)


async def test_cancel_is_remembered_and_t_takes_over(server: Server, tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    log.write_bytes(b"web booted on stdio\r\n")
    endpoints = Endpoints()
    endpoints.by_name["web"] = takeover_offer("web", server.path, log)
    takeovers = Takeovers(server)
    app = console_app(endpoints, takeovers)
    async with app.run_test(size=SIZE) as pilot:
        await open_console(pilot, app, "web")
        await until(pilot, lambda: isinstance(app.screen, TakeoverScreen), what="the question")
        await pilot.press("n")
        await until(pilot, lambda: console(app) is not None)
        await pilot.press("escape")  # leave (read-only: escape leaves)
        await until(pilot, lambda: console(app) is None and app.screen is app.main_screen)

        # Back again: the history with the hint, no question.
        term = await open_console(pilot, app, "web")
        await until(pilot, lambda: "t: take over" in hint(term), what="the hint")
        await until(pilot, lambda: "web booted on stdio" in rows(term), what="the history")
        await pilot.pause()
        assert console(app) is app.screen  # not asked again
        assert takeovers.calls == []

        # t asks; yes takes over; keys reach the guest.
        await pilot.press("t")
        await until(pilot, lambda: isinstance(app.screen, TakeoverScreen), what="t's question")
        await pilot.press("y")
        await until(pilot, lambda: console(app) is not None and not terminal(app).read_only)
        assert takeovers.calls == ["web"]
        await pilot.press("l", "s", "enter")
        await until(pilot, lambda: bytes(server.received) == b"ls\r", what="the keys")


# --- 10: read-only is view only -----------------------------------------------------------------


async def test_read_only_app_never_takes_over(server: Server, tmp_path: Path) -> None:
    log = tmp_path / "web.log"
    log.write_bytes(b"web booted on stdio\r\n")
    endpoints = Endpoints()
    endpoints.by_name["web"] = takeover_offer("web", server.path, log)
    takeovers = Takeovers(server)
    app = console_app(endpoints, takeovers, read_only=True)
    notes = record_notifications(app)
    async with app.run_test(size=SIZE) as pilot:
        assert app.consoles.read_only
        term = await open_console(pilot, app, "web")
        await until(pilot, lambda: "web booted on stdio" in rows(term), what="the history")
        await until(pilot, lambda: "view only" in hint(term), what="the hint")
        assert "started with --read-only" in hint(term)
        assert "t: take over" not in hint(term)
        info = str(app.screen.query_one("#console-info").content)  # type: ignore[attr-defined]
        assert "Taking it over is off: started with --read-only" in info
        await pilot.press("t")
        await until(pilot, lambda: any("view only" in note for note in notes), what="why")
        assert console(app) is app.screen  # no question
        connection = app.consoles.get("web")
        assert connection is not None and not connection.confirm_takeover()
        assert takeovers.calls == []


async def test_read_only_app_sends_no_keys_but_scroll_and_search_work(server: Server) -> None:
    endpoints = Endpoints()
    endpoints.by_name["console"] = unix("console", server.path)
    app = console_app(endpoints, read_only=True)
    async with app.run_test(size=SIZE) as pilot:
        term = await open_console(pilot, app, "console")
        await until(pilot, lambda: server.client is not None, what="connected")
        await until(pilot, lambda: "view only" in hint(term), what="the hint")
        assert "connected to" in hint(term) and "send size" not in hint(term)
        lines = b"".join(b"line %03d\r\n" % i for i in range(120))
        server.send(b"hidden needle\r\n" + lines + b"\x1b[6n\x1b[18t# ")
        await pilot.press("l", "s", "enter", "f12", "ctrl+c")
        await until(pilot, lambda: "line 119" in rows(term), what="the output")
        await pilot.press("shift+pageup")
        await until(pilot, lambda: term.scrollback_offset > 0, what="scrolled back")
        await pilot.press("ctrl+f", *"needle", "enter")
        await until(pilot, lambda: "hidden needle" in rows(term), what="found")
        # The socket is alive and in order: a marker after the keys comes back.
        server.send(b"marker\r\n")
        await until(pilot, lambda: "marker" in "\n".join(rows(term)) or term.scrollback_offset)
        assert bytes(server.received) == b""  # no key, no size, no reply to the queries
        assert console(app) is app.screen


async def test_without_root_the_console_is_view_only(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patch:
        patch.setattr(app_module.os, "geteuid", lambda: 1000)
        plain = MicroVMApp(app_module.Settings(interval=3600.0), replay(), tty_watch=False)
    assert plain.read_only_reason == "not running as root"
    assert plain.consoles.read_only
    endpoints = Endpoints()
    endpoints.by_name["console"] = unix("console", server.path)

    def connection(vm: VM, settings: HostSettings) -> ConsoleConnection:
        # The socket is in the VM's state dir (the console opens none elsewhere).
        vm = dataclasses.replace(vm, path=Path(server.path).parent)
        return ConsoleConnection(vm, settings, discover=endpoints, read_only=True)

    plain.consoles = ConsoleManager(plain.settings.host, read_only=True, factory=connection)
    async with plain.run_test(size=SIZE) as pilot:
        term = await open_console(pilot, plain, "console")
        await until(pilot, lambda: "not running as root" in hint(term), what="the hint")
        assert term.read_only
        await pilot.press("x", "enter")
        server.send(b"marker\r\n")
        await until(pilot, lambda: "marker" in rows(term))
        assert bytes(server.received) == b""
