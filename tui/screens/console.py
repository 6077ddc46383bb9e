"""The serial console screen: one VM's console in a terminal pane, filling the screen.

Pushed with ``app.push_screen(ConsoleScreen(vm, settings, manager))``. The connection lives in
the :class:`~tui.host.console.ConsoleManager`, not here: leaving the screen (the detach key,
default ``ctrl+]``) keeps it open, with its recent output, for the next visit.

Guest bytes go only into the :class:`~tui.widgets.terminal.TerminalWidget`'s emulator, which
turns them into sanitized text; nothing from the guest is ever written to the real terminal.

Threading: the connection calls back on its own thread. The screen appends the bytes to a
pending buffer and, unless a hand-over is already on its way, posts itself a message
(``post_message`` is thread-safe and does not wait): everything that arrives meanwhile is
coalesced into that one hand-over, which wakes the screen's feeder (a worker on the UI's event
loop). The feeder gives the emulator :data:`FEED_SLICE` bytes at a time and, while more wait,
leaves the event loop free for as long as the slice took (:data:`FEED_SHARE`), so keys, timers
and repaints get their turn during any flood: a message handler that fed chunk after chunk
held the loop (Textual's message pump only yields when its queue is empty), and a flood faster
than the emulator then delayed keys by most of a second. Half the UI's time still emulates
1-5 MB/s, far more than a serial line gives. The widget repaints changed rows at its frame
rate, whatever the bytes do.

Why not ``app.call_from_thread`` for the bytes: it blocks the connection's thread until the UI
has fed them, so reading from the guest and emulating would take turns. With a non-blocking
hand-over the guest prints while the UI emulates. No byte is ever dropped: when more than
:data:`HOLD_AT` bytes wait (only a flood faster than the emulator does that; a guest's serial
line is far slower), the connection holds its reading until the feeder has caught up.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from tui.host.console import ConsoleConnection, ConsoleEndpoint, ConsoleManager, ConsoleStatus
from tui.host.console.endpoints import EndpointKind
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.widgets.outside import notify_outside, outside_text
from tui.widgets.terminal import TerminalWidget

FEED_SLICE = 8 * 1024  # fed to the emulator per event-loop turn (1-4 ms of work)
FEED_SHARE = 0.5  # during a flood, the feeder takes at most this share of the UI's time
HOLD_AT = 1024 * 1024  # this many bytes waiting: the connection holds its reading


def short_path(path: str | None, limit: int = 48) -> str:
    """A path that fits a status line: the last components, with an ellipsis."""
    if not path:
        return ""
    if len(path) <= limit:
        return path
    parts = path.split(os.sep)
    tail = parts[-1]
    for part in reversed(parts[:-1]):
        if len(part) + len(tail) + 3 > limit:
            break
        tail = f"{part}{os.sep}{tail}"
    return f"…{os.sep}{tail}"


def _plain(text: str) -> Content:
    # Never markup: paths and names may hold brackets.
    return outside_text(text)


def _history_place(endpoint: ConsoleEndpoint | None) -> str:
    if endpoint is None:
        return "the journal"
    if endpoint.kind is EndpointKind.LOGFILE:
        return f"the log file {endpoint.path}"
    return f"the journal of microvm@{endpoint.vm}"


class TakeoverScreen(ModalScreen[bool]):
    """Ask before a takeover, saying exactly what it changes."""

    DEFAULT_CSS = """
    TakeoverScreen {
        align: center middle;
    }
    TakeoverScreen > #dialog {
        width: 88;
        max-width: 96%;
        height: auto;
        max-height: 92%;
        padding: 1 2;
        background: $surface;
        border: thick $warning;
        border-title-style: bold;
    }
    TakeoverScreen #body {
        height: auto;
    }
    TakeoverScreen #buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    TakeoverScreen #buttons Button {
        margin-left: 2;
    }
    """
    AUTO_FOCUS = "#cancel"  # the safe answer
    BINDINGS = [
        Binding("escape,n", "cancel", "Cancel"),
        Binding("y", "confirm", "Take over"),
    ]

    def __init__(self, vm_name: str, endpoint: ConsoleEndpoint) -> None:
        super().__init__()
        self.vm_name = vm_name
        self.endpoint = endpoint

    @staticmethod
    def message(vm_name: str, endpoint: ConsoleEndpoint) -> str:
        history = _history_place(endpoint.fallback)
        return (
            f"{vm_name}'s serial console is on the hypervisor's stdio (microvm.nix's default), "
            f"so it is written to {history} and nobody can type into it.\n\n"
            f"Taking it over switches it, with QMP chardev-change, to a socket the app "
            f"connects to:\n  {endpoint.path}\nwith a transcript of the session in\n"
            f"  {endpoint.transcript}\n\n"
            f"This is one-way until {vm_name} restarts: from now until its next restart, "
            f"serial output no longer goes to {history}; it cannot be switched back. The "
            f"guest itself is not touched, and the next restart puts the console back on "
            f"stdio.\n\n"
            f"Leaving the console keeps the takeover; coming back reattaches without asking."
        )

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = _plain(f"Take over {self.vm_name}'s serial console?")
            yield Static(_plain(self.message(self.vm_name, self.endpoint)), id="body")
            with Horizontal(id="buttons"):
                yield Button("Take over (y)", id="confirm", variant="warning")
                yield Button("Cancel (n)", id="cancel")

    @on(Button.Pressed, "#confirm")
    def action_confirm(self) -> None:
        self.dismiss(True)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(False)


class ConsoleScreen(ModalScreen[None]):
    """A VM's serial console. The connection stays in MANAGER when the screen is left.

    Modal for its keys, not its looks: the app's own bindings (quit, refresh, start, ...) must
    not fire from keys typed at a console, and a modal screen ends the binding chain before
    the app's. Keys go to the focused widget first: the terminal (which sends them to the
    guest unless read-only), or its search box (whose own bindings, Enter included, work);
    what they let through meets this screen's bindings. Priority bindings (the command
    palette) still work.
    """

    DEFAULT_CSS = """
    ConsoleScreen {
        layout: vertical;
        background: $background;
        &:ansi {
            background: ansi_default;
        }
    }
    ConsoleScreen > #console-title {
        height: 1;
        padding: 0 1;
        background: $panel;
        color: $foreground;
    }
    ConsoleScreen > #console-info {
        height: auto;
        max-height: 9;
        padding: 0 1;
        background: $warning-muted;
        color: $foreground;
        display: none;
    }
    ConsoleScreen > #console-info.-shown {
        display: block;
    }
    ConsoleScreen > #console-terminal {
        height: 1fr;
    }
    """

    BINDINGS = [
        # Reached only while keys do not go to the guest (read-only history, search box).
        Binding("t", "take_over", "Take over the console", id="console_take_over", show=False),
        Binding("escape", "detach", "Leave the console", id="console_leave", show=False),
    ]

    class _Arrived(Message):
        """Bytes are pending (posted from the connection's thread)."""

    class _StatusChanged(Message):
        def __init__(self, status: ConsoleStatus) -> None:
            super().__init__()
            self.status = status

    def __init__(
        self,
        vm: VM,
        settings: HostSettings,
        manager: ConsoleManager,
        *,
        detach_key: str = "ctrl+]",
        size_key: str | None = "f12",
        read_only_reason: str | None = None,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id)
        self.vm = vm
        self.settings = settings
        self.manager = manager
        self.detach_key = detach_key
        self.size_key = size_key
        # Why the app is read-only (None: it is not): then the console is view only.
        self.read_only_reason = read_only_reason
        self.connection: ConsoleConnection | None = None
        self.console_status: ConsoleStatus | None = None
        self._token: int | None = None
        self._pending = bytearray()
        self._pending_lock = threading.Lock()
        self._flush_scheduled = False
        self._ready: asyncio.Event | None = None  # wakes the feeder
        self._held = False  # we told the connection we were full
        self._gone = False
        self._asked = False
        self._dialog_open = False
        self.bytes_fed = 0  # for benchmarks and tests

    # --- layout -------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield Static(_plain(f"{self.vm.name} · serial console"), id="console-title")
        yield Static("", id="console-info")
        yield TerminalWidget(
            id="console-terminal",
            detach_key=self.detach_key,
            size_key=self.size_key,
            read_only=True,
            read_only_reason="connecting…",
        )

    @property
    def terminal(self) -> TerminalWidget:
        return self.query_one("#console-terminal", TerminalWidget)

    def on_mount(self) -> None:
        self._ready = asyncio.Event()
        self.run_worker(self._feeder(), name="console-feeder", group="console-feeder")
        self.connection = self.manager.open(self.vm)
        subscription = self.connection.attach(self._on_data, self._on_status, full=self._full)
        self._token = subscription.token
        self._feed(subscription.history)
        self._apply_status(subscription.status)
        self.terminal.focus()

    def on_unmount(self) -> None:
        self._gone = True
        if self.connection is not None and self._token is not None:
            self.connection.detach(self._token)
            self._token = None

    # --- from the connection's thread ---------------------------------------------------

    def _on_data(self, data: bytes) -> None:
        if self._gone:
            return
        with self._pending_lock:
            self._pending += data
            if self._flush_scheduled:
                return  # coalesced into the hand-over already on its way
            self._flush_scheduled = True
        self.post_message(self._Arrived())

    def _on_status(self, status: ConsoleStatus) -> None:
        if not self._gone:
            self.post_message(self._StatusChanged(status))

    def _full(self) -> bool:
        """Asked by the connection's thread: hold the reading, we are this far behind."""
        with self._pending_lock:
            if len(self._pending) >= HOLD_AT:
                self._held = True
            return self._held

    # --- on the UI thread ---------------------------------------------------------------

    @on(_Arrived)
    def _wake_feeder(self, message: Message) -> None:
        message.stop()
        if self._gone:
            return
        # The first slice here (an echo is then on screen within this message); the rest, if
        # any, by the feeder.
        data, more = self._take_slice()
        if data:
            self._feed(data)
        if more and self._ready is not None:
            self._ready.set()

    def _take_slice(self) -> tuple[bytes, bool]:
        """The next :data:`FEED_SLICE` pending bytes, and whether more wait. Lets the
        connection read on once we have caught up with a hold."""
        resume = False
        with self._pending_lock:
            data = bytes(self._pending[:FEED_SLICE])
            del self._pending[:FEED_SLICE]
            more = bool(self._pending)
            if not more:
                self._flush_scheduled = False
            if self._held and len(self._pending) < HOLD_AT // 2:
                self._held = False
                resume = True
        if resume and self.connection is not None:
            self.connection.resume()
        return data, more

    async def _feeder(self) -> None:
        """Feed pending bytes a slice per event-loop turn until none are left; then wait."""
        ready = self._ready
        assert ready is not None
        while not self._gone:
            await ready.wait()
            ready.clear()
            while not self._gone:
                data, more = self._take_slice()
                spent = 0.0
                if data:
                    started = time.thread_time()
                    self._feed(data)
                    spent = time.thread_time() - started  # CPU: a busy host stretches wall time
                if not more:
                    break
                # Keys, timers and repaints before the next slice: the loop is ours at most
                # FEED_SHARE of the time while a flood lasts.
                await asyncio.sleep(min(0.05, spent * (1 - FEED_SHARE) / FEED_SHARE))

    @on(_StatusChanged)
    def _status_changed(self, message: _StatusChanged) -> None:
        message.stop()
        self._apply_status(message.status)

    def _feed(self, data: bytes) -> None:
        terminal = self.terminal
        for start in range(0, len(data), FEED_SLICE):
            terminal.feed(data[start : start + FEED_SLICE])
        self.bytes_fed += len(data)

    def _apply_status(self, status: ConsoleStatus) -> None:
        if self._gone:
            return
        self.console_status = status
        terminal = self.terminal
        terminal.read_only = self.view_only or not status.interactive
        terminal.read_only_reason = self._read_only_reason(status)
        terminal.status = _status_line(status)
        self.query_one("#console-title", Static).update(_plain(self._title(status)))
        info = self.query_one("#console-info", Static)
        text = self._info(status)
        info.update(_plain(text))
        info.set_class(bool(text), "-shown")
        if (
            status.takeover_available
            and not status.takeover_ended
            and not self._asked
            and not self.view_only
            and not (self.connection is not None and self.connection.takeover_declined)
        ):
            self._asked = True  # once per visit; after a "no", not on later visits either
            self.action_take_over()

    @property
    def view_only(self) -> bool:
        """The app is read-only: nothing is sent to the guest and nothing is taken over."""
        return self.read_only_reason is not None

    def _read_only_reason(self, status: ConsoleStatus) -> str:
        """For the hint line: why keys do not reach the guest."""
        if not self.view_only:
            return status.read_only_reason
        detail = status.read_only_reason if not status.interactive else _status_line(status)
        return f"{self.read_only_reason}, view only · {detail}"

    def _title(self, status: ConsoleStatus) -> str:
        endpoint = status.endpoint
        where = endpoint.describe() if endpoint is not None else status.text
        if endpoint is not None and endpoint.path:
            where = where.replace(endpoint.path, short_path(endpoint.path, 60))
        return f"{self.vm.name} · serial console · {where}"

    def _info(self, status: ConsoleStatus) -> str:
        """Why it is read-only, and how to get an interactive console (empty when it is)."""
        if status.interactive:
            return ""
        discovered = status.discovered or status.endpoint
        if discovered is None:
            return ""
        lines = [status.read_only_reason] if status.takeover_ended else []
        if discovered.kind is EndpointKind.TAKEOVER:
            how = (
                f"Taking it over is off: {self.read_only_reason}."
                if self.view_only
                else "Press t to take it over (asks first)."
            )
            lines.append(
                f"{discovered.vm}'s serial console is on stdio: shown read-only from "
                f"{_history_place(discovered.fallback)}. {how}"
            )
        else:
            lines.append(discovered.explanation)
        if discovered.hint:
            lines.append(discovered.hint)
        return "\n".join(line for line in lines if line)

    # --- messages and actions -----------------------------------------------------------

    @on(TerminalWidget.Input)
    def _typed(self, message: TerminalWidget.Input) -> None:
        message.stop()
        if self.connection is not None and not self.view_only:
            self.connection.write(message.data)

    @on(TerminalWidget.Detach)
    def _detach_pressed(self, message: TerminalWidget.Detach) -> None:
        message.stop()
        self.action_detach()

    @on(TerminalWidget.Resized)
    def _resized(self, message: TerminalWidget.Resized) -> None:
        message.stop()  # a serial line has no window size to tell the guest

    def action_detach(self) -> None:
        if self.app.screen is self:
            self.app.pop_screen()

    def action_take_over(self) -> None:
        if self.view_only:
            self.notify(
                f"Read-only ({self.read_only_reason}): the console is view only, "
                "it is not taken over.",
                severity="warning",
            )
            return
        status = self.console_status
        discovered = status.discovered if status is not None else None
        if (
            status is None
            or not status.takeover_available
            or discovered is None
            or discovered.kind is not EndpointKind.TAKEOVER
            or self._dialog_open
        ):
            return
        self._dialog_open = True
        self.app.push_screen(TakeoverScreen(self.vm.name, discovered), self._takeover_answer)

    def _takeover_answer(self, confirmed: bool | None) -> None:
        self._dialog_open = False
        if self._gone:
            return
        self.terminal.focus()
        if self.connection is None:
            return
        if not confirmed:
            self.connection.takeover_declined = True  # later visits show the history; t asks
            return
        if not self.connection.confirm_takeover():
            notify_outside(self, "The takeover is no longer possible: the VM changed meanwhile.")


def _status_line(status: ConsoleStatus) -> str:
    endpoint = status.endpoint
    text = status.text
    if endpoint is not None and endpoint.path and endpoint.path in text:
        text = text.replace(endpoint.path, short_path(endpoint.path))
    return text
