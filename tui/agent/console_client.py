"""A remote VM's serial console: :class:`RemoteConsoleConnection`, which the console pane
uses as it uses a local :class:`~tui.host.console.ConsoleConnection` (the same attach,
write, status and takeover calls), fed by ``HOST <agent> console VM`` over ssh.

The host's agent does the console work with the host's own code and checks (which pty or
socket belongs to the VM, takeover, view only when it is read-only); this side carries bytes
and statuses. While no pane is attached the ssh session is ended (by its pid); the recent
output stays here for the next visit, which starts a new session. A session that fails says
ssh's reason in one line, in the status, and is tried again with backoff while a pane shows it.

Untrusted: the bytes go only to the pane's terminal emulator (which sanitises them); a status
is decoded strictly (every string sanitised) and only shown: nothing it names is opened here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from tui.agent import codec, protocol, streams
from tui.agent.hosts import RemoteHost
from tui.agent.stream_client import AgentSession, SessionEnd
from tui.host.console import (
    BUFFER_LIMIT,
    ConnectionState,
    ConsoleEndpoint,
    ConsoleStatus,
    Subscription,
)
from tui.host.console.fanout import Fanout
from tui.host.console.status import DataCallback, StatusCallback, note
from tui.host.hostloop import HostLoop, host_loop
from tui.host.model import VM
from tui.host.text import sanitise

log = logging.getLogger(__name__)

BACKOFF_START_S = 1.0
BACKOFF_MAX_S = 30.0
HOLD_POLL = 0.01  # seconds between looks at a pane that asked us to hold the reading
OUT_LIMIT = 64 * 1024  # typed bytes on their way


class RemoteConsoleConnection:
    """VM's console on HOST, through the host's agent; the API of ConsoleConnection."""

    def __init__(
        self,
        host: RemoteHost,
        vm: VM,
        *,
        read_only: bool | str = False,
        buffer_limit: int = BUFFER_LIMIT,
        persist: str = "60",
        connect_timeout: float = 10.0,
        backoff_max: float = BACKOFF_MAX_S,
        loop: HostLoop | None = None,
    ) -> None:
        self.host = host
        self.vm = vm
        self.name = vm.name
        # This side is read-only (True, or why): view only, whatever the agent is.
        self.read_only = bool(read_only)
        self._read_only_why = read_only if isinstance(read_only, str) else "the app is read-only"
        self.takeover_declined = False
        self.buffer_limit = buffer_limit
        self.persist = persist
        self.connect_timeout = connect_timeout
        self.backoff_max = backoff_max
        self.last_used = time.monotonic()
        self.sessions = 0  # ssh sessions started (tests)
        self.agent_read_only: str | None = None  # the agent's reason, when it is read-only
        self._loop = loop or host_loop()
        self._lock = threading.Lock()  # the session loop's own state (closed, task, queued)
        # The recent output, the status and the panes that get them: as a local connection's.
        self._fan = Fanout(
            vm.name,
            buffer_limit,
            ConsoleStatus(
                ConnectionState.CONNECTING, f"connecting to {host.name} for {vm.name}'s console…"
            ),
        )
        self._session: AgentSession | None = None
        self._task = None  # concurrent.futures.Future of the session loop
        self._closed = False
        self._queued = 0  # typed bytes on their way
        self._wake: asyncio.Event | None = None  # a held pane has room again
        self._wanted: asyncio.Event | None = None  # a pane attached
        self._inner: asyncio.Task[None] | None = None  # the session now (and its pause)
        self._backoff = BACKOFF_START_S

    # --- the ConsoleConnection API ------------------------------------------------------

    def start(self) -> RemoteConsoleConnection:
        """Start the session loop (once); it keeps a session while a pane is attached."""
        with self._lock:
            if self._closed or self._task is not None:
                return self
            self._task = self._loop.submit(self._run())
        return self

    @property
    def status(self) -> ConsoleStatus:
        return self._fan.status

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def endpoint(self) -> ConsoleEndpoint | None:
        """As ConsoleConnection's: what the agent has open (shown, never opened here)."""
        return self.status.endpoint

    @property
    def discovered(self) -> ConsoleEndpoint | None:
        return self.status.discovered

    def buffer(self) -> bytes:
        return self._fan.buffer()

    def attach(
        self,
        on_data: DataCallback,
        on_status: StatusCallback | None = None,
        *,
        full: Callable[[], bool] | None = None,
    ) -> Subscription:
        subscription = self._fan.attach(on_data, on_status, full)
        self.last_used = time.monotonic()
        self.start()
        self._soon(self._want)  # a new session when the last visit ended the previous one
        return subscription

    def detach(self, token: int) -> None:
        self._fan.detach(token)
        self.last_used = time.monotonic()
        self.resume()
        self._soon(self._end_if_idle)  # no pane shows it: the ssh session ends

    @property
    def ssh_pid(self) -> int | None:
        """The pid of the ssh client of the session now (None: no session)."""
        session = self._session
        proc = session.proc if session is not None else None
        return proc.pid if proc is not None and proc.returncode is None else None

    @property
    def attached(self) -> int:
        return self._fan.attached

    def write(self, data: bytes) -> bool:
        if not data or self.read_only or not self.status.interactive:
            return False
        with self._lock:
            if self._queued + len(data) > OUT_LIMIT:
                return False
            self._queued += len(data)
        try:
            self._loop.submit(self._send_input(data))
        except Exception:  # the host loop is closing
            with self._lock:
                self._queued -= len(data)
            return False
        return True

    def resume(self) -> None:
        self._soon(lambda: self._wake.set() if self._wake is not None else None)

    def _soon(self, callback: Callable[[], object]) -> None:
        """CALLBACK on the host loop."""
        with contextlib.suppress(RuntimeError):  # the loop is closing
            self._loop.loop.call_soon_threadsafe(callback)

    def confirm_takeover(self) -> bool:
        status = self.status
        if self.read_only or not status.takeover_available or self._session is None:
            return False
        with contextlib.suppress(Exception):
            self._loop.submit(self._send({"type": "takeover"}))
            return True
        return False

    def update_vm(self, vm: VM) -> None:
        if vm.name == self.name:
            self.vm = vm

    def close(self, timeout: float = 2.0) -> None:
        """End the session (ssh by its pid) and drop the subscribers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            task = self._task
        self._soon(self._end_now)
        if task is not None:
            with contextlib.suppress(Exception):
                task.result(timeout)  # ssh ended and reaped
        self._set_status(ConsoleStatus(ConnectionState.CLOSED, "closed"))
        self._fan.clear()

    # --- delivery (on the host loop) ----------------------------------------------------

    def _deliver(self, data: bytes) -> None:
        self._fan.deliver(data)

    def _set_status(self, status: ConsoleStatus) -> None:
        self._fan.set_status(status)

    def _held(self) -> bool:
        return self._fan.held()

    def _from_agent(self, status: ConsoleStatus) -> ConsoleStatus:
        """The agent's status as shown here: the host named; view only when either side is
        read-only (the agent refuses keys and takeovers then anyway)."""
        status = replace(status, text=f"{self.host.name}: {status.text}")
        view_only = (self._read_only_why if self.read_only else None) or self.agent_read_only
        if view_only is None:
            return status
        reason = f"{self.host.name}: {view_only}, view only"
        if status.read_only_reason:
            reason += f" · {status.read_only_reason}"
        state = ConnectionState.READ_ONLY if status.interactive else status.state
        return replace(status, state=state, read_only_reason=reason, takeover_available=False)

    # --- the session loop (on the host loop) --------------------------------------------

    async def _send(self, message: dict) -> None:
        session = self._session
        if session is not None:
            await session.send(message)

    async def _send_input(self, data: bytes) -> None:
        try:
            await self._send(streams.data_message(data, "input"))
        finally:
            with self._lock:
                self._queued -= len(data)

    def _want(self) -> None:
        if self._wanted is not None:
            self._wanted.set()

    def _end_if_idle(self) -> None:
        if not self.attached and self._inner is not None:
            self._inner.cancel()

    def _end_now(self) -> None:
        if self._inner is not None:
            self._inner.cancel()
        self._want()

    async def _run(self) -> None:
        """Sessions (each with its pause after it ends) while a pane is attached, until close."""
        self._wake = asyncio.Event()
        self._wanted = asyncio.Event()
        while not self._closed:
            if not self.attached:
                self._wanted.clear()
                if not self.attached and not self._closed:
                    await self._wanted.wait()
                continue
            self._inner = asyncio.create_task(self._session_then_pause())
            with contextlib.suppress(asyncio.CancelledError):
                await self._inner
            self._inner = None

    async def _session_then_pause(self) -> None:
        if await self._one_session():
            self._backoff = BACKOFF_START_S
        await asyncio.sleep(self._backoff)
        self._backoff = min(self._backoff * 2, self.backoff_max)

    async def _one_session(self) -> bool:
        """One ssh session; True if the agent said anything past its hello."""
        self.sessions += 1
        self._set_status(
            ConsoleStatus(
                ConnectionState.CONNECTING,
                f"connecting to {self.host.name} for {self.name}'s console…",
                read_only_reason="connecting…",
            )
        )
        session = AgentSession(
            self.host,
            "console",
            self.name,
            streams.CONSOLE_AGENT_TYPES,
            connect_timeout=self.connect_timeout,
            persist=self.persist,
        )
        delivered = False
        reason: str | None = None
        self._session = session
        try:
            await session.start()
            self.agent_read_only = session.read_only
            while True:
                while self._held():
                    assert self._wake is not None
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), HOLD_POLL)
                message = await session.read()
                delivered = True
                if message["type"] == "data":
                    self._deliver(streams.message_data(message))
                elif message["type"] == "status":
                    status = codec.decode(ConsoleStatus, message.get("status"), "status")
                    self._set_status(self._from_agent(status))
                else:
                    raise protocol.ProtocolError(f"a second {message['type']} message")
        except SessionEnd as end:
            reason = str(end)
        except (protocol.ProtocolError, codec.CodecError) as exc:
            reason = f"the agent sent {exc}"
        except RecursionError:  # a status's endpoint nested without end
            reason = "the agent sent a status nested too deeply"
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never a dead console without a word
            log.exception("remote console %s failed", self.name)
            reason = f"internal error: {type(exc).__name__}: {exc}"
        finally:
            self._session = None
            await session.end()  # ssh, our child, by its pid
        if not self._closed:
            line = sanitise(reason or "the session ended", 400)
            self._deliver(note(f"{self.host.name}: {line}"))
            self._set_status(
                ConsoleStatus(
                    ConnectionState.RECONNECTING,
                    f"{self.host.name}: {line}; retrying",
                    read_only_reason=line,
                )
            )
        return delivered


def remote_console_factory(
    host: RemoteHost, *, read_only: bool | str = False
) -> Callable[[VM, object], RemoteConsoleConnection]:
    """For ConsoleManager(factory=...): the app's consoles of HOST's VMs."""
    return lambda vm, _settings: RemoteConsoleConnection(host, vm, read_only=read_only)
