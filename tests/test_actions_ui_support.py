"""Helpers for the actions UI tests: a small app wired like the real one, fake VMs, and fake
actions for the JobRunner (they block, fail, report recorded nix progress or commands on
demand, so the UI can be looked at in every state without nix).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from textual.app import App
from textual.pilot import Pilot
from textual.screen import Screen

from tests.conftest import until_in_app
from tui.actions import ACTIONS, ActionId, ActionsAppMixin, ActionsController
from tui.config import Settings
from tui.feed import Snapshot
from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandRecord
from tui.host.actions.errors import Cancelled, CommandFailed
from tui.host.actions.jobs import JobRunner
from tui.host.actions.nixlog import NixLogParser
from tui.host.actions.operations import Outcome, Reporter
from tui.host.model import VM, Drift, Inventory, UnitState, Volume
from tui.host.settings import HostSettings
from tui.screens.main import MainScreen

NIX_LOGS = Path(__file__).parent / "fixtures" / "nix"
STATE = Path("/var/lib/microvms")
STORE = "/nix/store"
WEB_CURRENT = f"{STORE}/0v3kq1c0s3fgm5b2r0l7pkd1m5j3x9aa-microvm-qemu-web"
WEB_OLD = f"{STORE}/7b9yq2nd8hz1w4c6kkf0r3x5v8s2m1zz-microvm-qemu-web"
DB_CURRENT = f"{STORE}/1c8q6f5zj7l0d2y3w4x5v6b7n8m9k0aa-microvm-qemu-db"
DB_BOOTED = f"{STORE}/9z8y7x6w5v4u3t2s1r0q9p8o7n6m5l4k-microvm-qemu-db"
DECL_CURRENT = f"{STORE}/5d4c3b2a1z0y9x8w7v6u5t4s3r2q1p0o-microvm-qemu-decl"
DIFF = (
    "guest-data: r4 → r5\nmicrovm-qemu-web: ε → ∅, +1.2 KiB\nlinux: 6.1.0-55 → 6.1.0-56, +2.4 MiB\n"
)


def unit(name: str, active: str, sub: str) -> UnitState:
    return UnitState(name=f"microvm@{name}.service", load="loaded", active=active, sub=sub)


def fake_vms() -> list[VM]:
    """web (running, updated once: has `old`), db (stale), decl (declarative), idle (stopped)."""
    return [
        VM(
            name="web",
            path=STATE / "web",
            hypervisor="qemu",
            runner=WEB_CURRENT,
            booted=WEB_CURRENT,
            old=WEB_OLD,
            flake="git+file:///etc/nixos",
            drift=Drift.CURRENT,
            vcpu=1,
            mem_mib=256,
            unit=unit("web", "active", "running"),
            volumes=[Volume(image=str(STATE / "web" / "web-data.img"))],
        ),
        VM(
            name="db",
            path=STATE / "db",
            hypervisor="qemu",
            runner=DB_CURRENT,
            booted=DB_BOOTED,
            flake="git+file:///etc/nixos",
            drift=Drift.STALE,
            vcpu=1,
            mem_mib=192,
            unit=unit("db", "active", "running"),
        ),
        VM(
            name="decl",
            path=STATE / "decl",
            hypervisor="qemu",
            runner=DECL_CURRENT,
            booted=DECL_CURRENT,
            declarative=True,
            toplevel=f"{STORE}/6e5d4c3b2a1z0y9x8w7v6u5t4s3r2q1p-nixos-system-decl",
            drift=Drift.CURRENT,
            vcpu=2,
            mem_mib=160,
            unit=unit("decl", "active", "running"),
        ),
        VM(
            name="idle",
            path=STATE / "idle",
            hypervisor="qemu",
            runner=f"{STORE}/2b3c4d5e6f7g8h9i0j1k2l3m4n5o6p7q-microvm-qemu-idle",
            flake="git+file:///etc/nixos",
            drift=Drift.NOT_BOOTED,
            vcpu=1,
            mem_mib=128,
            unit=unit("idle", "inactive", "dead"),
        ),
    ]


class ActionsTestApp(ActionsAppMixin, App[None]):
    """What the real app mounts (its MainScreen, fed a Snapshot of VMS), with the actions
    wired the way the report says to wire them into tui/app.py."""

    # The registry's bindings this app has actions for (not help, console, logs, the palette).
    BINDINGS = [
        spec.binding()
        for spec in ACTIONS.values()
        if spec.changes_host or spec.id in (ActionId.QUIT, ActionId.REFRESH, ActionId.JOBS)
    ]

    def __init__(
        self,
        vms: list[VM] | None = None,
        *,
        settings: Settings | None = None,
        runner: JobRunner | None = None,
        read_only_reason: str | None = None,
        update_restart: str | None = None,
        list_vms: Callable[[], list[VM]] | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings or Settings()
        self.list_vms = list_vms
        vms = vms if vms is not None else (list_vms() if list_vms else fake_vms())
        self.snapshot = Snapshot(inventory=Inventory(self.settings.host.state_dir, vms))
        self.read_only_reason = read_only_reason
        self.changes: list[Any] = []
        self.actions = ActionsController(
            self,
            self.settings,
            read_only_reason=read_only_reason,
            on_change=self._job_changed,
            update_restart=update_restart,
            runner=runner,
        )

    def get_default_screen(self) -> Screen:
        screen = MainScreen()
        screen.read_only_reason = self.read_only_reason
        return screen

    @property
    def main_screen(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    def on_mount(self) -> None:
        self.call_after_refresh(self.main_screen.show, self.snapshot)
        self.run_worker(self.actions.adopt_jobs(), name="adopt-jobs")  # as tui/app.py does

    def on_unmount(self) -> None:
        self.actions.shutdown()

    def _job_changed(self, job: Any) -> None:
        self.changes.append(job)
        if job.state.finished:
            self.action_refresh()

    def action_refresh(self) -> None:
        if self.list_vms is not None:
            vms = self.list_vms()
            self.snapshot = Snapshot(inventory=Inventory(self.settings.host.state_dir, vms))
            self.main_screen.show(self.snapshot)

    def select(self, name: str) -> None:
        self.main_screen.table.select_name(name)


# --- fake actions ------------------------------------------------------------------------------


class Gate:
    """Fake actions that block until ``release()`` (or the job's cancel), recording calls."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.started = threading.Event()
        self.calls: list[tuple[str, str, dict[str, Any]]] = []

    def release(self) -> None:
        self.released.set()

    def action(
        self, action: str, outcome: Outcome | None = None, lines: tuple[str, ...] = ()
    ) -> Callable[..., Outcome]:
        def run(
            settings: HostSettings,
            name: str,
            reporter: Reporter | None = None,
            cancel: CancelToken | None = None,
            **options: Any,
        ) -> Outcome:
            assert reporter is not None and cancel is not None
            self.calls.append((action, name, options))
            for line in lines:
                reporter.log(line)
            self.started.set()
            while not self.released.wait(0.02):
                cancel.check(f"{action} {name}")
            return outcome or Outcome(f"{action} {name}: done", changed=True)

        return run


def instant(action: str, outcome: Outcome | None = None, calls: list | None = None):
    def run(settings, name, reporter=None, cancel=None, **options) -> Outcome:
        if calls is not None:
            calls.append((action, name, options))
        reporter.log(f"{action} {name}")
        return outcome or Outcome(f"{action}ed {name}", changed=True)

    return run


def failing(message: str, details: str = ""):
    def run(settings, name, reporter=None, cancel=None, **options) -> Outcome:
        reporter.log(f"building {name}")
        raise CommandFailed(message, details)

    return run


def replay(
    log: str,
    *,
    stop_after: str | None = None,
    gate: threading.Event | None = None,
    fail: str | None = None,
):
    """An action that feeds a recorded `nix build` stderr log through the real parser, as
    nix.build does: log lines and progress to the reporter. With STOP_AFTER it stops after
    the first line containing that text and waits for GATE (or the cancel)."""

    def run(settings, name, reporter=None, cancel=None, **options) -> Outcome:
        parser = NixLogParser()
        text = (NIX_LOGS / log).read_text()
        for line in text.splitlines():
            for shown in parser.feed(line):
                reporter.log(shown)
            reporter.progress(parser.progress())
            if stop_after is not None and stop_after in line:
                assert gate is not None
                while not gate.wait(0.02):
                    if cancel.cancelled:
                        parser.finish(False)
                        reporter.progress(parser.progress())
                        raise Cancelled("the build was cancelled")
        parser.finish(fail is None)
        reporter.progress(parser.progress())
        if fail is not None:
            raise CommandFailed(fail, "\n".join(parser.errors))
        return Outcome(f"built {name}", changed=True)

    return run


def commands_action(records: list[CommandRecord]):
    def run(settings, name, reporter=None, cancel=None, **options) -> Outcome:
        for record in records:
            reporter.command(record)
        return Outcome(f"ran {len(records)} commands", changed=False)

    return run


def record(
    argv: tuple[str, ...], code: int | None, duration: float, started: float
) -> CommandRecord:
    outcome = f"exit {code}" if code is not None else "cannot run: not found"
    return CommandRecord(argv, started, duration, code, 4242, outcome)


def runner_with(actions: dict[str, Callable[..., Outcome]]) -> JobRunner:
    return JobRunner(HostSettings(), actions=actions, notify_interval=0.02)


async def wait_until(
    pilot: Pilot, predicate: Callable[[], Any], timeout: float = 10.0, what: str = ""
) -> Any:
    """Let the app run until PREDICATE is truthy (a deadline, no fixed sleeps)."""
    return await until_in_app(pilot, predicate, timeout, what=what)


async def ready(pilot: Pilot) -> None:
    """Until the main screen shows the VMs."""
    app = pilot.app
    await wait_until(pilot, lambda: app.main_screen.table.row_count > 0, what="the VM table")
