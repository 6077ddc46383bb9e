"""The console against the lab's real guests: endpoints, the screen, typing, restarts, takeover.

Every wait polls real state with a deadline. The takeover test restarts `web` at its end (the
takeover is one-way until a restart) and waits until it has booted again, so the lab is left as
it was found.

Development: ``MVTUI_CONSOLE_LAB=/var/tmp/DIR`` reuses a lab that is already up
(``python -m tui.lab up DIR``) instead of the session's own.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Static

from tests.conftest import until_in_app, wait_for
from tui.host.console import (
    ConnectionState,
    ConsoleManager,
    EndpointKind,
    discover_endpoint,
    read_marker,
)
from tui.host.inventory import list_vms
from tui.host.model import VM
from tui.lab import Lab
from tui.lab.lab import guest_booted
from tui.screens.console import ConsoleScreen, TakeoverScreen
from tui.vt import line_runs
from tui.widgets.terminal import TerminalWidget
from tui.widgets.terminal.render import run_cells

pytestmark = pytest.mark.lab

DETACH = "ctrl+right_square_bracket"  # what the terminal sends for ctrl+]


@pytest.fixture(scope="module")
def clab(request: pytest.FixtureRequest) -> Lab:
    root = os.environ.get("MVTUI_CONSOLE_LAB")
    if root:
        return Lab(Path(root))
    return request.getfixturevalue("lab")


def vms(lab: Lab) -> dict[str, VM]:
    return {vm.name: vm for vm in list_vms(lab.settings, links=False).vms}


def unit_show(lab: Lab, name: str) -> dict[str, str]:
    s = lab.settings
    out = subprocess.run(
        s.systemctl_argv("show", f"microvm@{name}.service", "-p", "ActiveState,MainPID"),
        env=s.command_env(),
        capture_output=True,
        text=True,
        check=True,
        timeout=10,
    ).stdout
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def restart(lab: Lab, name: str) -> None:
    s = lab.settings
    subprocess.run(
        s.systemctl_argv("restart", f"microvm@{name}.service"),
        env=s.command_env(),
        check=True,
        capture_output=True,
        timeout=60,
    )


def history_of(endpoint: object) -> bool:
    """A read-only history endpoint that follows the lab's journal for web."""
    return (
        getattr(endpoint, "kind", None) is EndpointKind.JOURNAL
        and "--unit=microvm@web.service" in endpoint.argv  # type: ignore[attr-defined]
        and any(a.startswith("--directory=") for a in endpoint.argv)  # type: ignore[attr-defined]
    )


def pane_text(term: TerminalWidget) -> str:
    """Everything the pane holds: scrollback, then the screen, as plain text."""
    screen = term.emulator.screen
    lines = [
        "".join(run_cells(line_runs(cells, screen.columns))).rstrip() for cells in screen.history
    ]
    lines += [term.render_line(y).text.rstrip() for y in range(term.rows)]
    return "\n".join(lines)


async def until(
    pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float = 30.0, what: str = ""
) -> Any:
    return await until_in_app(
        pilot, predicate, timeout, what=what, detail=lambda: describe(pilot.app)
    )


def describe(app: Any) -> str:
    """What the console showed, for a failure message."""
    screen = app.console_screen() if isinstance(app, ConsoleApp) else None
    if screen is None:
        return f"\nscreen: {app.screen!r}"
    status = screen.console_status
    text = pane_text(screen.terminal).rstrip()[-1500:]
    return f"\nstatus: {status}\npane:\n{text}"


class ConsoleApp(App[None]):
    """The smallest app that shows the console screen, as the real app will push it."""

    def __init__(self, vm: VM, lab: Lab, manager: ConsoleManager) -> None:
        super().__init__()
        self.vm, self.lab, self.manager = vm, lab, manager

    def on_mount(self) -> None:
        self.push_screen(ConsoleScreen(self.vm, self.lab.settings, self.manager))

    def console_screen(self) -> ConsoleScreen | None:
        for screen in self.screen_stack:
            if isinstance(screen, ConsoleScreen):
                return screen
        return None


def status_of(app: ConsoleApp) -> Any:
    screen = app.console_screen()
    return screen.console_status if screen is not None else None


async def type_line(pilot: Pilot[Any], text: str) -> None:
    """Ctrl+U first: whatever an earlier client left half-typed on the shell's line goes."""
    await pilot.press("ctrl+u", *text, "enter")


# --- endpoints --------------------------------------------------------------------------------


def test_endpoints_of_the_lab(clab: Lab) -> None:
    all_vms = vms(clab)
    state = clab.settings.state_dir

    console = discover_endpoint(all_vms["console"], clab.settings)
    assert console.kind is EndpointKind.UNIX and console.interactive
    assert console.path == str(state / "console" / "console-console.sock")
    assert console.source == "qmp" and not console.needs_confirmation

    marker = read_marker(all_vms["web"])
    pid = int(unit_show(clab, "web")["MainPID"])
    if marker is None or marker.main_pid != pid:  # not taken over right now
        web = discover_endpoint(all_vms["web"], clab.settings)
        assert web.kind is EndpointKind.TAKEOVER and web.needs_confirmation
        assert not web.interactive and web.main_pid == pid
        assert web.path == str(state / "web" / "microvm-tui.console.sock")
        assert history_of(web.fallback)
        assert "one-way until web restarts" in web.explanation


@pytest.mark.parametrize("name", ["idle", "broken"])
def test_stopped_and_broken_say_why_quickly(clab: Lab, name: str) -> None:
    vm = vms(clab)[name]
    t0 = time.monotonic()
    endpoint = discover_endpoint(vm, clab.settings)
    assert time.monotonic() - t0 < 5
    assert endpoint.kind is EndpointKind.NONE and not endpoint.interactive
    if name == "idle":
        assert "idle is not running (inactive" in endpoint.explanation
        assert endpoint.fallback is not None and endpoint.fallback.kind is EndpointKind.JOURNAL
    else:
        assert "broken cannot run" in endpoint.explanation
        assert "does not exist" in endpoint.explanation


def test_stdio_serial_without_qmp_is_read_only_history(clab: Lab) -> None:
    vm = dataclasses.replace(vms(clab)["web"], socket=None)
    endpoint = discover_endpoint(vm, clab.settings)
    assert history_of(endpoint) and not endpoint.interactive
    assert "stdio" in endpoint.explanation and "no QMP control socket" in endpoint.explanation
    assert 'microvm.qemu.extraArgs = [ "-chardev" "socket,id=console' in endpoint.hint
    assert "microvm.qemu.serialConsole = false;" in endpoint.hint


# --- the screen ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["idle", "broken"])
async def test_screen_for_a_vm_without_console(clab: Lab, name: str) -> None:
    with ConsoleManager(clab.settings) as manager:
        app = ConsoleApp(vms(clab)[name], clab, manager)
        async with app.run_test(size=(100, 30)) as pilot:
            status = await until(
                pilot,
                lambda: (s := status_of(app)) and s.state is not ConnectionState.CONNECTING and s,
                10,
                "a status",
            )
            screen = app.console_screen()
            assert screen is not None
            term = screen.terminal
            assert term.read_only and not status.interactive
            expected = "not running" if name == "idle" else "cannot run"
            assert expected in term.read_only_reason
            info = str(screen.query_one("#console-info", Static).content)
            assert expected in info
            await pilot.press("x", "enter")  # read-only: nothing is sent, nothing breaks
            await pilot.press(DETACH)
            await until(pilot, lambda: app.console_screen() is None, 5, "the screen to close")


async def test_type_into_the_console_vm_and_reconnect_after_restart(clab: Lab) -> None:
    vm = vms(clab)["console"]
    with ConsoleManager(clab.settings) as manager:
        app = ConsoleApp(vm, clab, manager)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: (s := status_of(app)) and s.interactive, 20, "attached")
            screen = app.console_screen()
            assert screen is not None
            assert "connected to" in screen.terminal.status
            assert "console-console.sock" in screen.terminal.status
            await type_line(pilot, "echo $((6*7))")
            await until(pilot, lambda: "\n42\n" in pane_text(screen.terminal), 20, "42")

            old_pid = unit_show(clab, "console")["MainPID"]
            restart(clab, "console")
            await until(
                pilot,
                lambda: "microvm-lab guest console up" in pane_text(screen.terminal),
                90,
                "the new boot in the pane",
            )
            assert unit_show(clab, "console")["MainPID"] != old_pid
            text = pane_text(screen.terminal)
            assert "Linux version" in text
            assert (status_of(app)).interactive
            # And it is a live console again.
            await type_line(pilot, "echo $((7*8))")
            await until(pilot, lambda: "\n56\n" in pane_text(screen.terminal), 30, "56")


async def test_the_console_guest_learns_the_pane_size(clab: Lab) -> None:
    """A serial line has no window size: the size key types `stty rows R cols C` for the pane,
    and a resize-style cursor report (busybox resize's bytes, done in the guest's shell: the
    lab's busybox has no resize applet) gets the same answer."""
    vm = vms(clab)["console"]
    with ConsoleManager(clab.settings) as manager:
        app = ConsoleApp(vm, clab, manager)
        async with app.run_test(size=(100, 30)) as pilot:
            await until(pilot, lambda: (s := status_of(app)) and s.interactive, 20, "attached")
            screen = app.console_screen()
            assert screen is not None
            term = screen.terminal
            assert (term.rows, term.columns) == (28, 100)  # the title and hint lines: ours
            size = f"{term.rows}x{term.columns}"
            try:
                # Something else first (busybox stty refuses 0, the size a serial tty boots with).
                await type_line(pilot, "stty rows 5 cols 7; echo before=$(stty size | tr ' ' x)")
                await until(pilot, lambda: "\nbefore=5x7\n" in pane_text(term), 20, "5x7")
                await pilot.press("ctrl+u", "f12")
                await type_line(pilot, "echo after=$(stty size | tr ' ' x)")
                await until(pilot, lambda: f"\nafter={size}\n" in pane_text(term), 20, size)

                await type_line(
                    pilot,
                    "stty rows 5 cols 7 -echo -icanon;"
                    " printf '\\0337\\033[r\\033[999;999H\\033[6n';"
                    " IFS='[;' read -r -d R _ r c; printf '\\0338'; stty echo icanon;"
                    " stty rows $r cols $c; echo dance=$(stty size | tr ' ' x)",
                )
                await until(pilot, lambda: f"dance={size}" in pane_text(term), 20, "the dance")
            finally:
                # Echo and line editing as the lab made them (the size stays the pane's: it
                # cannot be set back to 0x0).
                await type_line(pilot, "stty echo icanon")


async def test_takeover_of_web(clab: Lab) -> None:
    vm = vms(clab)["web"]
    transcript = clab.settings.state_dir / "web" / "microvm-tui.console.log"
    since = time.time()
    took_over = restarted = False
    try:
        with ConsoleManager(clab.settings) as manager:
            app = ConsoleApp(vm, clab, manager)
            async with app.run_test(size=(100, 30)) as pilot:
                # Read-only history first, and the question.
                await until(
                    pilot,
                    lambda: isinstance(app.screen, TakeoverScreen) and app.screen.query("#body"),
                    20,
                    "the question",
                )
                status = status_of(app)
                assert status.state is ConnectionState.READ_ONLY and status.takeover_available
                body = str(app.screen.query_one("#body", Static).content)
                assert "one-way until web restarts" in body
                assert "the journal of microvm@web" in body
                # Cancel: the history with the hint; a later visit does not ask again.
                await pilot.press("n")
                await until(pilot, lambda: app.screen is app.console_screen(), 5, "cancelled")
                await pilot.press("escape")
                await until(pilot, lambda: app.console_screen() is None, 5, "the screen to close")
                again = ConsoleScreen(vm, clab.settings, manager)
                await app.push_screen(again)
                await until(pilot, lambda: "t: take over" in again.terminal.read_only_reason)
                await pilot.pause()
                assert app.screen is again  # not asked again
                assert "microvm-lab guest web up" in pane_text(again.terminal)  # its history
                await pilot.press("t")
                await until(pilot, lambda: isinstance(app.screen, TakeoverScreen), 5, "t asks")
                await pilot.press("y")
                took_over = True
                await until(pilot, lambda: (s := status_of(app)) and s.interactive, 20, "taken")
                screen = app.console_screen()
                assert screen is not None and app.screen is screen
                assert "microvm-tui.console.sock" in screen.terminal.status
                await type_line(pilot, "echo $((6*7))")
                await until(pilot, lambda: "\n42\n" in pane_text(screen.terminal), 20, "42")
                wait_for(lambda: b"42\r\n" in transcript.read_bytes(), 10, what="transcript")
                marker = read_marker(vm)
                assert marker is not None
                assert str(marker.main_pid) == unit_show(clab, "web")["MainPID"]

                # Leave, come back: no question, same connection, its output kept.
                await pilot.press(DETACH)
                await until(pilot, lambda: app.console_screen() is None, 5, "the screen to close")
                again = ConsoleScreen(vm, clab.settings, manager)
                await app.push_screen(again)
                await until(
                    pilot, lambda: again.console_status and again.console_status.interactive
                )
                assert app.screen is again
                assert "\n42\n" in pane_text(again.terminal)
                await type_line(pilot, "echo $((7*8))")
                await until(pilot, lambda: "\n56\n" in pane_text(again.terminal), 20, "56")
                await pilot.press(DETACH)

        # A new app run (a fresh manager) reattaches without asking and shows the transcript.
        with ConsoleManager(clab.settings) as manager:
            app = ConsoleApp(vm, clab, manager)
            async with app.run_test(size=(100, 30)) as pilot:
                await until(pilot, lambda: (s := status_of(app)) and s.interactive, 20, "attached")
                screen = app.console_screen()
                assert screen is not None and app.screen is screen  # no dialog
                await until(pilot, lambda: "\n56\n" in pane_text(screen.terminal), 10, "history")
                assert "transcript" in pane_text(screen.terminal)

                # The restart ends the takeover: back to the journal, read-only, said so.
                since = time.time()
                restart(clab, "web")
                took_over, restarted = False, True
                status = await until(
                    pilot,
                    lambda: (s := status_of(app)) and s.takeover_ended and s,
                    60,
                    "the takeover to end",
                )
                assert status.state is ConnectionState.READ_ONLY
                assert "takeover ended" in screen.terminal.read_only_reason
                await until(
                    pilot,
                    lambda: "microvm-lab guest web up" in pane_text(screen.terminal),
                    90,
                    "the new boot, from the journal",
                )
    finally:
        if took_over:  # the test failed half-way: still leave web as it was found
            since = time.time()
            restart(clab, "web")
            restarted = True
        if restarted:
            wait_for(
                lambda: (
                    unit_show(clab, "web")["ActiveState"] == "active"
                    and guest_booted(clab.settings, "web", since)
                ),
                120,
                what="web to boot again on stdio",
            )
    assert discover_endpoint(vms(clab)["web"], clab.settings).kind is EndpointKind.TAKEOVER
