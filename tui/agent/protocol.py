"""The agent protocol: one JSON object per line, each way, over the ssh session's stdin/stdout.

Version ``PROTOCOL`` (an integer, raised whenever a message changes meaning). A session:

agent -> app  ``{"type": "hello", "protocol": 1, "app": "0.1.0", "host": {...facts},
               "read_only": "why" | null, "interval": 1.0}``  first, always
app -> agent  ``{"type": "start", "protocol": 1, "app": "0.1.0", "interval": 1.0,
               "focus": "web" | null}``  after checking the hello; a mismatch ends the session
agent -> app  ``{"type": "snapshot", "seq": 1, "full": {...}}``  then every interval
              ``{"type": "snapshot", "seq": N, "patch": {...}}``  (what changed since N-1)
app -> agent  ``{"type": "focus", "vm": "web" | null}``, ``{"type": "poll"}`` (one now)
either way    ``{"type": "error", "message": "one line"}``  (the agent: a poll failed; or why
              it ends the session, e.g. a version mismatch)
jobs          ``submit``, ``cancel``, ``plan`` (app -> agent) and ``job``, ``refused``,
              ``plan`` (agent -> app): see ``tui.agent.agent_jobs`` (protocol 2)

The agent ends when its stdin closes (the app or the ssh connection went). Lines are bounded
(``MAX_LINE``); text read from them is untrusted and sanitised before use.
"""

from __future__ import annotations

import json
from typing import Any

from tui.host.text import sanitise

PROTOCOL = 2  # 2: jobs (tui.agent.agent_jobs)
MAX_LINE = 8 << 20  # bytes in one line: a full snapshot of a few thousand VMs
MAX_APP_LINE = 64 << 10  # the app's messages to the agent are small
MAX_MESSAGE_TEXT = 500  # characters of an error message shown

AGENT_TYPES = frozenset({"hello", "snapshot", "error"})
APP_TYPES = frozenset({"start", "focus", "poll"})
# Jobs on the agent's host (tui.agent.agent_jobs).
AGENT_TYPES |= frozenset({"job", "refused", "plan"})
APP_TYPES |= frozenset({"submit", "cancel", "plan"})


def app_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("microvm-tui")
    except PackageNotFoundError:
        return "unknown"


class ProtocolError(ValueError):
    """A line that is not a message of the protocol (one line, safe to show)."""


def encode(message: dict[str, Any], limit: int = MAX_LINE) -> bytes:
    line = json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    data = line.encode("ascii") + b"\n"
    if len(data) > limit:
        raise ProtocolError(
            f"a {message.get('type')} message of {len(data)} bytes (at most {limit})"
        )
    return data


def _no_constant(name: str) -> Any:
    raise ProtocolError(f"{name} is not JSON")


def decode(line: bytes, types: frozenset[str], limit: int = MAX_LINE) -> dict[str, Any]:
    """One message from LINE, whose ``type`` must be one of TYPES."""
    if len(line) > limit:
        raise ProtocolError(f"a line of {len(line)} bytes (at most {limit})")
    try:
        message = json.loads(line, parse_constant=_no_constant)
    except ProtocolError:
        raise
    except RecursionError:
        raise ProtocolError("a message nested too deeply") from None
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ProtocolError(f"not JSON: {sanitise(str(exc), 120)}") from None
    if not isinstance(message, dict):
        raise ProtocolError(f"a message must be an object, not {type(message).__name__}")
    kind = message.get("type")
    if kind not in types:
        shown = sanitise(kind, 40) if isinstance(kind, str) else type(kind).__name__
        raise ProtocolError(f"unknown message type {shown}")
    return message


def message_text(message: dict[str, Any], key: str = "message") -> str:
    """A text field of an untrusted message, sanitised to one line."""
    value = message.get(key)
    return sanitise(value if isinstance(value, str) else repr(value), MAX_MESSAGE_TEXT)


def version_mismatch(
    agent_protocol: object, agent_app: object, app_protocol: object, app_app: object
) -> str | None:
    """One line naming both sides' versions when their protocol versions differ; else None.
    The values may come from the other side: each is checked and sanitised."""
    if type(agent_protocol) is int and agent_protocol == app_protocol:
        return None

    def shown(value: object) -> str:
        if isinstance(value, bool) or not isinstance(value, int | str):
            return "unknown"
        return sanitise(value, 40)

    return (
        f"version mismatch: the agent (microvm-tui {shown(agent_app)}) speaks protocol "
        f"{shown(agent_protocol)}, the app (microvm-tui {shown(app_app)}) protocol "
        f"{shown(app_protocol)}"
    )


def hello_problem(hello: dict[str, Any]) -> str | None:
    """Why a session's first message ends it (the agent's error, or a version mismatch in one
    line), None for a good hello; ``ProtocolError`` when it is not a hello at all."""
    if hello["type"] == "error":
        return message_text(hello)
    if hello["type"] != "hello":
        raise ProtocolError(f"a {hello['type']} message before its hello")
    return version_mismatch(hello.get("protocol"), hello.get("app"), PROTOCOL, app_version())
