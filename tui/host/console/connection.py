"""Console connections: one reader thread per VM, reconnecting by itself.

A :class:`ConsoleConnection` finds the VM's console (:func:`discover_endpoint`), opens it (a
unix socket, a pty, a followed log file or a ``journalctl -f`` process it starts), and delivers
the bytes to whoever is attached, through callbacks called on its own thread. It keeps the
last :data:`BUFFER_LIMIT` bytes, so a screen that attaches later (switching between VMs) starts
from the recent output. Typed bytes are queued by :meth:`ConsoleConnection.write` (never
blocks the caller) and sent by the reader thread.

When the VM restarts, an interactive socket hits EOF: the thread retries the same path every
50 ms (to catch the new boot's first lines: a qemu socket server with ``wait=off`` drops output
while no client is connected), rediscovering now and then, until it is back or the VM turns out
to be stopped. A takeover does not survive a restart: after it, discovery finds the serial on
stdio again, the connection falls back to read-only history and says so.

This module is the state machine (discover, choose, open, pump, reconnect). The bytes come
from :mod:`tui.host.console.sources`, opened by :mod:`~tui.host.console.opening` (which
remembers where each place was left); the recent output and the subscribers are
:mod:`~tui.host.console.fanout`'s; several VMs' connections are kept by
:class:`~tui.host.console.pool.ConsoleManager`. The only processes started are ``journalctl``
followers (a :class:`~tui.host.console.sources.JournalSource`) and the ``cat`` relay that drains
a serial socket (:class:`~tui.host.console.sources.SocketSource`); each is ended by its own pid
on close. No Textual here.
"""

from __future__ import annotations

import logging
import select
import threading
import time
from collections.abc import Callable
from dataclasses import replace

from tui.host import tools
from tui.host.console.discovery import discover_endpoint
from tui.host.console.endpoints import ConsoleEndpoint, EndpointKind
from tui.host.console.fanout import Fanout
from tui.host.console.opening import SourceOpener
from tui.host.console.sources import FILE_POLL, JournalSource, SocketSource, Source
from tui.host.console.status import (
    ConnectionState,
    ConsoleStatus,
    DataCallback,
    StatusCallback,
    Subscription,
    connection_status,
    note,
)
from tui.host.console.takeover import TakeoverError, take_over
from tui.host.console.trust import UntrustedEndpoint, socket_address
from tui.host.console.wakeup import WakePipe
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.host.unixsock import SocketError, connect_unix

log = logging.getLogger(__name__)

BUFFER_LIMIT = 256 * 1024  # recent output kept per connection
OUT_LIMIT = 64 * 1024  # typed bytes queued while the guest does not read
HOLD_POLL = 0.01  # seconds between looks at a subscriber that asked us to hold the reading
FAST_RETRY = 0.05  # seconds between reconnects to a socket that just went away
FAST_WINDOW = 30.0  # how long to retry a vanished socket fast (a VM restart)
RECHECK_READ_ONLY = 10.0  # rediscover while showing read-only history of a running VM
RECHECK_WAITING = 3.0  # rediscover while the VM is not running
RECHECK_TRANSIENT = 0.5  # ... while it is starting or stopping
RECHECK_QMP = 3.0  # ... while QMP does not answer (read-only history meanwhile)


def _key(endpoint: ConsoleEndpoint | None) -> tuple[object, ...]:
    if endpoint is None:
        return ()
    return (endpoint.kind, endpoint.path, endpoint.source, endpoint.interactive)


class ConsoleConnection:
    """One VM's console, kept open (and reopened) by a daemon thread until :meth:`close`."""

    def __init__(
        self,
        vm: VM,
        settings: HostSettings,
        *,
        buffer_limit: int = BUFFER_LIMIT,
        discover: Callable[[VM, HostSettings], ConsoleEndpoint] | None = None,
        takeover: Callable[[VM, HostSettings, ConsoleEndpoint], ConsoleEndpoint] | None = None,
        read_only: bool = False,
    ) -> None:
        self.vm = vm
        self.name = vm.name
        self.settings = settings
        # View only (the app is read-only): nothing typed reaches the guest and the console is
        # never taken over, whatever the UI asks.
        self.read_only = read_only
        # The admin said no to the takeover offer: a later visit shows the history without
        # asking again (t still asks). Kept here because the connection outlives the screen.
        self.takeover_declined = False
        self._discover_fn = discover or (lambda v, s: discover_endpoint(v, s))
        self._takeover_fn = takeover or (lambda v, s, e: take_over(v, s, e))
        looking = ConsoleStatus(ConnectionState.CONNECTING, f"looking for {vm.name}'s console")
        self._fanout = Fanout(vm.name, buffer_limit, looking)
        self._deliver = self._fanout.deliver
        self._held = self._fanout.held
        self._opener = SourceOpener(settings, self._deliver)
        self._lock = threading.Lock()  # close
        self._out_lock = threading.Lock()  # typed bytes
        self._out = bytearray()
        self._wakeup = WakePipe()
        self._wake = self._wakeup.wake
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None
        self._source: Source | None = None
        self._confirmed_pid: int | bool | None = False  # False: no takeover confirmed
        self._took_over_pid: int | None = None
        self._interrupt = False
        self._close_called = False
        self.endpoint: ConsoleEndpoint | None = None  # what is open now
        self.discovered: ConsoleEndpoint | None = None  # the last discovery's answer

    # --- API ----------------------------------------------------------------------------

    def start(self) -> ConsoleConnection:
        if self._thread is None:
            self._thread = threading.Thread(
                target=self._run, name=f"console-{self.name}", daemon=True
            )
            self._thread.start()
        return self

    @property
    def status(self) -> ConsoleStatus:
        return self._fanout.status

    @property
    def buffer_limit(self) -> int:
        return self._fanout.buffer_limit

    @property
    def last_used(self) -> float:
        """When a subscriber last came or went (the pool closes the least recently used)."""
        return self._fanout.last_used

    @last_used.setter
    def last_used(self, when: float) -> None:
        self._fanout.last_used = when

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def buffer(self) -> bytes:
        """The recent output (at most about ``buffer_limit`` bytes)."""
        return self._fanout.buffer()

    def attach(
        self,
        on_data: DataCallback,
        on_status: StatusCallback | None = None,
        *,
        full: Callable[[], bool] | None = None,
    ) -> Subscription:
        """Subscribe. The callbacks run on the connection's thread, after ``history``.

        ``full`` (called on the connection's thread) says the subscriber has more bytes waiting
        than it wants: reading then pauses (typed bytes still go out) until it returns False,
        looked at every :data:`HOLD_POLL` seconds or at once after :meth:`resume`. A subscriber
        that cannot keep up thus slows the source down instead of losing bytes; a real guest's
        serial line is far slower than the emulator, so this holds only a flood faster than it.
        """
        return self._fanout.attach(on_data, on_status, full)

    def detach(self, token: int) -> None:
        self._fanout.detach(token)
        self._wake()  # a hold it had ends with it

    @property
    def attached(self) -> int:
        return self._fanout.attached

    def write(self, data: bytes) -> bool:
        """Queue typed bytes for the guest. False when not interactive now, or when the guest
        has not read the last :data:`OUT_LIMIT` bytes."""
        if not data or self.read_only or not self.status.interactive:
            return False
        with self._out_lock:
            if len(self._out) + len(data) > OUT_LIMIT:
                return False
            self._out += data
        self._wake()
        return True

    def resume(self) -> None:
        """A subscriber that was full has room again: look now rather than at the next poll."""
        self._wake()

    def confirm_takeover(self) -> bool:
        """The admin agreed to the takeover that the status offers. False if none is offered."""
        status = self.status
        endpoint = self.discovered
        if self.read_only or not status.takeover_available or endpoint is None:
            return False
        self._confirmed_pid = endpoint.main_pid
        self._interrupt = True
        self._wake()
        return True

    def update_vm(self, vm: VM) -> None:
        """A newer reading of the same VM (paths, runner); used at the next discovery."""
        if vm.name == self.name:
            self.vm = vm

    def close(self, timeout: float = 2.0) -> None:
        """Stop the thread, end the journalctl it runs (by pid), drop the subscribers."""
        with self._lock:
            if self._close_called:
                return
            self._close_called = True
        self._closing.set()
        self._wake()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
        source = self._source
        if isinstance(source, JournalSource):
            source.close()  # the thread did not get to it (stuck in a callback)
        self._set_status(ConsoleStatus(ConnectionState.CLOSED, "closed"))
        self._fanout.clear()
        if thread is None or not thread.is_alive():
            self._wakeup.close()

    def _set_status(self, status: ConsoleStatus) -> None:
        if status.discovered is None and self.discovered is not None:
            status = replace(status, discovered=self.discovered)
        self._fanout.set_status(status)

    # --- the thread ---------------------------------------------------------------------

    def _sleep(self, seconds: float) -> bool:
        """Wait (interruptibly); True if it is time to stop."""
        if self._closing.is_set():
            return True
        self._wakeup.wait(seconds)
        return self._closing.is_set()

    def _discover(self) -> ConsoleEndpoint:
        try:
            endpoint = self._discover_fn(self.vm, self.settings)
        except Exception as exc:  # discovery promises not to raise; be sure of it
            log.exception("console %s: discovery failed", self.name)
            endpoint = ConsoleEndpoint(
                vm=self.name, kind=EndpointKind.NONE, explanation=f"discovery failed: {exc!r}"
            )
        self.discovered = endpoint
        return endpoint

    def _run(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never a silent dead console
            log.exception("console %s: reader failed", self.name)
            self._set_status(ConsoleStatus(ConnectionState.CLOSED, f"console failed: {exc!r}"))
        finally:
            if self._source is not None:
                self._close_source(self._source)
                self._source = None
            if self._close_called:
                self._wakeup.close()

    def _loop(self) -> None:
        failures = 0
        previous: ConsoleEndpoint | None = None
        while not self._closing.is_set():
            discovered = self._discover()
            target, status_extra = self._choose(discovered)
            if target is None:
                # Nothing to open at all: say why and look again later.
                self._set_status(
                    ConsoleStatus(
                        ConnectionState.WAITING,
                        discovered.explanation,
                        endpoint=discovered,
                        read_only_reason=discovered.explanation,
                    )
                )
                self.endpoint = None
                if self._sleep(RECHECK_TRANSIENT if discovered.transient else RECHECK_WAITING):
                    return
                continue
            source, error = self._open(target)
            if source is None:
                failures += 1
                self._set_status(
                    ConsoleStatus(
                        ConnectionState.WAITING,
                        f"cannot open {target.describe()}: {error}; retrying",
                        endpoint=target,
                        read_only_reason=error,
                    )
                )
                if self._sleep(min(5.0, 0.2 * 2**failures)):
                    return
                continue
            failures = 0
            if previous is not None and _key(previous) != _key(target):
                self._deliver(note(f"now: {target.describe()}"))
            previous = target
            self.endpoint = target
            self._source = source
            self._set_status(self._status_for(target, discovered, **status_extra))
            outcome = self._pump(source, target, discovered)
            self._close_source(source)
            self._source = None
            if (
                outcome == "eof"
                and target.kind is EndpointKind.UNIX
                and target.source != "takeover"
            ):
                if self._fast_reconnect(target):
                    previous = None  # the note was written by _fast_reconnect
                    continue
            elif outcome == "eof":
                why = ""
                if isinstance(source, JournalSource):
                    why = source.error_text()
                self._set_status(
                    ConsoleStatus(
                        ConnectionState.RECONNECTING,
                        f"{target.describe()} went away{': ' + why if why else ''}; reconnecting…",
                        endpoint=target,
                        read_only_reason="reconnecting…",
                    )
                )
                if self._sleep(0.2 if target.interactive else 2.0):
                    return

    def _choose(self, discovered: ConsoleEndpoint) -> tuple[ConsoleEndpoint | None, dict]:
        """What to open for a discovery's answer (maybe doing a confirmed takeover)."""
        extra: dict = {}
        if discovered.kind is EndpointKind.TAKEOVER:
            confirmed = self._confirmed_pid
            if confirmed is not False and confirmed == discovered.main_pid:
                self._confirmed_pid = False
                self._set_status(
                    ConsoleStatus(
                        ConnectionState.CONNECTING,
                        f"taking over the serial console of {self.name}…",
                        endpoint=discovered,
                        read_only_reason="taking over…",
                    )
                )
                try:
                    done = self._takeover_fn(self.vm, self.settings, discovered)
                except Exception as exc:  # TakeoverError, or a bug: never a dead console
                    if not isinstance(exc, TakeoverError):
                        log.exception("console %s: takeover failed", self.name)
                    self._deliver(note(f"takeover failed: {exc}"))
                    extra["error"] = f"takeover failed: {exc}"
                else:
                    self._took_over_pid = done.main_pid
                    if done.transcript:
                        self._opener.replayed(done.transcript)
                    self._deliver(note(f"took over the serial console: {done.path}"))
                    return done, extra
            elif self._took_over_pid is not None and discovered.main_pid != self._took_over_pid:
                extra["takeover_ended"] = True
            return discovered.fallback, extra
        if discovered.kind is EndpointKind.NONE:
            return discovered.fallback, extra
        return discovered, extra

    def _status_for(
        self,
        target: ConsoleEndpoint,
        discovered: ConsoleEndpoint,
        error: str = "",
        takeover_ended: bool = False,
    ) -> ConsoleStatus:
        return connection_status(
            self.name, self.read_only, target, discovered, error, takeover_ended
        )

    def _open(self, target: ConsoleEndpoint) -> tuple[Source | None, str]:
        source, error = self._opener.open(self.vm, target)
        if source is not None and target.kind is EndpointKind.UNIX and target.source == "takeover":
            self._took_over_pid = target.main_pid  # a restart will end the takeover
        return source, error

    def _close_source(self, source: Source) -> None:
        self._opener.close(source)

    def _pump(self, source: Source, target: ConsoleEndpoint, discovered: ConsoleEndpoint) -> str:
        """Move bytes until EOF ("eof"), a change of endpoint ("changed"), or close."""
        self._interrupt = False
        with self._out_lock:
            self._out.clear()  # keys typed for an earlier connection are not for this one
        fd = source.fileno()
        recheck = None
        if not source.interactive:
            recheck = time.monotonic() + _recheck_after(discovered)
        while not self._closing.is_set():
            if self._interrupt:
                return "changed"
            with self._out_lock:
                pending = bool(self._out)
            held = self._held()
            wake_fd = self._wakeup.fd
            readers = [wake_fd] if fd is None or held else [wake_fd, fd]
            wfd = source.write_fileno()
            writers = [wfd] if pending and wfd is not None and source.interactive else []
            timeout = HOLD_POLL if held else FILE_POLL if fd is None else 1.0
            if recheck is not None:
                timeout = max(0.0, min(timeout, recheck - time.monotonic()))
            try:
                readable, writable, _ = select.select(readers, writers, [], timeout)
            except InterruptedError:
                continue
            if wake_fd in readable:
                self._wakeup.drain()
            if writable:
                with self._out_lock:
                    sent = source.write(bytes(self._out))
                    del self._out[:sent]
            if (fd is None and not held) or (fd is not None and fd in readable):
                data = source.read()
                if data is None:
                    return "eof"
                self._deliver(data)
            if recheck is not None and time.monotonic() >= recheck:
                again = self._discover()
                if (
                    _key(_effective(again)) != _key(target)
                    or again.kind != discovered.kind
                    or again.main_pid != discovered.main_pid  # restarted
                ):
                    return "changed"
                recheck = time.monotonic() + _recheck_after(again)
        return "closed"

    def _fast_reconnect(self, target: ConsoleEndpoint) -> bool:
        """The socket went away (the VM is restarting?): retry it quickly so the new boot's
        first lines are not lost. True when connected again (the pump goes on)."""
        assert target.path
        self._set_status(
            ConsoleStatus(
                ConnectionState.RECONNECTING,
                f"{self.name}'s console went away: reconnecting to {target.path}…",
                endpoint=target,
                read_only_reason="reconnecting…",
            )
        )
        self._deliver(note(f"{self.name}'s console closed; waiting for it to come back"))
        deadline = time.monotonic() + FAST_WINDOW
        next_check = time.monotonic() + 1.0
        while not self._closing.is_set() and time.monotonic() < deadline:
            try:
                with socket_address(self.vm, target.path) as address:
                    sock = connect_unix(address, time.monotonic() + 1.0)
            except (SocketError, TimeoutError, OSError, UntrustedEndpoint):
                sock = None
            if sock is not None:
                self._deliver(note(f"reconnected to {target.path}"))
                source = SocketSource(sock, tools.find("cat"))
                self._source = source
                discovered = self.discovered or target
                self._set_status(self._status_for(target, discovered))
                outcome = self._pump(source, target, discovered)
                self._close_source(source)
                self._source = None
                if outcome != "eof":
                    return True
                self._deliver(note(f"{self.name}'s console closed; waiting for it to come back"))
                deadline = time.monotonic() + FAST_WINDOW
                continue
            if time.monotonic() >= next_check:
                again = self._discover()
                next_check = time.monotonic() + 1.0
                if not again.transient and _key(again) != _key(target):
                    return False  # stopped for good, or the console moved: rediscover
            if self._sleep(FAST_RETRY):
                return True
        return False


def _recheck_after(discovered: ConsoleEndpoint) -> float:
    if discovered.kind is not EndpointKind.NONE:
        return RECHECK_QMP if discovered.transient else RECHECK_READ_ONLY
    return RECHECK_TRANSIENT if discovered.transient else RECHECK_WAITING


def _effective(endpoint: ConsoleEndpoint) -> ConsoleEndpoint | None:
    """What a connection shows for a discovery's answer, before any takeover."""
    if endpoint.kind in (EndpointKind.TAKEOVER, EndpointKind.NONE):
        return endpoint.fallback
    return endpoint


__all__ = [
    "BUFFER_LIMIT",
    "ConnectionState",
    "ConsoleConnection",
    "ConsoleStatus",
    "Subscription",
    "note",
]
