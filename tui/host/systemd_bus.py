"""systemd over D-Bus: a table of our units that systemd's own signals keep up to date.

``UnitWatch`` is a ``SystemdClient`` (tui.host.systemd) whose answers come from a table, so a
poll asks the manager nothing. On the host loop it connects (``[host] systemd_bus``), asks for
the signals, ``Subscribe``s, then asks once:

- ``ListUnitsByPatterns`` for the loaded units of ours (it lists, it never loads);
- ``GetAll`` of org.freedesktop.systemd1.Service (and ``ActiveEnterTimestamp``) for the loaded
  units whose words are not enough (``needs_show``: the main units, helpers not at rest).

Then it follows ``PropertiesChanged`` (systemd sends every value we use in them, except
ControlGroup, asked with one ``Get`` when a unit starts), ``UnitNew``/``UnitRemoved`` (a unit
loaded or unloaded; a new one is looked up with ``ListUnitsByPatterns`` of its name only, never
through its object, which would load it again if it were just unloaded) and ``Reloading``
(after a daemon-reload everything is asked again). A unit not in the table is not loaded: it
is inactive/dead with no restarts, and nothing is asked about it.

Everything in a reply or signal is checked: types (a wrong one drops that value), unit names
and object paths (ours, well formed), words (short, printable), sizes (``tui.host.dbus``).
When the bus cannot be reached, or goes away, the calls are answered by ``Systemctl`` instead,
and ``note`` says why in one line; the watch tries the bus again every ``retry`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from jeepney import HeaderFields, Message

from tui.host.dbus import BusError, CallError, Connection, Endpoint, method
from tui.host.hostloop import HostLoop, host_loop
from tui.host.model import UnitState
from tui.host.settings import HostSettings
from tui.host.systemd import PATTERNS, Systemctl, SystemdClient, SystemdError, needs_show
from tui.host.systemd_values import (
    MAX_UNITS,
    apply_properties,
    listed_units,
    object_path,
    unit_name,
)

NAME = "org.freedesktop.systemd1"
ROOT = "/org/freedesktop/systemd1"
UNIT_PREFIX = ROOT + "/unit/"
MANAGER = "org.freedesktop.systemd1.Manager"
UNIT = "org.freedesktop.systemd1.Unit"
SERVICE = "org.freedesktop.systemd1.Service"
PROPS = "org.freedesktop.DBus.Properties"
DBUS = "org.freedesktop.DBus"

# The signals we follow, as match rules for the bus daemon (a direct connection gets them all).
RULES = (
    f"type='signal',sender='{NAME}',path='{ROOT}',interface='{MANAGER}'",
    f"type='signal',sender='{NAME}',interface='{PROPS}',member='PropertiesChanged',"
    f"path_namespace='{ROOT}/unit'",
    f"type='signal',sender='{DBUS}',interface='{DBUS}',member='NameOwnerChanged',arg0='{NAME}'",
)

PARALLEL = 16  # GetAll calls in flight at once
RETRY_SECONDS = 15.0
# Properties that do not say anything about a unit at rest: a oneshot done, or stopped.
AT_REST = ("inactive", "failed")


@dataclass
class _Entry:
    path: str
    state: UnitState
    cgroup_of: int | None = None  # the main pid whose ControlGroup was asked


class UnitWatch:
    """A ``SystemdClient`` answering from a table that systemd's signals keep current; while
    the bus is not there, ``Systemctl`` answers and ``note`` says why."""

    def __init__(
        self,
        settings: HostSettings,
        endpoint: Endpoint,
        *,
        loop: HostLoop | None = None,
        retry: float = RETRY_SECONDS,
        patterns: Sequence[str] = PATTERNS,
    ) -> None:
        self.settings = settings
        self.endpoint = endpoint
        self.retry = retry
        self.patterns = tuple(patterns)
        self.fallback: SystemdClient = Systemctl(settings)
        self.note: str | None = None  # why systemctl answers instead (None: the bus does)
        self.calls = 0  # calls made to systemd (not to the bus daemon)
        self.cgroup_asks = 0  # of those, ControlGroup lookups after a signal of a new main pid
        self.syncs = 0  # full reads of the table (the first, and after reloads/reconnects)
        self._lock = threading.Lock()
        self._units: dict[str, _Entry] = {}
        self._names: dict[str, str] = {}  # object path -> name
        self._live = False  # the table follows the manager
        self._tried = threading.Event()  # the first connection succeeded or failed
        self._owner: str | None = None  # systemd's unique name on the bus
        self._conn: Connection | None = None
        self._why: str | None = None  # why we ended the connection ourselves
        self._asking: set[str] = set()  # units with a Get/lookup in flight
        self._loop = loop or host_loop()
        self._closing = False
        self._task = self._loop.submit(self._run())

    # --- SystemdClient (any thread) ------------------------------------------------------------

    def _follows(self) -> bool:
        if not self._tried.is_set():
            self._tried.wait(self.settings.timeout)
        return self._live

    def list_units(self, patterns: Sequence[str]) -> dict[str, UnitState]:
        if not self._follows():
            return self.fallback.list_units(patterns)
        with self._lock:
            return {
                name: copy.copy(entry.state)
                for name, entry in self._units.items()
                if any(fnmatchcase(name, p) for p in patterns)
            }

    def show(self, units: Sequence[str]) -> dict[str, UnitState]:
        if not self._follows():
            return self.fallback.show(units)
        with self._lock:
            return {n: copy.copy(self._units[n].state) for n in units if n in self._units}

    def close(self) -> None:
        """Stop following (the connection closes). From any thread but the loop's, the
        cancellation is let run to its end, so nothing is left pending at exit."""
        self._closing = True
        self._task.cancel()
        if not self._loop.in_loop_thread():
            with contextlib.suppress(Exception):
                self._loop.run(_settle(), 1.0)

    # --- on the host loop ---------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            self._why = None
            was_live = self._live
            try:
                reason = await self._session()
            except BusError as exc:
                reason = str(exc)
            except SystemdError as exc:
                reason = str(exc)
            except Exception as exc:  # a bug of ours must not end the monitor: systemctl answers
                reason = f"internal error: {type(exc).__name__}: {exc}"
            self._down(reason)
            # A watch that ran is tried again at once (systemd re-executed, a reload failed),
            # then every RETRY seconds.
            await asyncio.sleep(0 if was_live else self.retry)

    def _down(self, reason: str) -> None:
        with self._lock:
            self._live = False
            self._units.clear()
            self._names.clear()
        self._asking.clear()
        self.note = (
            f"systemd over D-Bus: {' '.join(reason.split())[:200]}; asking systemctl instead"
        )
        self._tried.set()

    async def _session(self) -> str:
        timeout = self.settings.timeout
        conn = await Connection.open(self.endpoint, timeout, on_signal=self._on_signal)
        self._conn = conn
        try:
            if self.endpoint.bus:
                await conn.add_matches(RULES, timeout)
                try:
                    reply = await conn.call(
                        method("/org/freedesktop/DBus", DBUS, "GetNameOwner", "s", (NAME,), DBUS),
                        timeout,
                    )
                except CallError:
                    raise BusError(f"systemd is not on the bus at {self.endpoint.path}") from None
                self._owner = reply[0] if reply and isinstance(reply[0], str) else None
            await self._ask(conn, self._manager("Subscribe"), timeout)
            await self._sync(conn)
            self.note = None
            self._tried.set()
            ended = await conn.closed
            return self._why or ended or "the connection closed"
        finally:
            conn.close()
            self._conn = None

    async def _ask(self, conn: Connection, message: Message, timeout: float) -> tuple[Any, ...]:
        """Every call to systemd goes through here (``calls`` counts them: a poll makes none)."""
        self.calls += 1
        return await conn.call(message, timeout)

    def _manager(self, member: str, signature: str | None = None, body: tuple = ()) -> Message:
        return method(ROOT, MANAGER, member, signature, body, NAME if self.endpoint.bus else None)

    def _on(
        self, path: str, interface: str, member: str, signature: str | None = None, body: tuple = ()
    ) -> Message:
        return method(path, interface, member, signature, body, NAME if self.endpoint.bus else None)

    async def _list(
        self, conn: Connection, patterns: Sequence[str]
    ) -> dict[str, tuple[str, UnitState]]:
        body = await self._ask(
            conn,
            self._manager("ListUnitsByPatterns", "asas", ([], list(patterns))),
            self.settings.timeout,
        )
        return listed_units(body, self.patterns)

    async def _details(self, conn: Connection, name: str, path: str) -> None:
        """GetAll of the Service interface and ActiveEnterTimestamp of a loaded unit."""
        timeout = self.settings.timeout
        asks = [
            self._ask(
                conn, self._on(path, PROPS, "Get", "ss", (UNIT, "ActiveEnterTimestamp")), timeout
            )
        ]
        if name.endswith(".service"):
            asks.append(self._ask(conn, self._on(path, PROPS, "GetAll", "s", (SERVICE,)), timeout))
        replies = await asyncio.gather(*asks, return_exceptions=True)
        with self._lock:
            entry = self._units.get(name)
            if entry is None:
                return
            for reply in replies:
                if isinstance(reply, CallError):
                    entry.state.error = f"no details from systemd: {reply}"
                elif isinstance(reply, BaseException):
                    raise reply
                elif len(reply) == 1 and isinstance(reply[0], dict):
                    apply_properties(entry.state, reply[0])
                    entry.cgroup_of = entry.state.main_pid  # asked with the rest
                elif len(reply) == 1:
                    apply_properties(entry.state, {"ActiveEnterTimestamp": reply[0]})

    async def _sync(self, conn: Connection) -> None:
        """Read the whole table: the listing, then details where the words are not enough."""
        listed = await self._list(conn, self.patterns)
        with self._lock:
            units: dict[str, _Entry] = {}
            for name, (path, state) in listed.items():
                old = self._units.get(name)
                if old is not None and old.path == path:  # a resync: keep what is known
                    old.state.load, old.state.active = state.load, state.active
                    old.state.sub = state.sub
                    state = old.state
                units[name] = _Entry(path, state)
            self._units = units
            self._names = {entry.path: name for name, entry in self._units.items()}
            self._live = True
        wanted = [
            (name, path)
            for name, (path, state) in listed.items()
            if needs_show(state, main=name.startswith("microvm@"))
        ]
        gate = asyncio.Semaphore(PARALLEL)

        async def one(name: str, path: str) -> None:
            async with gate:
                await self._details(conn, name, path)

        await asyncio.gather(*(one(n, p) for n, p in wanted))
        self.syncs += 1

    # --- signals (on the loop, in the order they came) -----------------------------------------

    def _on_signal(self, message: Message) -> None:
        fields = message.header.fields
        if self.endpoint.bus and fields.get(HeaderFields.sender) not in (self._owner, DBUS):
            return  # only systemd's own signals (and the bus daemon's, about systemd's name)
        member = fields.get(HeaderFields.member)
        interface = fields.get(HeaderFields.interface)
        body = message.body
        manager = interface == MANAGER and fields.get(HeaderFields.path) == ROOT
        if interface == PROPS and member == "PropertiesChanged":
            self._changed(fields.get(HeaderFields.path), body)
        elif manager and member == "UnitNew" and len(body) == 2:
            self._unit_new(body[0], body[1])
        elif manager and member == "UnitRemoved" and len(body) == 2:
            self._unit_removed(body[0])
        elif manager and member == "Reloading" and body == (False,):
            self._spawn(self._resync())
        elif member == "NameOwnerChanged" and fields.get(HeaderFields.sender) == DBUS:
            self._restart("systemd left the bus or came back (a re-exec)")

    def _changed(self, path: Any, body: Any) -> None:
        if not (isinstance(body, tuple) and len(body) == 3 and body[0] in (UNIT, SERVICE)):
            return
        with self._lock:
            name = self._names.get(path) if isinstance(path, str) else None
            entry = self._units.get(name) if name else None
            if entry is None:
                return
            apply_properties(entry.state, body[1])
            state = entry.state
            if state.active in AT_REST:
                state.control_group = None
                entry.cgroup_of = None
                return
            pid = state.main_pid
            if pid is None or pid == entry.cgroup_of or not name.endswith(".service"):
                return
            entry.cgroup_of = pid
        # A new main process: its unit's cgroup (not in the signals) is asked once, while the
        # unit is busy (a unit with a job or processes is not unloaded under us).
        if name not in self._asking:
            self._asking.add(name)
            self._spawn(self._control_group(name, entry.path))

    async def _control_group(self, name: str, path: str) -> None:
        conn = self._conn
        try:
            if conn is None:
                return
            with self._lock:
                entry = self._units.get(name)
                if entry is None or entry.state.active in AT_REST:
                    return
            self.cgroup_asks += 1
            with contextlib.suppress(CallError):
                reply = await self._ask(
                    conn,
                    self._on(path, PROPS, "Get", "ss", (SERVICE, "ControlGroup")),
                    self.settings.timeout,
                )
                with self._lock:
                    entry = self._units.get(name)
                    if entry is not None and len(reply) == 1 and entry.state.active not in AT_REST:
                        apply_properties(entry.state, {"ControlGroup": reply[0]})
        finally:
            self._asking.discard(name)

    def _unit_new(self, raw_name: Any, raw_path: Any) -> None:
        name, path = unit_name(raw_name, self.patterns), object_path(raw_path)
        if name is None or path is None:
            return
        with self._lock:
            if name in self._units:
                return
            if len(self._units) >= MAX_UNITS:
                self._restart(f"more than {MAX_UNITS} units of ours")
                return
            # Just loaded: it has not run in this load (inactive/dead, no restarts) until its
            # PropertiesChanged says otherwise; its load state is asked by name below.
            self._units[name] = _Entry(
                path, UnitState(name, active="inactive", sub="dead", restarts=0)
            )
            self._names[path] = name
        self._spawn(self._lookup(name))

    async def _lookup(self, name: str) -> None:
        """A new unit's load/active/sub words by ListUnitsByPatterns of its name (lists,
        never loads: gone again by now, it is simply not listed)."""
        conn = self._conn
        if conn is None:
            return
        listed = await self._list(conn, [name])
        with self._lock:
            entry = self._units.get(name)
            found = listed.get(name)
            if entry is not None and found is not None and found[0] == entry.path:
                entry.state.load = found[1].load or entry.state.load

    def _unit_removed(self, raw_name: Any) -> None:
        name = unit_name(raw_name, self.patterns)
        with self._lock:
            entry = self._units.pop(name, None) if name else None
            if entry is not None:
                self._names.pop(entry.path, None)

    async def _resync(self) -> None:
        conn = self._conn
        if conn is not None:
            await self._sync(conn)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            # A lookup that failed leaves the table unsure: start over (systemctl meanwhile).
            self._restart(str(exc) if isinstance(exc, BusError) else f"{type(exc).__name__}")

    def _restart(self, reason: str) -> None:
        """End the connection (the watch connects again at once) for REASON."""
        if self._conn is not None and self._why is None:
            self._why = reason
            self._conn.close()


async def _settle() -> None:
    for _ in range(5):  # the watch's task, then its connection's reader, end
        await asyncio.sleep(0)


def systemd_client(settings: HostSettings, *, loop: HostLoop | None = None) -> SystemdClient:
    """The client the monitor keeps: a ``UnitWatch`` on the bus SETTINGS name, or ``Systemctl``
    when they say ``systemd_bus = "systemctl"`` (or no bus can be named)."""
    found = settings.bus_socket()
    if found is None:
        return Systemctl(settings)
    path, bus = found
    return UnitWatch(settings, Endpoint(path, bus), loop=loop)
