"""The Textual app: wiring, bindings, the poll loop."""

from __future__ import annotations

import os

from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.timer import Timer
from textual.widgets import Footer, Header, Static
from textual.worker import Worker, WorkerState

from tui.config import Settings
from tui.host.inventory import list_vms
from tui.host.model import Inventory
from tui.widgets.status_bar import StatusBar
from tui.widgets.vm_table import VMTable


def read_only_reason(settings: Settings) -> str | None:
    if settings.read_only:
        return "started with --read-only"
    if os.geteuid() != 0:
        return "not running as root: actions are off"
    return None


class MicroVMApp(App):
    TITLE = "microvm-tui"
    CSS = """
    #empty {
        padding: 1 2;
        color: $text-muted;
    }
    """
    BINDINGS = [
        Binding("r", "refresh", "Refresh", id="refresh"),
        Binding("q", "quit", "Quit", id="quit"),
    ]

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings
        self.inventory: Inventory | None = None
        self._polling = False
        self._poll_again = False
        self._next_poll: Timer | None = None
        self.read_only_reason = read_only_reason(settings)
        self.theme = settings.theme
        if settings.keymap:
            self.set_keymap(settings.keymap)

    def compose(self) -> ComposeResult:
        yield Header()
        yield StatusBar(id="status")
        yield VMTable(id="vms")
        yield Static("", id="empty")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(StatusBar).show(None, self.read_only_reason)
        self.poll()

    # --- polling: a thread worker; the next poll is armed only when this one is done -----

    def poll(self) -> None:
        """Start a poll unless one runs; a request during a poll re-polls right after it."""
        if self._next_poll is not None:
            self._next_poll.stop()
            self._next_poll = None
        if self._polling:
            self._poll_again = True
            return
        self._polling = True
        self._poll_worker()

    @work(thread=True, group="poll", name="poll", exit_on_error=False)
    def _poll_worker(self) -> Inventory:
        return list_vms(self.settings.host)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.worker.group != "poll" or not event.worker.is_finished:
            return
        self._polling = False
        if event.state == WorkerState.SUCCESS:
            self.show_inventory(event.worker.result)
        elif event.state == WorkerState.ERROR:
            self.notify(f"listing failed: {event.worker.error}", severity="error")
        if self._poll_again:
            self._poll_again = False
            self.poll()
        else:
            self._next_poll = self.set_timer(self.settings.interval, self.poll)

    def show_inventory(self, inv: Inventory) -> None:
        self.inventory = inv
        self.query_one(StatusBar).show(inv, self.read_only_reason)
        self.query_one(VMTable).update_vms(inv.vms)
        empty = self.query_one("#empty", Static)
        if inv.error:
            empty.update(f"{inv.error}.\nSet another with --state-dir or in the config file.")
        elif not inv.vms:
            empty.update(f"No VMs in {inv.state_dir}.")
        else:
            empty.update("")
        empty.display = bool(inv.error or not inv.vms)

    def action_refresh(self) -> None:
        self.poll()


def run_app(settings: Settings) -> int:
    MicroVMApp(settings).run()
    return 0
