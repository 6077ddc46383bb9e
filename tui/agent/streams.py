"""The agent's extra sessions: one VM's console or logs, each an ssh session of its own
(``HOST <agent command> console VM`` / ``... logs VM``) through the same shared connection
as the snapshots. Messages are JSON lines, as in ``tui.agent.protocol``, bounded by
``MAX_STREAM_LINE`` each way.

console (``agent console VM``):
agent -> app  ``{"type": "hello", "protocol": 1, "app": "0.1.0", "read_only": "why" | null}``
              ``{"type": "data", "data": BASE64}``  console bytes (history first, then live)
              ``{"type": "status", "status": {...ConsoleStatus}}``  at every change
app -> agent  ``{"type": "input", "data": BASE64}``  typed bytes (dropped when read-only)
              ``{"type": "takeover"}``  the admin confirmed the takeover the status offers

logs (``agent logs VM``):
agent -> app  hello as above
app -> agent  ``{"type": "query", "guest": false, "units": [...], "since": "all",
               "priority": 6 | null, "grep": "", "lines": 500}``  (units: of that VM only)
agent -> app  ``{"type": "lines", "lines": [...LogLine]}``  the last lines, in chunks
              ``{"type": "loaded", "status": "one line", "since_usec": N | null,
               "following": true}``  then ``{"type": "batch", "lines": [...]}`` as they come
              ``{"type": "ended", "why": "one line" | null}``  the follower ended

either way    ``{"type": "error", "message": "one line"}`` (the agent: why the session ends)

A session ends when the app closes its stdin (the pane closed: the app ends its ssh by pid).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tui.agent import protocol
from tui.host.names import name_problem

MAX_STREAM_LINE = 1 << 20  # one message either way (a chunk of console bytes, of log lines)
DATA_CHUNK = 48 << 10  # console bytes per data message (base64: 64 KiB)
LINES_CHUNK = 100  # log lines per lines/batch message (each at most 4096 characters)

CONSOLE_AGENT_TYPES = frozenset({"hello", "data", "status", "error"})
CONSOLE_APP_TYPES = frozenset({"input", "takeover"})
LOGS_AGENT_TYPES = frozenset({"hello", "lines", "loaded", "batch", "ended", "error"})
LOGS_APP_TYPES = frozenset({"query"})
SESSIONS = ("console", "logs")


def hello(read_only: str | None) -> dict[str, Any]:
    return {
        "type": "hello",
        "protocol": protocol.PROTOCOL,
        "app": protocol.app_version(),
        "read_only": read_only,
    }


def data_message(data: bytes, kind: str = "data") -> dict[str, Any]:
    return {"type": kind, "data": base64.b64encode(data).decode("ascii")}


def message_data(message: dict[str, Any]) -> bytes:
    """The bytes of a data or input message (untrusted: checked)."""
    value = message.get("data")
    if not isinstance(value, str):
        raise protocol.ProtocolError(f"a {message.get('type')} message without data")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        raise protocol.ProtocolError("data that is not base64") from None


def remote_command(agent: str, session: str, vm: str) -> list[str]:
    """The remote command line of a session: the host's agent command, the session, the VM.
    The remote shell reads it, so the VM name must be a plain one (no quoting needed)."""
    if session not in SESSIONS:
        raise ValueError(f"no {session} session")
    problem = name_problem(vm)
    if problem:
        raise ValueError(problem)
    return [agent, session, vm]
