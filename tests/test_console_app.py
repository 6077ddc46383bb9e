"""The console inside the real app: MicroVMApp, `c` on a VM, the real ConsoleScreen, over real
ConsoleConnections to a unix socket server like qemu's serial chardev or a followed log file.

Only discovery (which endpoint a VM has) and the takeover step (QMP chardev-change, which needs
a real QEMU: the lab tests do that) are chosen by the test; everything after them is the app's
own code. Waits poll real state with a deadline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from rich.style import Style
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets import Input as TextInput

from tests.conftest import until_in_app
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

    def connection(vm: VM, settings: HostSettings) -> ConsoleConnection:
        return ConsoleConnection(
            vm, settings, discover=endpoints, takeover=takeover, read_only=read_only
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
    return f"\nstatus: {screen.console_status}\nhint: {hint(term)}\npane:\n" + "\n".join(
        rows(term)
    )


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


async def open_console(pilot: Pilot[Any], app: MicroVMApp, name: str) -> TerminalWidget:
    await until(pilot, lambda: app.polls >= 1)
    app.main_screen.table.select_name(name)
    await pilot.pause()
    await pilot.press("c")
    await until(pilot, lambda: console(app) is not None, what=f"{name}'s console")
    return terminal(app)


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
