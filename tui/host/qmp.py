"""QMP through ``qemu.qmp``'s ``QMPClient``, on the host loop: connect, ask, disconnect.

A qemu ``-qmp unix:...,server`` socket serves one client at a time, and microvm-shutdown and
microvm-balloon need it too; so every exchange is one short session that never holds the
socket: :func:`qmp_session` connects, the caller asks, and the session is closed again, all
under one hard deadline for the whole session (``asyncio.timeout_at`` the session's deadline
around the connect and the greeting, and around each command: a timer on the session's task,
where ``wait_for`` would make a task per step). A server that
accepts and never greets, or greets and then sends only events, ends at that deadline: the
deadline is per session, never per message read. Sessions are coroutines on the host layer's
one event loop (``tui.host.hostloop``), so one hung VM never delays another; the blocking
helpers (:func:`qmp_execute`) are for callers in worker threads.

Everything the server sends is untrusted: a message longer than ``MAX_MESSAGE`` ends the
session (``QMPClient``'s reader limit), so does anything that is not a JSON object; an error
reply's class and text pass the one sanitiser. The reasons raised (:class:`QMPError`) are
short sentences the UI can show as they are.

``negotiate`` is off: we send ``qmp_capabilities`` ourselves, so a pipelined session
(:meth:`QMPSession.batch`) sends it in the same round trip as its queries, and a refusal keeps
the server's own words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from json import JSONDecodeError
from typing import Any

from qemu.qmp import ConnectError, ExecInterruptedError, ExecuteError, QMPClient, Runstate
from qemu.qmp import QMPError as LibraryError
from qemu.qmp.message import DeserializationError, Message, UnexpectedTypeError
from qemu.qmp.qmp_client import BadReplyError, GreetingError

from tui.host.hostloop import host_loop
from tui.host.text import sanitise
from tui.host.unixsock import SocketError, connect_unix_async

DEFAULT_TIMEOUT = 1.0
# The reader's line limit. The largest reply we ask for (query-blockstats of a VM with many
# disks) is tens of KiB; the loop is shared, and parsing a reply holds every session for as
# long as it takes, so a hostile one is cut off at 1 MiB.
MAX_MESSAGE = 1 << 20
# What one session may take in, events included: a session asks at most ~10 questions, and
# qemu sends an event now and then (a guest's NIC filter change, a balloon change).
MAX_SESSION_MESSAGES = 256
MAX_SESSION_BYTES = 2 * MAX_MESSAGE
DISCONNECT_S = 0.1  # a clean goodbye; past it the socket is shut down under the client
_TEXT_LIMIT = 200  # characters of a server's error text we keep

# The library logs every failed connection at ERROR level, with tracebacks: the host layer
# reports through reasons, never through a log that could reach the terminal. Above CRITICAL
# no record is even made: every level check is one cached lookup, and a hung VM's timeout
# builds no LogRecord (its debug tracebacks are still formatted: the library passes them as
# arguments).
_LIBRARY_LOG = logging.getLogger("qemu.qmp")
_LIBRARY_LOG.propagate = False
_LIBRARY_LOG.setLevel(logging.CRITICAL + 1)


def timeout_reason(timeout: float) -> str:
    return f"QMP timeout after {timeout:.1f} s"


class QMPError(Exception):
    """The session failed; ``str(exc)`` is the reason to show."""


class QMPCommandError(QMPError):
    """One command returned an error response; the session itself is fine."""

    def __init__(self, command: str, error_class: str, desc: str) -> None:
        error_class = sanitise(error_class, _TEXT_LIMIT)
        desc = sanitise(desc, _TEXT_LIMIT)
        super().__init__(f"{command}: {error_class}: {desc}")
        self.command = command
        self.error_class = error_class
        self.desc = desc


class _Client(QMPClient):
    """``QMPClient`` with inbound and outbound hooks of ours (the library's documented place
    for filters): no per-message debug logging (the base hooks pretty-print every message for
    a log nobody reads, ``str(msg)`` being evaluated before the level check), and a bound on
    what one session takes in. The event loop is shared and the reader parses whatever is in
    its buffer before it yields, so a server flooding events would hold every other session
    for as long as the flood lasted; past MAX_SESSION_MESSAGES messages or
    MAX_SESSION_BYTES bytes the session ends instead."""

    def __init__(self) -> None:
        super().__init__(readbuflen=MAX_MESSAGE)
        self.negotiate = False  # ours to send (see the module's docstring)
        # Its default listener (which cannot be removed) keeps every event it hears, in a
        # queue and a history, for as long as the client lives: a flood of events would be a
        # flood of memory. We want none: its filter turns every one away.
        self.events.event_filter = _no_event
        self.received_messages = 0
        self.received_bytes = 0
        self.unsent: list[bytes] = []

    def _do_send(self, msg: Message) -> None:
        """The library's writer task hands over every queued message in one turn of the loop
        (a batch's commands): gathered here, they go out in one write at the end of that turn,
        so the server's process is woken once for them (each wake-up can take this thread's
        CPU away, and its cache), not once per message."""
        if not self.unsent:
            asyncio.get_running_loop().call_soon(self._write_unsent)
        self.unsent.append(bytes(msg))

    def _write_unsent(self) -> None:
        data = b"".join(self.unsent)
        self.unsent.clear()
        writer = self._writer
        if data and writer is not None and not writer.is_closing():
            writer.write(data)  # a send error ends the transport: the reader says why

    def _cb_outbound(self, msg: Message) -> Message:
        return msg

    def _cb_inbound(self, msg: Message) -> Message:
        self.received_messages += 1
        self.received_bytes += len(bytes(msg))  # the bytes it was read from: no copy
        if self.received_messages > MAX_SESSION_MESSAGES:
            raise QMPError(f"QMP sent more than {MAX_SESSION_MESSAGES} messages in one session")
        if self.received_bytes > MAX_SESSION_BYTES:
            raise QMPError(f"QMP sent more than {MAX_SESSION_BYTES >> 20} MiB in one session")
        return msg


def _no_event(event: Message) -> bool:
    return False


# Idle clients of finished sessions, per event loop, for the next sessions to take: a client
# between sessions is IDLE and holds no socket, no task and no reply (``disconnect`` left it
# so), and building one (its event listener, queues and state) is a noticeable part of a
# session's CPU. Only a client whose goodbye ended cleanly comes back; bounded, so a burst of
# concurrent sessions leaves no more than _POOL_MAX behind.
_POOL_MAX = 32
_pools: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, list[_Client]] = (
    weakref.WeakKeyDictionary()
)


def _take_client(loop: asyncio.AbstractEventLoop) -> _Client:
    pool = _pools.get(loop)
    client = pool.pop() if pool else _Client()
    client.received_messages = client.received_bytes = 0
    client.unsent.clear()  # what a session that ended before its write left: never sent
    return client


def _give_back(loop: asyncio.AbstractEventLoop, client: _Client) -> None:
    if client.runstate is not Runstate.IDLE:
        return  # its goodbye did not finish: let it go
    pool = _pools.setdefault(loop, [])
    if len(pool) < _POOL_MAX:
        pool.append(client)


def describe(exc: BaseException) -> str:
    """The reason to show for an exception out of ``QMPClient`` (or its reader task)."""
    if isinstance(exc, ConnectError):
        return describe(exc.exc)
    if isinstance(exc, QMPError):
        return str(exc)
    if isinstance(exc, GreetingError):
        if isinstance(exc.exc, DeserializationError | UnexpectedTypeError):
            return describe(exc.exc)
        return "not a QMP socket (no greeting)"
    if isinstance(exc, DeserializationError | UnicodeError | JSONDecodeError):
        return "QMP sent something that is not JSON"
    if isinstance(exc, UnexpectedTypeError):
        return "QMP sent something that is not a JSON object"
    if isinstance(exc, RecursionError):  # "[[[[...": json nests by recursion
        return "QMP sent JSON nested too deeply"
    if isinstance(exc, ValueError):
        # The reader's limit (asyncio turns LimitOverrunError into a ValueError), or a number
        # longer than int() reads.
        return "QMP message too large"
    if isinstance(exc, EOFError):
        return "QMP connection closed by the hypervisor"
    if isinstance(exc, OSError):
        return f"QMP connection failed: {exc.strerror or type(exc).__name__}"
    return f"QMP session failed ({type(exc).__name__})"  # the library's own, or a bug


class QMPSession:
    """One open session (from :func:`qmp_session`). Every call raises :class:`QMPError` (a
    :class:`QMPCommandError` for an error reply) and never outlives the session's deadline."""

    def __init__(self, client: QMPClient, deadline: float, timeout: float) -> None:
        self._client = client
        self._deadline = deadline
        self.timeout = timeout

    def _left(self) -> float:
        left = self._deadline - asyncio.get_running_loop().time()
        if left <= 0:
            raise QMPError(timeout_reason(self.timeout))
        return left

    async def _closed_reason(self) -> str:
        """Why the connection ended under a command: ``disconnect`` raises the reader's or
        writer's own failure (bad JSON, a message too large, EOF). It may take what is left
        of the session (a loaded host), at least DISCONNECT_S."""
        left = max(DISCONNECT_S, self._deadline - asyncio.get_running_loop().time())
        try:
            async with asyncio.timeout(left):
                await self._client.disconnect()
        except TimeoutError:
            return "QMP connection failed (no reason came in time)"
        except Exception as exc:  # the root cause, whatever it was
            return describe(exc)
        return "QMP connection closed by the hypervisor"

    async def _one(self, command: str, arguments: dict[str, Any] | None) -> Any:
        """COMMAND's "return" value; an error reply is raised as QMPCommandError."""
        # The message built lazily (eager=False): execute() would serialize it once when made
        # and again when arguments are added, each time thrown away (execute_msg serializes
        # its own copy).
        body: dict[str, Any] = {"execute": command}
        if arguments is not None:
            body["arguments"] = arguments
        try:
            return await self._client.execute_msg(Message(body, eager=False))
        except ExecuteError as exc:
            raise QMPCommandError(command, exc.error_class, str(exc)) from None
        except BadReplyError:
            raise QMPCommandError(command, "BadReply", "the reply is malformed") from None

    async def _guard(self, work: Callable[[], Awaitable[Any]]) -> Any:
        """WORK() within what is left of the session's time, its failures as QMPError."""
        try:
            self._left()
            async with asyncio.timeout_at(self._deadline):  # a timer, not a task per call
                return await work()
        except QMPCommandError:
            raise
        except TimeoutError:
            raise QMPError(timeout_reason(self.timeout)) from None
        except (ExecInterruptedError, LibraryError):  # the connection is gone (or going)
            raise QMPError(await self._closed_reason()) from None

    async def execute(self, command: str, arguments: dict[str, Any] | None = None) -> Any:
        """Run COMMAND and return its "return" value."""
        return await self._guard(lambda: self._one(command, arguments))

    async def batch(self, commands: Sequence[tuple[str, dict[str, Any] | None]]) -> list[Any]:
        """Send COMMANDS (name, arguments) at once, then take their replies: in order, each
        command's "return" value or, for an error reply, its QMPCommandError (returned, not
        raised). One round trip instead of one per command; qemu runs them in order (keep a
        batch under its queue of 8 requests). Raises QMPError when the session fails."""

        async def one(command: str, arguments: dict[str, Any] | None) -> Any:
            try:
                return await self._one(command, arguments)
            except QMPCommandError as exc:
                return exc

        # Each execute queues its message before its first wait, so they go out in order.
        answers = await self._guard(lambda: asyncio.gather(*(one(c, a) for c, a in commands)))
        return list(answers)


@contextlib.asynccontextmanager
async def qmp_session(
    path: str, timeout: float = DEFAULT_TIMEOUT, *, negotiate: bool = True
) -> AsyncIterator[QMPSession]:
    """A QMP session to the server at PATH, open for at most TIMEOUT seconds (the connect
    included), then closed. NEGOTIATE: send ``qmp_capabilities`` first (False: the caller
    sends it, in a batch). Raises QMPError with the reason."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        sock = await connect_unix_async(path, timeout)
    except TimeoutError:
        raise QMPError(timeout_reason(timeout)) from None
    except SocketError as exc:
        raise QMPError(str(exc)) from None
    client = _take_client(loop)
    session = QMPSession(client, deadline, timeout)
    try:
        try:
            session._left()
            # timeout_at, not wait_for: a timer on this task rather than a task of its own
            # (the same hard deadline, cancelling connect() where it waits).
            async with asyncio.timeout_at(deadline):
                await client.connect(sock)
        except TimeoutError:
            raise QMPError(
                timeout_reason(timeout)
                + " waiting for the greeting (another client may hold the socket)"
            ) from None
        except ConnectError as exc:
            raise QMPError(describe(exc)) from None
        except Exception as exc:
            # The reader may fail on what follows the greeting before connect() returns (it
            # then trips on an assertion of its own); its failure is the reason.
            if client.runstate is Runstate.IDLE:
                raise QMPError(describe(exc)) from None
            raise QMPError(await session._closed_reason()) from None
        if negotiate:
            await session.execute("qmp_capabilities")
        yield session
    finally:
        await _release(client, sock)
        _give_back(loop, client)


async def _release(client: QMPClient, sock: socket.socket) -> None:
    """Say goodbye within DISCONNECT_S, and in any case let go of the socket: shut down, the
    server is free for its next client at once, whatever state the client is in."""
    try:
        if client.runstate is not Runstate.IDLE:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(DISCONNECT_S):
                    await client.disconnect()
    finally:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        if client.runstate is Runstate.IDLE:
            sock.close()  # no transport holds it (any transport has closed it already)


async def qmp_execute_async(
    path: str,
    command: str,
    arguments: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Run one command in its own short session. Raises QMPError (or QMPCommandError)."""
    async with qmp_session(path, timeout) as qmp:
        return await qmp.execute(command, arguments)


def qmp_execute(
    path: str,
    command: str,
    arguments: dict[str, Any] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """:func:`qmp_execute_async` for a caller in a worker thread (never the host loop's)."""
    return run_session(qmp_execute_async(path, command, arguments, timeout), timeout)


def run_session(coro: Any, timeout: float) -> Any:
    """Run a session coroutine on the host loop and wait for it. The session keeps its own
    deadline; this bound (with room for the goodbye) only protects the waiting thread."""
    try:
        return host_loop().run(coro, timeout + DISCONNECT_S + 0.5)
    except TimeoutError:
        raise QMPError(timeout_reason(timeout)) from None
