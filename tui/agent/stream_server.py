"""``microvm-tui agent console VM`` and ``microvm-tui agent logs VM``: the host side of the
agent's extra sessions (``tui.agent.streams``), on stdin/stdout.

Both use the host's own code, with its checks: the console is a
:class:`~tui.host.console.ConsoleConnection` (it opens only the VM's own socket or pty,
takes over only on the admin's confirmation, and is view only when the agent is read-only);
the logs are :func:`~tui.host.logs.session.open_vm_logs` on that VM's units only. The VM must
be one the host lists. Each ends when stdin closes.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from typing import IO, Any

from tui.agent import codec, protocol, streams
from tui.agent.server import read_only_reason
from tui.config import Settings
from tui.host.model import VM
from tui.host.text import sanitise

EXIT_BAD = 2


class _Channel:
    """Protocol lines out (whole, under a lock), the app's lines in."""

    def __init__(self, inp: IO[bytes], out: IO[bytes]) -> None:
        self.inp = inp
        self.out = out
        self._lock = threading.Lock()

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message, streams.MAX_STREAM_LINE)
        with self._lock:
            self.out.write(data)
            self.out.flush()

    def read(self, types: frozenset[str]) -> dict[str, Any] | None:
        """The app's next message; None at the end of stdin."""
        limit = streams.MAX_STREAM_LINE
        line = self.inp.readline(limit + 1)
        if not line:
            return None
        if not line.endswith(b"\n") and len(line) > limit:
            raise protocol.ProtocolError(f"a line over {limit} bytes")
        return protocol.decode(line, types, limit)


def find_vm(settings: Settings, name: str) -> tuple[VM | None, str]:
    from tui.host.inventory import list_vms

    problem = streams.name_problem(name)
    if problem:
        return None, problem
    inventory = list_vms(settings.host, links=False)
    for vm in inventory.vms:
        if vm.name == name:
            return vm, ""
    why = f": {inventory.error}" if inventory.error else ""
    return None, f"no VM {name} on this host{why}"


# --- console --------------------------------------------------------------------------------


def run_console(settings: Settings, name: str, channel: _Channel) -> int:
    from tui.host.console import ConsoleConnection

    reason = read_only_reason(settings)
    channel.send(streams.hello(reason))
    vm, why = find_vm(settings, name)
    if vm is None:
        channel.send({"type": "error", "message": why})
        return EXIT_BAD
    conn = ConsoleConnection(vm, settings.host, read_only=reason is not None)

    # The history goes out before any live byte or status (the connection's thread waits).
    order = threading.Lock()

    def send_data(data: bytes) -> None:
        for start in range(0, len(data), streams.DATA_CHUNK):
            channel.send(streams.data_message(data[start : start + streams.DATA_CHUNK]))

    def send_status(status: Any) -> None:
        channel.send({"type": "status", "status": codec.encode(status)})

    def on_data(data: bytes) -> None:
        with order:
            send_data(data)

    def on_status(status: Any) -> None:
        with order:
            send_status(status)

    conn.start()
    try:
        with order:
            subscription = conn.attach(on_data, on_status)
            send_data(subscription.history)
            send_status(subscription.status)
        while (message := channel.read(streams.CONSOLE_APP_TYPES)) is not None:
            if message["type"] == "input":
                conn.write(streams.message_data(message))  # refused when read-only
            elif message["type"] == "takeover":
                conn.confirm_takeover()  # only what the status offers, never when read-only
    except protocol.ProtocolError as exc:
        with contextlib.suppress(OSError):
            channel.send({"type": "error", "message": f"the app sent {exc}"})
        return EXIT_BAD
    finally:
        conn.close()
    return 0


# --- logs -----------------------------------------------------------------------------------


def _query(message: dict[str, Any], vm: str) -> tuple[Any, bool]:
    """The LogQuery the app asked for, checked: units of VM only, known values only."""
    from tui.host.logs.query import MAX_LINES, PRIORITIES, LogQuery, QueryError, Since, vm_units

    guest = message.get("guest") is True
    units = message.get("units", [])
    if not isinstance(units, list) or not all(isinstance(u, str) for u in units):
        raise QueryError("units must be a list of unit names")
    if guest:
        units = []
    elif not units or any(u not in vm_units(vm) for u in units):
        raise QueryError(f"only the units of {vm} are read")
    try:
        since = Since(message.get("since", "all"))
    except ValueError:
        raise QueryError("since must be one of " + ", ".join(s.value for s in Since)) from None
    priority = message.get("priority")
    if priority is not None and priority not in PRIORITIES.values():
        raise QueryError("priority must be 3, 4, 6 or null")
    grep = message.get("grep", "")
    lines = message.get("lines", 500)
    if not isinstance(grep, str) or len(grep) > 4096:
        raise QueryError("grep must be a string of at most 4096 characters")
    if not isinstance(lines, int) or isinstance(lines, bool) or not 0 < lines <= MAX_LINES:
        raise QueryError(f"lines must be 1..{MAX_LINES}")
    query = LogQuery(
        units=tuple(units), since=since, priority=priority, grep=grep, lines=lines
    ).checked()
    return query, guest


def _send_lines(channel: _Channel, kind: str, lines: list[Any]) -> None:
    for start in range(0, len(lines), streams.LINES_CHUNK):
        chunk = lines[start : start + streams.LINES_CHUNK]
        channel.send({"type": kind, "lines": [codec.encode(line) for line in chunk]})


def run_logs(settings: Settings, name: str, channel: _Channel) -> int:
    from tui.host.logs.query import QueryError
    from tui.host.logs.session import open_vm_logs

    channel.send(streams.hello(read_only_reason(settings)))
    vm, why = find_vm(settings, name)
    if vm is None:
        channel.send({"type": "error", "message": why})
        return EXIT_BAD
    try:
        message = channel.read(streams.LOGS_APP_TYPES)
        if message is None:
            return 0
        query, guest = _query(message, vm.name)
    except (protocol.ProtocolError, QueryError) as exc:
        channel.send({"type": "error", "message": f"the app sent {sanitise(exc, 300)}"})
        return EXIT_BAD
    started = threading.Event()
    pending: list[Any] = []
    lock = threading.Lock()

    def on_lines(lines: list[Any]) -> None:
        with lock, contextlib.suppress(OSError, ValueError):
            if not started.is_set():  # none before the first lines are out
                pending.extend(lines)
                return
            _send_lines(channel, "batch", lines)

    def on_end(why: str | None) -> None:
        with contextlib.suppress(OSError, ValueError):
            channel.send({"type": "ended", "why": why})

    opened = open_vm_logs(settings.host, vm, query, guest, on_lines, on_end)
    following = opened.following
    try:
        _send_lines(channel, "lines", opened.lines)
        channel.send(
            {
                "type": "loaded",
                "status": opened.status,
                "since_usec": opened.since_usec,
                "following": following is not None,
            }
        )
        if following is not None:
            following.start()
        with lock:
            started.set()
            if pending:
                _send_lines(channel, "batch", pending)
        # Until the app closes stdin (the view changed filters or closed).
        while channel.inp.read(4096):
            pass
    finally:
        if following is not None:
            following.close()
    return 0


def run_session(settings: Settings, session: list[str]) -> int:
    """``agent SESSION VM`` on this process's stdin/stdout."""
    if len(session) != 2 or session[0] not in streams.SESSIONS:
        print(
            "microvm-tui agent: expected `agent`, `agent console VM` or `agent logs VM`",
            file=sys.stderr,
        )
        return EXIT_BAD
    out_fd = os.dup(1)
    os.dup2(2, 1)  # stray writes to stdout go to stderr from now on
    sys.stdout = sys.stderr
    channel = _Channel(os.fdopen(os.dup(0), "rb"), os.fdopen(out_fd, "wb", buffering=0))
    run = run_console if session[0] == "console" else run_logs
    try:
        return run(settings, session[1], channel)
    except (BrokenPipeError, ConnectionResetError):
        return 0
    except KeyboardInterrupt:
        return 130
