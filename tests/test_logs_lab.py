"""The Logs view against the lab's real journald: db's guest prints err/warning/info lines on
its serial console every few seconds (lab.tick), crashy restarts by itself, web has a guest
journal share in the FAQ layout.

Every wait polls real state with a deadline. Development: ``MVTUI_LOGS_LAB=/var/tmp/DIR``
reuses a lab that is already up instead of the session's own.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from textual.app import App
from textual.message import Message
from textual.pilot import Pilot

from tests.conftest import until_in_app, wait_for
from tui.host.inventory import list_vms
from tui.host.logs.boot import boot_start_usec
from tui.host.logs.query import LogQuery, vm_units
from tui.host.logs.reader import read_journal
from tui.host.logs.summary import JournalSummary, last_error, problem_counts
from tui.host.model import VM
from tui.lab import Lab
from tui.screens.logs import LogsScreen

pytestmark = pytest.mark.lab

SIZE = (140, 36)


@pytest.fixture(scope="module")
def llab(request: pytest.FixtureRequest) -> Lab:
    root = os.environ.get("MVTUI_LOGS_LAB")
    if root:
        return Lab(Path(root))
    return request.getfixturevalue("lab")


@pytest.fixture(scope="module")
def ticked(llab: Lab) -> Lab:
    """The lab once db's guest has printed its first tick lines (every 4 s after it booted):
    err, warning and info lines of microvm@db are in the journal."""

    def tick_lines() -> bool:
        query = LogQuery(units=("microvm@db.service",), priority=4, grep="lab tick", lines=5)
        return {e.priority for e in read_journal(llab.settings, query).lines} >= {3, 4}

    wait_for(tick_lines, 60, 0.5, "db's first tick lines in the journal")
    return llab


def vm_named(lab: Lab, name: str) -> VM:
    return next(vm for vm in list_vms(lab.settings, links=False).vms if vm.name == name)


class LogsApp(App[None]):
    """The smallest app that shows the Logs screen, as the real app pushes it."""

    def __init__(self, vm: VM, lab: Lab, arrivals: list[tuple[float, Message]]) -> None:
        super().__init__()
        self.vm = vm
        self.lab = lab
        self.arrivals = arrivals

    def on_mount(self) -> None:
        self.push_screen(LogsScreen(self.vm, self.lab.settings))

    @property
    def logs(self) -> LogsScreen:
        screen = self.screen
        assert isinstance(screen, LogsScreen)
        return screen


def app_for(lab: Lab, name: str) -> tuple[LogsApp, list[tuple[float, Message]]]:
    arrivals: list[tuple[float, Message]] = []
    return LogsApp(vm_named(lab, name), lab, arrivals), arrivals


def hook(arrivals: list[tuple[float, Message]]) -> Callable[[Message], None]:
    def record(message: Message) -> None:
        if isinstance(message, LogsScreen.Batch):
            arrivals.append((time.time(), message))

    return record


async def until(pilot: Pilot[Any], predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    app = pilot.app
    return await until_in_app(
        pilot,
        predicate,
        timeout,
        what=what,
        detail=lambda: f"\nstatus: {app.logs.status!r}; filters {app.logs.filters}",
    )


async def settled(pilot: Pilot[Any]) -> None:
    await until(pilot, lambda: pilot.app.logs.settled, 20, "the lines of the current filters")


def texts(app: LogsApp) -> list[str]:
    return [line.text for line in app.logs.view.entries]


async def test_a_guest_console_line_reaches_the_view_within_a_second(ticked: Lab) -> None:
    app, arrivals = app_for(ticked, "db")
    async with app.run_test(size=SIZE, message_hook=hook(arrivals)) as pilot:
        await settled(pilot)
        # A new tick line arrives every 4 s; the first look may end in a boot log longer than
        # the view's window (db restarted by an earlier test), so the ticks are waited for.
        await until(
            pilot,
            lambda: any(
                "lab tick" in line.text for _, batch in arrivals for line in batch.lines
            ),
            30,
            "a new tick line followed live",
        )
        assert any("lab tick" in t for t in texts(app)), texts(app)[-5:]
        for arrived, batch in arrivals:
            for line in batch.lines:
                if "lab tick" in line.text:
                    # From journald's receipt of the line to the view: under a second.
                    assert arrived - line.usec / 1e6 < 1.0, (line, arrived)
        view = app.logs.view
        shown = [view.row_text(y) for y in range(view.size.height)]
        assert any("lab tick" in row for row in shown), shown


async def test_priority_and_unit_filters(ticked: Lab) -> None:
    app, arrivals = app_for(ticked, "db")
    async with app.run_test(size=SIZE, message_hook=hook(arrivals)) as pilot:
        await settled(pilot)
        assert {line.priority for line in app.logs.view.entries} >= {3, 4, 6}
        await pilot.press("p", "p", "p")  # all -> info -> warning -> err
        await settled(pilot)
        assert app.logs.filters.priority == "err"
        entries = list(app.logs.view.entries)
        assert entries and all(e.priority <= 3 for e in entries)
        assert any("an error from the guest" in e.text for e in entries)
        await pilot.press("p")  # back to all
        await pilot.press("u")  # microvm@db only
        await settled(pilot)
        assert app.logs.filters.unit == "microvm@db.service"
        assert {e.unit for e in app.logs.view.entries} == {"microvm@db.service"}
        await pilot.press("u")  # microvm-tap-interfaces@db: db has no tap
        await settled(pilot)
        assert app.logs.filters.unit == "microvm-tap-interfaces@db.service"
        assert list(app.logs.view.entries) == [] and app.logs.status == "no lines match"


async def test_text_filter(ticked: Lab) -> None:
    app, arrivals = app_for(ticked, "db")
    async with app.run_test(size=SIZE, message_hook=hook(arrivals)) as pilot:
        await settled(pilot)
        await pilot.press("slash")
        await pilot.press(*"warning from")
        await pilot.press("enter")
        await settled(pilot)
        entries = list(app.logs.view.entries)
        assert entries and all("a warning from the guest" in e.text for e in entries)
        await pilot.press("slash", "ctrl+u", "(", "enter")
        await settled(pilot)
        assert app.logs.status.startswith("search: not a regular expression")


async def test_guest_journal_source(llab: Lab) -> None:
    app, arrivals = app_for(llab, "web")
    async with app.run_test(size=SIZE, message_hook=hook(arrivals)) as pilot:
        await settled(pilot)
        await pilot.press("g")
        await settled(pilot)
        entries = list(app.logs.view.entries)
        assert {e.unit for e in entries} >= {"kernel", "nginx", "sshd"}
        await pilot.press("p", "p", "p")
        await settled(pilot)
        assert {e.text for e in app.logs.view.entries} == {
            "[emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)",
            "EXT4-fs error (device vdb): ext4_lookup: deleted inode referenced",
        }


async def test_no_guest_journal_shows_the_faq_lines(llab: Lab) -> None:
    app, arrivals = app_for(llab, "db")
    async with app.run_test(size=SIZE, message_hook=hook(arrivals)) as pilot:
        await settled(pilot)
        await pilot.press("g")
        await settled(pilot)
        assert "No guest journal found in db's shares" in app.logs.status
        assert 'mountPoint = "/var/log/journal";' in app.logs.status


async def test_since_this_boot_of_a_restarting_vm(llab: Lab) -> None:
    """crashy restarts by itself every few seconds: "this boot" is its current start only."""
    settings = llab.settings
    def restarted() -> list[Any]:
        lines = read_journal(settings, LogQuery(units=vm_units("crashy"), lines=1000)).lines
        starts = [e for e in lines if "could not open kernel file" in e.text]
        return lines if len(starts) >= 2 else []

    every = wait_for(restarted, 60, 0.5, "crashy to have started twice")
    app, arrivals = app_for(llab, "crashy")
    async with app.run_test(size=SIZE, message_hook=hook(arrivals)) as pilot:
        await settled(pilot)
        await pilot.press("s")  # all -> this boot
        await settled(pilot)
        start = app.logs.boot_start_usec
        assert start is not None and start <= (boot_start_usec(settings, "crashy")[0] or 0)
        boot = list(app.logs.view.entries)
        # systemd's timestamps have whole seconds here: a line of this start is at most 1 s
        # before the start it reports.
        assert all(e.usec >= start - 1_000_000 for e in boot), (start, boot)
        assert len(boot) < len([e for e in every if e.usec <= time.time() * 1e6])


async def test_hostile_lines_render_as_text(llab: Lab) -> None:
    """A unit of idle's writes escapes, markup and invalid UTF-8 to the journal."""
    token = os.urandom(6).hex()  # this run's line, not one of an earlier run on the same lab
    hostile = (
        b"\x1b]0;title\x07\x1b[31mred\x1b[0m [/bold] [b]x[/b] \xff\xfe "
        + "\u202eevil".encode()
        + f" {token} ".encode()
        + b"y" * 9000
        + b"\n"
    )
    s = llab.settings
    unit = "install-microvm-idle.service"
    subprocess.run(
        s.systemctl_argv("reset-failed", unit), env=s.command_env(), capture_output=True, timeout=30
    )
    payload = llab.root / "hostile-line"
    payload.write_bytes(hostile)
    # The writer stays alive until the test stops it: journald finds a line's unit from the
    # writer's cgroup when it reads the line, and a user manager (the lab's) does not pass the
    # unit's name with the stream as PID 1 does. A `cat` reaped before journald read its line
    # (a loaded machine) left the line without a unit, never matched by `--unit`.
    run = s.systemctl_argv()  # ["systemctl", "--user"]: the same manager, through systemd-run
    run = ["systemd-run", *run[1:], f"--unit={unit}", "--quiet", "--"]
    run += ["/usr/bin/tail", "--bytes=+1", "--follow=name", str(payload)]
    proc = subprocess.run(run, env=s.command_env(), capture_output=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    try:

        def in_journal() -> bool:
            lines = read_journal(s, LogQuery(units=(unit,), lines=5)).lines
            return any(token in e.text for e in lines)

        wait_for(in_journal, 60, 0.2, "journald to have the hostile line")
        app, arrivals = app_for(llab, "idle")
        async with app.run_test(size=SIZE, message_hook=hook(arrivals)) as pilot:
            await settled(pilot)
            mine = [e for e in app.logs.view.entries if e.unit == unit and token in e.text]
            assert mine, texts(app)[-5:]
            text = mine[-1].text
            assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
            assert text.startswith("red [/bold] [b]x[/b] ")
            assert len(text) <= 4096
            view = app.logs.view
            await pilot.press("end")
            await pilot.pause()
            rendered = "\n".join(view.row_text(y) for y in range(view.size.height))
            assert "[/bold]" in rendered and "\x1b" not in rendered
    finally:
        subprocess.run(
            s.systemctl_argv("stop", unit), env=s.command_env(), capture_output=True, timeout=60
        )


def test_problem_counts_and_last_error(ticked: Lab) -> None:
    counts, error = problem_counts(ticked.settings)
    assert error is None
    assert counts["db"].errors >= 1 and counts["db"].warnings >= 1
    assert "web" not in counts or counts["web"].errors == 0
    line = last_error(ticked.settings, "crashy")
    assert line is not None and "could not open kernel file" in line.text


def test_journal_summary_refreshes_off_the_poll(ticked: Lab) -> None:
    """A poll never waits for journalctl; the refresh runs once a minute, or at once when a
    VM newly fails, and brings the failing VM's last error line."""
    summary = JournalSummary(ticked.settings, refresh=60.0)
    started = time.monotonic()
    summary.poll(set())
    assert time.monotonic() - started < 0.05  # started a thread, did not wait
    wait_for(lambda: summary.refreshes == 1, 30, what="the first refresh")
    counts, errors, error = summary.snapshot()
    assert error is None and counts["db"].errors >= 1 and errors == {}
    summary.poll(set())
    assert summary.refreshes == 1  # not due for a minute
    summary.poll({"crashy"})  # crashy newly failing: refreshed at once
    wait_for(lambda: summary.refreshes == 2, 30, what="the refresh for crashy")
    _counts, errors, _error = summary.snapshot()
    assert "could not open kernel file" in errors["crashy"].text
