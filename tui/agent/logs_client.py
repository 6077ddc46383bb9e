"""A remote VM's logs for the Logs view: :class:`RemoteLogs`, a log source like
``tui.host.logs.session.LocalLogs`` whose journal work the host's agent does
(``HOST <agent> logs VM``, one ssh session per opening of the view or change of filters,
through the host's shared connection).

The query travels as a message on the session (never on the remote command line: a search
text is the admin's arbitrary text, and the remote shell would read it). The lines that come
back are untrusted: each message bounded, each line decoded strictly into a ``LogLine`` (every
string through the one sanitiser), so a hostile agent gets a one-line status, never a crash
or a byte on the terminal. Closing (a new filter, the view gone) ends ssh by its pid.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import contextlib
import threading
from typing import Any

from tui.agent import codec, protocol, streams
from tui.agent.hosts import RemoteHost
from tui.agent.stream_client import AgentSession, SessionEnd
from tui.host.hostloop import HostLoop, host_loop
from tui.host.logs.entry import LogLine
from tui.host.logs.query import LogQuery
from tui.host.logs.session import EndCallback, LinesCallback, OpenedLogs
from tui.host.model import VM
from tui.host.text import sanitise

OPEN_TIMEOUT_S = 90.0  # ssh's connect, the remote login, journalctl's read
MAX_FIRST_LINES = 100_000  # lines of a first read kept (the query asks for fewer)


def query_message(query: LogQuery, guest: bool) -> dict[str, Any]:
    return {
        "type": "query",
        "guest": guest,
        "units": list(query.units),
        "since": query.since.value,
        "priority": query.priority,
        "grep": query.grep,
        "lines": query.lines,
    }


def decode_lines(message: dict[str, Any]) -> list[LogLine]:
    lines = message.get("lines")
    if not isinstance(lines, list) or len(lines) > streams.LINES_CHUNK:
        raise codec.CodecError(f"lines: a list of at most {streams.LINES_CHUNK} was expected")
    return [codec.decode(LogLine, line, f"lines[{i}]") for i, line in enumerate(lines)]


class _RemoteFollowing:
    """The session after its first lines: batches wait until ``start`` (the first lines are
    on screen), then go to ON_LINES; ``close`` ends the session."""

    def __init__(self, on_lines: LinesCallback, on_end: EndCallback) -> None:
        self.on_lines = on_lines
        self.on_end = on_end
        self.future: cf.Future[None] | None = None
        self.finished = threading.Event()  # ssh ended and reaped
        self.ssh_pid: int | None = None  # the session's ssh client (tests)
        self._lock = threading.Lock()
        self._started = False
        self._closed = False
        self._early: list[LogLine] = []
        self._early_end: tuple[str | None] | None = None

    def lines(self, lines: list[LogLine]) -> None:
        with self._lock:
            if not self._started:
                self._early.extend(lines)
                del self._early[:-MAX_FIRST_LINES]
                return
        self.on_lines(lines)

    def ended(self, why: str | None) -> None:
        with self._lock:
            if self._closed:
                return
            if not self._started:
                self._early_end = (why,)
                return
        self.on_end(why)

    def start(self) -> None:
        with self._lock:
            self._started = True
            early, self._early = self._early, []
            end = self._early_end
        if early:
            self.on_lines(early)
        if end is not None:
            self.on_end(end[0])

    def close(self) -> None:
        with self._lock:
            self._closed = True
        if self.future is not None:
            self.future.cancel()
            self.finished.wait(5)


class RemoteLogs:
    """The Logs view's source for HOST's VMs."""

    def __init__(
        self,
        host: RemoteHost,
        *,
        persist: str = "60",
        connect_timeout: float = 10.0,
        timeout: float = OPEN_TIMEOUT_S,
        loop: HostLoop | None = None,
    ) -> None:
        self.host = host
        self.persist = persist
        self.connect_timeout = connect_timeout
        self.timeout = timeout
        self.sessions = 0  # ssh sessions started (tests)
        self._loop = loop or host_loop()

    def open(
        self, vm: VM, query: LogQuery, guest: bool, on_lines: LinesCallback, on_end: EndCallback
    ) -> OpenedLogs:
        """The first lines (blocking: from a worker thread), then a following to start."""
        following = _RemoteFollowing(on_lines, on_end)
        opened: cf.Future[OpenedLogs] = cf.Future()
        self.sessions += 1
        following.future = self._loop.submit(
            self._session(vm.name, query, guest, following, opened)
        )
        try:
            return opened.result(self.timeout)
        except cf.TimeoutError:
            following.close()
            return OpenedLogs(status=f"{self.host.name}: no answer in {self.timeout:.0f} s")

    async def _session(
        self,
        vm: str,
        query: LogQuery,
        guest: bool,
        following: _RemoteFollowing,
        opened: cf.Future[OpenedLogs],
    ) -> None:
        session = AgentSession(
            self.host,
            "logs",
            vm,
            streams.LOGS_AGENT_TYPES,
            connect_timeout=self.connect_timeout,
            persist=self.persist,
        )
        reason: str | None = None
        try:
            await session.start()
            following.ssh_pid = session.proc.pid if session.proc is not None else None
            await session.send(query_message(query, guest))
            lines: list[LogLine] = []
            while not opened.done():
                message = await session.read(self.timeout)
                kind = message["type"]
                if kind == "lines":
                    lines += decode_lines(message)
                    del lines[:-MAX_FIRST_LINES]
                elif kind == "loaded":
                    status = message.get("status")
                    since = message.get("since_usec")
                    if since is not None:
                        since = codec.decode(int, since, "since_usec")
                    text = sanitise(status, 400) if isinstance(status, str) else ""
                    follows = message.get("following") is True
                    opened.set_result(
                        OpenedLogs(lines, text, since, following if follows else None)
                    )
                    if not follows:
                        return
                else:
                    raise protocol.ProtocolError(f"a {kind} message before the lines")
            while True:
                message = await session.read()
                kind = message["type"]
                if kind == "batch":
                    following.lines(decode_lines(message))
                elif kind == "ended":
                    why = message.get("why")
                    following.ended(sanitise(why, 300) if isinstance(why, str) else None)
                else:
                    raise protocol.ProtocolError(f"a {kind} message while following")
        except SessionEnd as end:
            reason = str(end)
        except (protocol.ProtocolError, codec.CodecError) as exc:
            reason = f"the agent sent {exc}"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never a traceback in the view: one line
            reason = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            await session.end()  # ssh, our child, by its pid
            following.finished.set()
            if not opened.done():
                opened.set_result(
                    OpenedLogs(status=f"{self.host.name}: {sanitise(reason or 'closed', 400)}")
                )
        if reason is not None:
            with contextlib.suppress(Exception):
                following.ended(f"{self.host.name}: {sanitise(reason, 400)}")
