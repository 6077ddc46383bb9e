"""Snapshots of the actions UI: confirmation dialogs, the jobs panel, the progress display.

SVGs live in the top-level ``snapshots/test_actions_ui_snapshots/`` (tests/snapshot_support.py).
Refresh with ``pytest tests/test_actions_ui_snapshots.py --snapshot-update``, then look at them.
Everything shown is fixed: fake VMs, hand-made job snapshots, a frozen clock, UTC.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widgets import Static

from tests.test_actions_ui_support import DIFF, NIX_LOGS, fake_vms
from tui.actions import confirmation, restart_offer
from tui.host.actions import plan as action_plan
from tui.host.actions.commands import CommandRecord
from tui.host.actions.jobs import Job, JobState
from tui.host.actions.nixlog import NixLogParser, Progress
from tui.host.actions.operations import Outcome
from tui.host.settings import HostSettings
from tui.screens.create import CreateScreen
from tui.screens.jobs import JobsScreen
from tui.widgets.job_progress import JobProgress

NOW = 1_767_225_600.0 + 9 * 3600 + 30 * 60  # 2026-01-01 09:30:00 UTC
SIZE = (100, 32)


@pytest.fixture(autouse=True)
def fixed_world(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(action_plan, "has_shutdown_script", lambda runner: True)
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def vm(name: str):
    return next(v for v in fake_vms() if v.name == name)


class Backdrop(App[None]):
    """A plain screen with a dialog (or panel) pushed on top, as the app shows it."""

    AUTO_FOCUS = None

    def __init__(self, make_screen: Callable[[], Screen]) -> None:
        super().__init__()
        self.make_screen = make_screen

    def compose(self) -> ComposeResult:
        yield Static("microvm-tui: the VM list is behind this dialog\n" * 30)

    def on_mount(self) -> None:
        self.push_screen(self.make_screen())


async def settle(pilot: Pilot) -> None:
    await pilot.pause()


# --- confirmation dialogs --------------------------------------------------------------------


def test_restart_confirmation(snap_compare) -> None:
    screen = lambda: confirmation("restart", vm("web"), HostSettings()).screen()  # noqa: E731
    assert snap_compare(Backdrop(screen), terminal_size=SIZE, run_before=settle)


def test_delete_confirmation_refuses_a_wrong_typed_name(snap_compare) -> None:
    screen = lambda: confirmation("delete", vm("web"), HostSettings()).screen()  # noqa: E731

    async def type_wrong(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.press("w", "e", "b", "2", "enter")
        await pilot.pause()

    assert snap_compare(Backdrop(screen), terminal_size=SIZE, run_before=type_wrong)


def test_update_done_shows_the_diff_and_asks_to_restart(snap_compare) -> None:
    job = Job(
        id=4,
        action="update",
        vm="web",
        state=JobState.SUCCEEDED,
        outcome=Outcome(
            "updated web: 0v3kq1c0…-microvm-qemu-web -> 4f5g6h7j…-microvm-qemu-web; restart "
            "microvm@web.service to run it",
            changed=True,
            restart_needed=True,
            diff=DIFF,
            out_path="/nix/store/4f5g6h7j8k9l0m1n2p3q4r5s6t7v8w9x-microvm-qemu-web",
        ),
    )
    screen = lambda: restart_offer(job, action_plan.plan(vm("web"), HostSettings())).screen()  # noqa: E731
    assert snap_compare(Backdrop(screen), terminal_size=SIZE, run_before=settle)


def test_create_dialog_with_a_bad_name(snap_compare) -> None:
    screen = lambda: CreateScreen(  # noqa: E731
        HostSettings().state_dir, ["web", "db"], name="web", flake="git+file:///etc/nixos"
    )
    assert snap_compare(Backdrop(screen), terminal_size=SIZE, run_before=settle)


# --- the jobs panel and the progress ----------------------------------------------------------


def progress_until(log: str, marker: str | None) -> tuple[Progress, list[str]]:
    """The progress and log lines after feeding LOG up to (and with) the first line that
    contains MARKER (the whole log, finished as failed, when MARKER is None)."""
    parser = NixLogParser()
    lines: list[str] = []
    for line in (NIX_LOGS / log).read_text().splitlines():
        lines.extend(parser.feed(line))
        if marker is not None and marker in line:
            return parser.progress(), lines
    parser.finish(False)
    return parser.progress(), lines


def running_update() -> Job:
    progress, lines = progress_until("build-ok.log", "building the runner of web")
    return Job(
        id=1,
        action="update",
        vm="web",
        state=JobState.RUNNING,
        created=NOW - 42,
        started=NOW - 42,
        log=[
            "building path:/srv/flake#nixosConfigurations.web.config.microvm.declaredRunner",
            *lines,
        ],
        progress=progress,
        commands=[],
    )


def failed_create() -> Job:
    progress, lines = progress_until("build-failed.log", None)
    nix_error = "\n".join(progress.errors)
    return Job(
        id=2,
        action="create",
        vm="bad",
        state=JobState.FAILED,
        created=NOW - 30,
        started=NOW - 30,
        ended=NOW - 24,
        log=[
            "building path:/srv/flake#nixosConfigurations.bad.config.microvm.declaredRunner",
            *lines,
        ],
        progress=progress,
        result=f"nix build failed: {nix_error}",
    )


class FixedSource:
    """A JobsSource with fixed jobs and commands."""

    def __init__(self, jobs: list[Job], commands: list[tuple[int | None, CommandRecord]]) -> None:
        self._jobs = jobs
        self._commands = commands

    def jobs(self) -> list[Job]:
        return self._jobs

    def command_log(self):
        return self._commands

    def cancel_job(self, job_id: int) -> bool:
        return False

    def subscribe(self, node, listener) -> None:
        pass


def fixed_commands() -> list[tuple[int | None, CommandRecord]]:
    def nix(name: str, out: str) -> tuple[str, ...]:
        return (
            "nix",
            "build",
            "-L",
            "--log-format",
            "internal-json",
            "-o",
            out,
            "--",
            f"path:/srv/flake#nixosConfigurations.{name}.config.microvm.declaredRunner",
        )

    return [
        (
            None,
            CommandRecord(
                ("systemctl", "restart", "microvm@db.service"), NOW - 300, 4.02, 0, 3900, "exit 0"
            ),
        ),
        (
            1,
            CommandRecord(
                nix("web", "/var/lib/microvms/web/.current.update-1a2b3c4d"),
                NOW - 42,
                0.0,
                None,
                None,
                "cannot run: nix-daemon socket missing",
            ),
        ),
        (
            2,
            CommandRecord(
                nix("bad", "/var/lib/microvms/.bad.create-k2j4h5g6/current"),
                NOW - 30,
                5.71,
                1,
                4100,
                "exit 1",
            ),
        ),
    ]


def test_jobs_panel_with_a_running_and_a_failed_job(snap_compare) -> None:
    source = FixedSource([running_update(), failed_create()], fixed_commands())

    def screen() -> JobsScreen:
        return JobsScreen(source, animate=False, clock=lambda: NOW)

    async def select_running(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.press("up")  # from the newest (the failed one) to the running one
        await pilot.pause()

    assert snap_compare(Backdrop(screen), terminal_size=(110, 36), run_before=select_running)


def test_jobs_panel_failed_job_and_command_log(snap_compare) -> None:
    source = FixedSource([running_update(), failed_create()], fixed_commands())

    def screen() -> JobsScreen:
        return JobsScreen(source, animate=False, clock=lambda: NOW)

    async def show_commands(pilot: Pilot) -> None:
        await pilot.pause()
        await pilot.press("o")
        await pilot.pause()

    assert snap_compare(Backdrop(screen), terminal_size=(110, 36), run_before=show_commands)


class ProgressApp(App[None]):
    def __init__(self, job: Job) -> None:
        super().__init__()
        self.job = job

    def compose(self) -> ComposeResult:
        yield JobProgress(self.job, clock=lambda: NOW, animate=False)


def test_progress_display_from_a_recorded_build_log(snap_compare) -> None:
    assert snap_compare(ProgressApp(running_update()), terminal_size=(90, 14))


def test_progress_display_from_a_recorded_substitution(snap_compare) -> None:
    text = (NIX_LOGS / "substitute.log").read_text().splitlines()
    parser = NixLogParser()
    for line in text[: len(text) * 2 // 3]:
        parser.feed(line)
    job = Job(
        id=5,
        action="create",
        vm="big",
        state=JobState.RUNNING,
        created=NOW - 3,
        started=NOW - 3,
        progress=parser.progress(),
    )
    assert snap_compare(ProgressApp(job), terminal_size=(90, 10))
