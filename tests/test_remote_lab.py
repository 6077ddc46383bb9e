"""A remote VM's console and logs in the real app (``--host``), against the lab (real QEMU
guests, a real systemd manager and journald) reached over real ssh to the lab host's own sshd:
the app's agent sessions run ``microvm-tui agent console|logs VM`` there.

`echo $((6*7))` in the console guest's remote console prints 42 (also opened from the fleet
view, where the VM's key is ``lab-ssh/console``); the remote Logs view shows
db's unit journal lines and follows a new tick line; leaving the console ends its ssh session.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from tests.conftest import until_in_app
from tui.agent.client import RemoteSource
from tui.agent.console_client import RemoteConsoleConnection
from tui.agent.hosts import RemoteHost
from tui.app import MicroVMApp
from tui.config import load_settings
from tui.host.logs.query import vm_units
from tui.lab import Lab
from tui.screens.console import ConsoleScreen
from tui.screens.logs import LogsScreen
from tui.vt import line_runs
from tui.widgets.terminal import TerminalWidget
from tui.widgets.terminal.render import run_cells

pytestmark = pytest.mark.lab

REPO = Path(__file__).resolve().parent.parent
DETACH = "ctrl+right_square_bracket"


def agent_command(lab: Lab) -> str:
    """The agent as the lab host runs it: this checkout's code, the lab's settings."""
    return (
        f"cd {shlex.quote(str(REPO))} && exec {shlex.quote(sys.executable)} -m tui "
        f"--config {shlex.quote(str(lab.config_path))} agent"
    )


def remote_app(lab: Lab) -> MicroVMApp:
    host = RemoteHost("lab-ssh", tuple(lab.sshd.ssh_args()), agent_command(lab))
    settings = dataclasses.replace(load_settings(lab.config_path), hosts={host.name: host})
    source = RemoteSource(host, interval=settings.interval)
    return MicroVMApp(settings, source, tty_watch=False, remote=host.name)


def pane_text(term: TerminalWidget) -> str:
    screen = term.emulator.screen
    lines = [
        "".join(run_cells(line_runs(cells, screen.columns))).rstrip() for cells in screen.history
    ]
    lines += [term.render_line(y).text.rstrip() for y in range(term.rows)]
    return "\n".join(lines)


async def until(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    def detail() -> str:
        screen = pilot.app.screen
        if isinstance(screen, ConsoleScreen):
            return f"\nstatus: {screen.console_status}\n{pane_text(screen.terminal)[-1500:]}"
        if isinstance(screen, LogsScreen):
            return f"\nstatus: {screen.status!r}"
        return f"\nscreen: {screen!r}"

    return await until_in_app(pilot, predicate, timeout, what=what, detail=detail)


async def open_for(pilot: Pilot[Any], app: MicroVMApp, name: str, key: str) -> None:
    await until(
        pilot,
        lambda: (
            app.snapshot is not None
            and not app.snapshot.partial
            and any(vm.name == name for vm in app.snapshot.inventory.vms)
        ),
        60,
        f"{name} in the remote listing",
    )
    app.main_screen.table.select_name(name)
    await pilot.pause()
    await pilot.press(key)


async def test_echo_in_a_remote_console_prints_42(lab: Lab) -> None:
    app = remote_app(lab)
    async with app.run_test(size=(110, 32)) as pilot:
        await open_for(pilot, app, "console", "c")
        screen = await until(
            pilot,
            lambda: app.screen if isinstance(app.screen, ConsoleScreen) else None,
            10,
            "the console screen",
        )
        await until(
            pilot,
            lambda: screen.console_status and screen.console_status.interactive,
            60,
            "the remote console connected",
        )
        assert screen.terminal.status.startswith("lab-ssh: connected to ")
        assert "console-console.sock" in screen.terminal.status
        await pilot.press("ctrl+u", *"echo $((6*7))", "enter")
        await until(pilot, lambda: "\n42\n" in pane_text(screen.terminal), 30, "42")
        conn = app.consoles.get("console")
        assert isinstance(conn, RemoteConsoleConnection)
        pid = conn.ssh_pid
        assert pid is not None
        await pilot.press(DETACH)
        await until(pilot, lambda: not Path(f"/proc/{pid}").exists(), 10, "its ssh gone")
    app.consoles.close_all()


async def test_the_fleet_view_opens_a_remote_console_and_echo_prints_42(lab: Lab) -> None:
    """The fleet (--all-hosts): this host is the lab, and the lab over its sshd is host
    lab-ssh. `c` on lab-ssh/console in the fleet table opens that VM's console through
    lab-ssh's agent, asked for by its own name (``console``, not the fleet's key)."""
    from tui.feed.fleet import FLEET_REMOTE, fleet_source
    from tui.screens.fleet import FleetScreen
    from tui.widgets.fleet_table import FleetTable

    host = RemoteHost("lab-ssh", tuple(lab.sshd.ssh_args()), agent_command(lab))
    settings = dataclasses.replace(load_settings(lab.config_path), hosts={host.name: host})
    source = fleet_source(settings, [host], "local")
    app = MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE)
    async with app.run_test(size=(160, 40)) as pilot:
        fleet = await until(
            pilot, lambda: app.screen if isinstance(app.screen, FleetScreen) else None, 30, "fleet"
        )
        table = fleet.query_one(FleetTable)
        await until(pilot, lambda: "lab-ssh/console" in table.keys, 120, "the remote listing")
        table.move_cursor(row=table.get_row_index("lab-ssh/console"))
        await pilot.press("c")
        screen = await until(
            pilot,
            lambda: app.screen if isinstance(app.screen, ConsoleScreen) else None,
            10,
            "the console screen",
        )
        await until(
            pilot,
            lambda: screen.console_status and screen.console_status.interactive,
            60,
            "the remote console connected",
        )
        assert screen.terminal.status.startswith("lab-ssh: connected to ")
        await pilot.press("ctrl+u", *"echo $((6*7))", "enter")
        await until(pilot, lambda: "\n42\n" in pane_text(screen.terminal), 30, "42")
        conn = screen.connection
        assert isinstance(conn, RemoteConsoleConnection)
        assert conn.name == "console" and conn.host.name == "lab-ssh"
        assert app.consoles.names() == []  # this host's manager was not asked
        pid = conn.ssh_pid
        assert pid is not None
        await pilot.press(DETACH)
        await until(pilot, lambda: app.screen is fleet, 10, "back on the fleet view")
        await until(pilot, lambda: not Path(f"/proc/{pid}").exists(), 10, "its ssh gone")
    app.streams.close_all()


async def test_the_remote_logs_view_shows_and_follows_the_unit_journal(lab: Lab) -> None:
    app = remote_app(lab)
    batches: list[LogsScreen.Batch] = []

    def hook(message: Any) -> None:
        if isinstance(message, LogsScreen.Batch):
            batches.append(message)

    async with app.run_test(size=(140, 36), message_hook=hook) as pilot:
        await open_for(pilot, app, "db", "l")
        screen = await until(
            pilot,
            lambda: app.screen if isinstance(app.screen, LogsScreen) else None,
            10,
            "the logs screen",
        )
        await until(pilot, lambda: screen.settled, 60, "the first lines over ssh")
        lines = screen.view.entries
        assert lines and {line.unit for line in lines} <= set(vm_units("db"))
        assert any(line.unit == "microvm@db.service" for line in lines)
        # db's guest prints a tick line every 4 s: one arrives followed, over the agent.
        await until(
            pilot,
            lambda: any("lab tick" in line.text for b in batches for line in b.lines),
            30,
            "a new tick line followed live",
        )
        assert any("lab tick" in line.text for line in screen.view.entries)
        followers = journal_followers(lab, "microvm@db.service")
        assert followers  # the agent's, on the lab host
        await pilot.press("escape")  # the view goes: its ssh session, and with it the agent's
        await until(
            pilot,
            lambda: not journal_followers(lab, "microvm@db.service"),
            10,
            "the agent's journalctl ended",
        )


def journal_followers(lab: Lab, unit: str) -> list[int]:
    """journalctl --follow processes reading UNIT of LAB's journal (the agent's, here on the lab
    host; other labs' have other journal directories)."""
    directory = f"--directory={lab.settings.journal_dir}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if (
            argv
            and argv[0].endswith(b"journalctl")
            and b"--follow" in argv
            and f"--unit={unit}".encode() in argv
            and directory in argv
        ):
            found.append(int(entry.name))
    return found
