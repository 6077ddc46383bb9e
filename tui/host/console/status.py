"""What a console connection says about itself: its state, a status line, the read-only
reason for the hint bar, and the dim notes it writes into the stream. No Textual here."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tui.host.console.endpoints import ConsoleEndpoint, EndpointKind
from tui.host.text import sanitise


class ConnectionState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"  # interactive
    READ_ONLY = "read-only"  # following history (log file / journal)
    WAITING = "waiting"  # nothing to attach to now; looking again now and then
    RECONNECTING = "reconnecting"
    CLOSED = "closed"


@dataclass(frozen=True)
class ConsoleStatus:
    state: ConnectionState
    text: str  # for a status line: "connected to …/console.sock", "reconnecting…"
    endpoint: ConsoleEndpoint | None = None
    read_only_reason: str = ""  # short, for a hint bar, whenever not interactive
    takeover_available: bool = False  # confirm_takeover() would take the console over now
    takeover_ended: bool = False  # the VM restarted after our takeover
    discovered: ConsoleEndpoint | None = None  # discovery's full answer (explanation, hint)

    @property
    def interactive(self) -> bool:
        return self.state is ConnectionState.CONNECTED


DataCallback = Callable[[bytes], None]
StatusCallback = Callable[[ConsoleStatus], None]


@dataclass(frozen=True)
class Subscription:
    token: int
    history: bytes  # the buffer at the moment of attaching; live data follows it exactly
    status: ConsoleStatus


def note(text: str) -> bytes:
    """A line of our own in the console stream (dim), e.g. "-- reconnected --"."""
    clean = sanitise(text)
    return b"\r\n\x1b[0;2m-- " + clean.encode("utf-8", "replace") + b" --\x1b[0m\r\n"


def short_reason(endpoint: ConsoleEndpoint, offer: bool = True) -> str:
    """One line for the hint bar: why it is read-only."""
    match endpoint.kind:
        case EndpointKind.TAKEOVER:
            history = "serial on stdio, showing its history"
            return f"{history} · t: take over" if offer else history
        case EndpointKind.LOGFILE | EndpointKind.JOURNAL:
            return "no interactive serial endpoint, showing its history"
    return endpoint.explanation


def where(endpoint: ConsoleEndpoint) -> str:
    if endpoint.kind is EndpointKind.LOGFILE:
        return str(endpoint.path)
    if endpoint.kind is EndpointKind.JOURNAL:
        return f"the journal of microvm@{endpoint.vm}"
    return str(endpoint.path or endpoint.describe())


def connection_status(
    name: str,
    read_only: bool,
    target: ConsoleEndpoint,
    discovered: ConsoleEndpoint,
    error: str = "",
    takeover_ended: bool = False,
) -> ConsoleStatus:
    """The status of VM ``name``'s connection with ``target`` open, for discovery's answer
    ``discovered``; a read-only connection (``read_only``) never offers a takeover."""
    if target.interactive:
        verb = "connected to"
        text = f"{verb} {target.path}"
        if target.busy:
            text += " (another client holds it: waiting for output)"
        return ConsoleStatus(ConnectionState.CONNECTED, text, endpoint=target)
    offer = discovered.kind is EndpointKind.TAKEOVER and not read_only
    if takeover_ended:
        reason = (
            f"{name} restarted: the takeover ended with it; serial output goes to "
            f"{where(target)} again"
        )
        if offer:
            reason += " · t: take over again"
    elif discovered.kind is EndpointKind.NONE:
        reason = discovered.explanation
    else:
        reason = short_reason(discovered, offer)
    if error:
        reason = f"{error} · {reason}"
    return ConsoleStatus(
        ConnectionState.READ_ONLY,
        f"following {where(target)}",
        endpoint=target,
        read_only_reason=reason,
        takeover_available=offer,
        takeover_ended=takeover_ended,
    )
