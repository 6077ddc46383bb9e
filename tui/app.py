"""The Textual app: wiring, global bindings, and leaving when the terminal goes.

The poll loop is ``tui/screens/polling.py`` (``PollingAppMixin``); quitting never waits for a
poll or a job (``leave_if_threads_busy``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import termios
import threading
from collections.abc import Iterable
from functools import cached_property
from typing import TYPE_CHECKING

from textual import on
from textual.app import App, SystemCommand
from textual.screen import Screen
from textual.widgets import TabbedContent

from tui.actions import ActionsAppMixin, ActionsController, Scope, bindings
from tui.actions.read_only import read_only_reason
from tui.config import Settings
from tui.feed import LiveSource, Source
from tui.feed.fleet import FLEET_READ_ONLY, FLEET_REMOTE, FleetSource
from tui.host.actions.jobs import Job
from tui.host.checks.findings import CheckReport
from tui.host.model import VM
from tui.host.uistate import UIStateStore
from tui.screens.fleet_app import FleetAppMixin
from tui.screens.main import MainScreen
from tui.screens.polling import PollingAppMixin
from tui.widgets.outside import notify_outside
from tui.widgets.vm_table import VMTable

if TYPE_CHECKING:
    from tui.agent.views import StreamRoutes
    from tui.host.console import ConsoleManager

TERMINAL_CHECK_S = 1.0  # how often to look for a vanished terminal
EXIT_GRACE_S = 3.0  # after the terminal went: force the exit if a clean one hangs
QUIT_JOB_GRACE_S = 3.0  # nix gets 2 s to end after a cancel; the job then removes its temp files
EXIT_TERMINAL_LOST = 129  # 128 + SIGHUP, like a shell


def _monitor_commands() -> type:
    """The command palette's provider, imported when the palette first opens (startup time)."""
    from tui.commands import MonitorCommands

    return MonitorCommands


class MicroVMApp(PollingAppMixin, FleetAppMixin, ActionsAppMixin, App[int]):
    TITLE = "microvm-tui"
    COMMANDS = App.COMMANDS | {_monitor_commands}
    BINDINGS = bindings(Scope.APP)  # tui/actions/registry.py

    def __init__(
        self,
        settings: Settings,
        source: Source | None = None,
        *,
        tty_watch: bool = True,
        ui_state: UIStateStore | None = None,
        remote: str | None = None,
    ) -> None:
        super().__init__()
        self.settings = settings
        self._source = source
        # A remote host (--host NAME) or the fleet (--all-hosts): its VMs are shown; actions,
        # consoles and logs go to each VM's host (its agent for a remote one).
        self.remote = remote
        self.init_polling()
        self._quit_asked = False  # the "jobs running: quit?" question is on screen
        self.read_only_reason = read_only_reason(settings.read_only)
        # Actions on a remote host's VMs go to its agent (``RemoteSource.jobs``), which runs
        # them there with the host's checks and says when it is read-only (non-root login).
        remote_jobs = getattr(source, "jobs", None) if remote not in (None, FLEET_REMOTE) else None
        if remote is not None:
            self.read_only_reason = f"remote host {remote}: actions over the agent come later"
            if remote_jobs is not None:  # --read-only, else the host's read_only = true
                self.read_only_reason = (
                    "started with --read-only"
                    if settings.read_only
                    else getattr(source, "read_only", None)
                )
        self.fleet = remote == FLEET_REMOTE  # --all-hosts (tui/screens/fleet.py)
        jobs_note = None
        if self.fleet and isinstance(source, FleetSource):
            # Each VM's action goes to its host, which has its own read-only rule
            # (tui/agent/fleet_jobs.py); --read-only alone keeps every host's off here.
            from tui.agent.fleet_jobs import fleet_jobs

            remote_jobs, jobs_note = fleet_jobs(settings, source)
            self.read_only_reason = read_only_reason(True) if settings.read_only else None
        elif self.fleet:
            self.read_only_reason = FLEET_READ_ONLY
        self._consoles: ConsoleManager | None = None  # made at the first console
        if remote is not None and remote in settings.hosts:  # its agent carries its consoles
            from tui.agent.views import remote_consoles

            self._consoles = remote_consoles(settings, remote)
        self.actions = ActionsController(
            self,
            settings,
            read_only_reason=self.read_only_reason,
            on_change=self._job_changed,
            runner=remote_jobs,
        )
        self.actions.jobs_note = self.actions.jobs_note or jobs_note
        self.tty_watch = tty_watch
        self._ttys: dict[int, str | None] = {}
        self._theme_error: str | None = None
        if settings.theme in self.available_themes:
            self.theme = settings.theme
        else:
            self._theme_error = f"unknown theme {settings.theme!r}; try one of: " + ", ".join(
                sorted(self.available_themes)
            )
        if settings.keymap:
            self.set_keymap(settings.keymap)
        # Remembered choices (theme, sort, tab, last flake): None = not kept (tests, scripts).
        self.ui_state = ui_state
        if ui_state is not None:
            self._apply_ui_state(ui_state)

    def _apply_ui_state(self, store: UIStateStore) -> None:
        state = store.load()
        # A theme set in the config or by --theme wins; the palette's last choice otherwise.
        if (
            state.theme in self.available_themes
            and self.settings.theme == Settings().theme
            and not self._theme_error
        ):
            self.theme = state.theme
        self.actions.last_flake = state.last_flake
        self.actions.on_flake_used = lambda flake: self._remember(last_flake=flake)

    def _remember(self, **changes: object) -> None:
        store = self.ui_state
        if store is not None and not store.update(**changes) and store.problem:
            self.notify(store.problem, severity="warning", timeout=8)

    # --- screens -----------------------------------------------------------------------------

    def get_default_screen(self) -> Screen:
        screen = MainScreen()
        screen.read_only_reason = self.read_only_reason
        screen.interval = self.settings.interval
        screen.on_composed = self._first_poll
        if self.ui_state is not None:
            state = self.ui_state.state
            screen.initial_sort = (state.sort_column, state.sort_reverse)
            screen.initial_tab = state.detail_tab
        return screen

    @property
    def main_screen(self) -> MainScreen:
        screen = self.screen_stack[0]
        assert isinstance(screen, MainScreen)
        return screen

    @property
    def consoles(self) -> ConsoleManager:
        """Console connections outlive visits to the console screen (bounded by the manager);
        read-only means view only there too: no takeover, no keys to a guest. Made (and its
        package imported) at the first console: the first frame needs none."""
        if self._consoles is None:
            from tui.host.console import ConsoleManager

            read_only = self.read_only_reason is not None
            self._consoles = ConsoleManager(self.settings.host, read_only=read_only)
        return self._consoles

    @consoles.setter
    def consoles(self, manager: ConsoleManager) -> None:
        self._consoles = manager

    @property
    def source(self) -> Source:
        if self._source is None:
            self._source = LiveSource(self.settings.host)
        return self._source

    def on_mount(self) -> None:
        if self.tty_watch and not self.is_headless:
            self._start_tty_watch()
        if self._theme_error:
            notify_outside(self, self._theme_error, severity="warning", timeout=10)
        if self.ui_state is not None:
            if self.ui_state.problem:
                notify_outside(self, self.ui_state.problem, severity="warning", timeout=8)
            self.theme_changed_signal.subscribe(self, lambda t: self._remember(theme=t.name))
        self.run_worker(self.actions.adopt_jobs(), name="adopt-jobs")
        if self.fleet:
            self.open_fleet()

    async def on_unmount(self) -> None:
        self._stopping = True
        if self._next_poll is not None:
            self._next_poll.stop()
        if self._source is not None:
            self._source.close()
        # Cancelled jobs get a moment to end their commands and clean up, not more.
        self.actions.shutdown(QUIT_JOB_GRACE_S)
        streams = self.__dict__.get("streams")  # the cached property, made at the first use
        if streams is not None:
            await asyncio.to_thread(streams.close_all, 0.5)
        elif self._consoles is not None:
            await asyncio.to_thread(self._consoles.close_all, 0.5)

    def _job_changed(self, job: Job) -> None:
        if self.screen_stack and isinstance(self.screen_stack[0], MainScreen):
            self.main_screen.set_busy(self.actions.running_on())
        if job.state.finished:
            self.poll()  # show what the job changed without waiting for the next tick

    @on(VMTable.SortChanged)
    def _sort_changed(self, event: VMTable.SortChanged) -> None:
        self._remember(sort_column=event.column, sort_reverse=event.reverse)

    @on(TabbedContent.TabActivated, "#detail-tabs")
    def _tab_changed(self, event: TabbedContent.TabActivated) -> None:
        tab = event.pane.id or ""
        if tab.startswith("tab-"):
            self._remember(detail_tab=tab.removeprefix("tab-"))

    # --- polling (tui/screens/polling.py) ----------------------------------------------------

    @on(VMTable.RowHighlighted, "#vms")
    def _focus_moved(self) -> None:
        self.focus_moved()

    # --- actions ---------------------------------------------------------------------------

    def action_refresh(self) -> None:
        self.poll()

    async def action_quit(self) -> None:
        """Quit, after asking when jobs still run (quitting cancels them; their cleanup runs)."""
        question = self.actions.quit_question()
        if question is None or self._quit_asked:  # ctrl+q on the question: a second "yes"
            self.exit()
            return
        self._quit_asked = True
        self.push_screen(question.screen(), self._quit_answer)

    def _quit_answer(self, confirmed: bool | None) -> None:
        self._quit_asked = False
        if confirmed:
            self.exit()

    @cached_property
    def streams(self) -> StreamRoutes:
        """Where a VM's console and Logs view go (its host's; tui/agent/views.py)."""
        from tui.agent.views import StreamRoutes

        return StreamRoutes(self.settings, self.remote, self.consoles, self.read_only_reason)

    def _vm_to_open(self) -> VM | None:
        """The VM a screen of its own (console, logs) opens for: the table's selection, from
        the main screen or the fleet view only; None (said, when nothing is selected)
        otherwise."""
        fleet = self.fleet_screen()
        if fleet is not None and self.screen is fleet:
            key = fleet.table.selected_key
            vm = next((v for v in self.known_vms() if v.name == key), None)
        elif isinstance(self.screen, MainScreen):
            vm = self.selected_vm()
        else:
            return None
        if vm is None:
            self.notify("No VM selected.", severity="warning")
        return vm

    def action_console(self) -> None:
        from tui.screens.console import ConsoleScreen

        vm = self._vm_to_open()
        route = None if vm is None else self.streams.console(vm, self.snapshot)
        if isinstance(route, str):  # it may name a VM as an agent did
            notify_outside(self, route, severity="warning")
        elif route is not None:
            self.push_screen(
                ConsoleScreen(
                    route.vm,
                    self.settings.host,
                    route.manager,
                    detach_key=self.settings.console_detach_key,
                    size_key=self.settings.console_size_key,
                    # A remote console is view only when this app or the host's agent is
                    # read-only (the agent's reason comes in its status).
                    read_only_reason=route.read_only_reason,
                )
            )

    def action_logs(self) -> None:
        from tui.screens.logs import LogsScreen

        vm = self._vm_to_open()
        route = None if vm is None else self.streams.logs(vm, self.snapshot)
        if isinstance(route, str):  # it may name a VM as an agent did
            notify_outside(self, route, severity="warning")
        elif route is not None:
            self.push_screen(LogsScreen(route.vm, self.settings.host, source=route.source))

    def action_checks(self) -> None:
        from tui.host.checks.report import run_checks
        from tui.host.inventory import list_vms
        from tui.host.sampling.cgroup import host_layout
        from tui.screens.checks import ChecksScreen

        if self.remote is not None:
            notify_outside(self, f"{self.remote}: host checks over the agent come later.")
            return
        host = self.settings.host

        def run() -> CheckReport:
            return run_checks(list_vms(host), host, host_layout())

        self.push_screen(ChecksScreen(run, host, self.read_only_reason))

    def action_help(self) -> None:
        from tui.bindings import collect_for_help
        from tui.screens.help import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(collect_for_help(self), self.settings.sources))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        # Textual's own (theme, quit, keys, screenshot...) minus the ones ours duplicate.
        for command in super().get_system_commands(screen):
            if command.title not in ("Quit", "Keys"):
                yield command

    # --- the terminal going away (an SSH drop) ------------------------------------------------

    def _start_tty_watch(self) -> None:
        for fd in (0, 1):
            try:
                if os.isatty(fd):
                    self._ttys[fd] = os.ttyname(fd)
            except OSError:
                continue
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            self._loop_signal(signal.SIGHUP)  # fails off the main thread: the tty check stays
        if self._ttys:
            self.set_interval(TERMINAL_CHECK_S, self._check_terminal, name="tty-watch")

    def _loop_signal(self, signum: int) -> None:
        asyncio.get_running_loop().add_signal_handler(signum, self.terminal_lost, "SIGHUP")

    def _check_terminal(self) -> None:
        if terminal_gone(self._ttys):
            self.terminal_lost("the terminal went away")

    def terminal_lost(self, why: str = "") -> None:
        """Leave now: nobody can see us, and a dead tty can make every write fail or block."""
        if self._stopping:
            return
        self._stopping = True
        timer = threading.Timer(EXIT_GRACE_S, os._exit, args=(EXIT_TERMINAL_LOST,))
        timer.daemon = True
        timer.start()
        self.exit(EXIT_TERMINAL_LOST)


def terminal_gone(ttys: dict[int, str | None]) -> bool:
    """True when a tty we started on is hung up or its device node has gone."""
    for fd, path in ttys.items():
        try:
            termios.tcgetattr(fd)
        except (termios.error, OSError):
            return True
        if path and not os.path.exists(path):
            return True
    return False


def run_app(
    settings: Settings,
    source: Source | None = None,
    remote: str | None = None,
    ui_state: UIStateStore | None = None,
) -> int:
    store = ui_state if ui_state is not None else UIStateStore()
    result = MicroVMApp(settings, source, ui_state=store, remote=remote).run() or 0
    leave_if_threads_busy(result)
    return result


def leave_if_threads_busy(code: int) -> None:
    """Quitting never waits on a poll or a job: once the app has left the screen (and put the
    terminal back), a thread that is still busy (a poll or a sampler thread stuck in a read,
    a job's command winding down after its cancel) would hold the process at Python's exit,
    which joins every non-daemon thread and executor thread. Then end the process at once
    (the app has already restored the terminal; stdio and logging are flushed first)."""
    # Any thread, daemon or not: executor threads made by a daemon thread are daemons too,
    # and still joined at exit (concurrent.futures' atexit hook).
    main = threading.main_thread()
    if not any(t is not main and t.is_alive() for t in threading.enumerate()):
        return
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    logging.shutdown()
    os._exit(code)
