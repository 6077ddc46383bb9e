"""Snapshots of the console screen, fed from byte streams recorded from the lab's guests
(tests/fixtures/console_streams/, made by bench/console_record.py).

A stand-in connection replays the recording through the real screen code (history, then
status). SVGs live in the top-level ``snapshots/test_console_snapshots/`` (see
tests/snapshot_support.py). Refresh with
``pytest tests/test_console_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App
from textual.pilot import Pilot

from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: F401
from tui.host.console import (
    ConnectionState,
    ConsoleEndpoint,
    ConsoleStatus,
    EndpointKind,
    Subscription,
)
from tui.host.console.history import QEMU_CONFIG_HINT
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.screens.console import ConsoleScreen

STREAMS = Path(__file__).parent / "fixtures" / "console_streams"
STATE = Path("/var/lib/microvms")
SIZE = (100, 32)


class RecordedConnection:
    """What ConsoleScreen uses of a ConsoleConnection, replaying a recording."""

    def __init__(self, history: bytes, status: ConsoleStatus) -> None:
        self.history = history
        self._status = status
        self.written = bytearray()
        self.takeover_declined = False

    @property
    def status(self) -> ConsoleStatus:
        return self._status

    def attach(self, on_data, on_status=None, full=None) -> Subscription:  # type: ignore[no-untyped-def]
        return Subscription(1, self.history, self._status)

    def detach(self, token: int) -> None:
        pass

    def write(self, data: bytes) -> bool:
        self.written += data
        return self._status.interactive

    def confirm_takeover(self) -> bool:
        return False


class RecordedManager:
    def __init__(self, connection: RecordedConnection) -> None:
        self.connection = connection

    def open(self, vm: VM) -> RecordedConnection:
        return self.connection


class SnapApp(App[None]):
    def __init__(
        self, vm: VM, connection: RecordedConnection, read_only_reason: str | None = None
    ) -> None:
        super().__init__()
        self.vm = vm
        self.connection = connection
        self.read_only_reason = read_only_reason

    def on_mount(self) -> None:
        manager = RecordedManager(self.connection)
        screen = ConsoleScreen(
            self.vm,
            HostSettings(),
            manager,  # type: ignore[arg-type]
            read_only_reason=self.read_only_reason,
        )
        self.push_screen(screen)


def vm(name: str) -> VM:
    return VM(name=name, path=STATE / name, hypervisor="qemu")


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()
    await pilot.pause()


def test_attached(snap_compare) -> None:
    """The console VM's socket, a shell session with colours and UTF-8; cursor at the prompt."""
    sock = str(STATE / "console" / "console-console.sock")
    endpoint = ConsoleEndpoint(
        vm="console", kind=EndpointKind.UNIX, path=sock, interactive=True, source="qmp"
    )
    status = ConsoleStatus(ConnectionState.CONNECTED, f"connected to {sock}", endpoint=endpoint)
    history = (STREAMS / "console_session.bin").read_bytes()
    app = SnapApp(vm("console"), RecordedConnection(history, status))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_read_only_history(snap_compare) -> None:
    """web's serial on stdio and no QMP: its log file, read-only, with why and the config
    lines that give an interactive console."""
    log = "/var/log/microvm/web.log"
    endpoint = ConsoleEndpoint(
        vm="web",
        kind=EndpointKind.LOGFILE,
        path=log,
        explanation=(
            "Read-only: its serial console is on the hypervisor's stdio and it cannot be taken "
            f"over (it has no QMP control socket); its serial output is appended to {log}."
        ),
        hint=QEMU_CONFIG_HINT,
        source="log",
    )
    status = ConsoleStatus(
        ConnectionState.READ_ONLY,
        f"following {log}",
        endpoint=endpoint,
        read_only_reason="no interactive serial endpoint, showing its history",
        discovered=endpoint,
    )
    history = (STREAMS / "web_history.bin").read_bytes()
    app = SnapApp(vm("web"), RecordedConnection(history, status))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_detached_with_hint(snap_compare) -> None:
    """The console VM powered off and came back: our notes, the new boot; then it stopped
    again: the pane keeps the output and says why it is not interactive."""
    endpoint = ConsoleEndpoint(
        vm="console",
        kind=EndpointKind.NONE,
        explanation="console is not running (inactive/dead): start it to get a console.",
    )
    status = ConsoleStatus(
        ConnectionState.WAITING,
        endpoint.explanation,
        endpoint=endpoint,
        read_only_reason=endpoint.explanation,
        discovered=endpoint,
    )
    history = (STREAMS / "console_restart.bin").read_bytes()
    app = SnapApp(vm("console"), RecordedConnection(history, status))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_takeover_question(snap_compare) -> None:
    """web's serial on stdio: read-only history behind the question, asked before anything."""
    sock = str(STATE / "web" / "microvm-tui.console.sock")
    history_ep = ConsoleEndpoint(
        vm="web", kind=EndpointKind.JOURNAL, source="journal", explanation="Read-only: ..."
    )
    offer = ConsoleEndpoint(
        vm="web",
        kind=EndpointKind.TAKEOVER,
        path=sock,
        needs_confirmation=True,
        transcript=str(STATE / "web" / "microvm-tui.console.log"),
        main_pid=4242,
        hint=QEMU_CONFIG_HINT,
        fallback=history_ep,
    )
    status = ConsoleStatus(
        ConnectionState.READ_ONLY,
        "following the journal of microvm@web",
        endpoint=history_ep,
        read_only_reason="serial on stdio, showing its history · t: take over",
        takeover_available=True,
        discovered=offer,
    )
    history = (STREAMS / "web_history.bin").read_bytes()
    app = SnapApp(vm("web"), RecordedConnection(history, status))
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)


def test_view_only_when_the_app_is_read_only(snap_compare) -> None:
    """web's serial on stdio in a read-only app: its history, no question; the hint line and
    the info say why nothing is sent and nothing is taken over."""
    sock = str(STATE / "web" / "microvm-tui.console.sock")
    history_ep = ConsoleEndpoint(
        vm="web", kind=EndpointKind.JOURNAL, source="journal", explanation="Read-only: ..."
    )
    offer = ConsoleEndpoint(
        vm="web",
        kind=EndpointKind.TAKEOVER,
        path=sock,
        needs_confirmation=True,
        transcript=str(STATE / "web" / "microvm-tui.console.log"),
        main_pid=4242,
        hint=QEMU_CONFIG_HINT,
        fallback=history_ep,
    )
    # What a read-only connection reports: no offer.
    status = ConsoleStatus(
        ConnectionState.READ_ONLY,
        "following the journal of microvm@web",
        endpoint=history_ep,
        read_only_reason="serial on stdio, showing its history",
        discovered=offer,
    )
    history = (STREAMS / "web_history.bin").read_bytes()
    app = SnapApp(vm("web"), RecordedConnection(history, status), "started with --read-only")
    assert snap_compare(app, terminal_size=SIZE, run_before=settle)
