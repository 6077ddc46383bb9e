"""Serial consoles of MicroVMs: where they are (endpoints), the takeover of a stdio console
(takeover, marker), the bytes (sources, opened by opening), one VM's connection kept open
(connection: its state machine; fanout: its recent output and subscribers; wakeup; status)
and several VMs' at once (pool).

No Textual here: the console screen (tui/screens/console.py) subscribes to a
:class:`ConsoleConnection` and feeds a terminal widget.
"""

from tui.host.console.connection import BUFFER_LIMIT, ConsoleConnection
from tui.host.console.discovery import discover_endpoint
from tui.host.console.endpoints import ConsoleEndpoint, EndpointKind
from tui.host.console.journal import JournalDecoder, JournalEntry, parse_journal_line
from tui.host.console.marker import read_marker
from tui.host.console.pool import ConsoleManager
from tui.host.console.status import ConnectionState, ConsoleStatus, Subscription
from tui.host.console.takeover import TakeoverError, take_over

__all__ = [
    "BUFFER_LIMIT",
    "ConnectionState",
    "ConsoleConnection",
    "ConsoleEndpoint",
    "ConsoleManager",
    "ConsoleStatus",
    "EndpointKind",
    "JournalDecoder",
    "JournalEntry",
    "Subscription",
    "TakeoverError",
    "discover_endpoint",
    "parse_journal_line",
    "read_marker",
    "take_over",
]
