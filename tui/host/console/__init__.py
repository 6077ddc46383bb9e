"""Serial consoles of MicroVMs: where they are (endpoints), how to read them (connections).

No Textual here: the console screen (tui/screens/console.py) subscribes to a
:class:`ConsoleConnection` and feeds a terminal widget.
"""

from tui.host.console.connection import (
    BUFFER_LIMIT,
    ConnectionState,
    ConsoleConnection,
    ConsoleManager,
    ConsoleStatus,
    Subscription,
)
from tui.host.console.endpoints import (
    ConsoleEndpoint,
    EndpointKind,
    TakeoverError,
    discover_endpoint,
    read_marker,
    take_over,
)
from tui.host.console.journal import JournalDecoder, JournalEntry, parse_journal_line

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
