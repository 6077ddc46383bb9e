"""The links of a network namespace (another one, or our own), through pyroute2 on the host
loop: followed for the monitor, dumped once for the host checks, and a leftover deleted.

``NamespaceLinks`` keeps one rtnetlink socket in the namespace for as long as it is used.
The socket is made in the namespace by a short-lived thread of ours that enters it (pyroute2's
``setns``: setns(2) moves only the calling thread, and a socket keeps the namespace it was made
in), once per namespace, ≈ 0.3 ms. pyroute2's own ``create_socket`` forks the whole process for
that: a child of a process with many threads (the app, a test run) sometimes did not answer
within its 2 s under load, and the read failed "no answer within 5.0 s". An
``AsyncIPRoute`` on the host loop (``hostloop``) then speaks rtnetlink on that socket; no poll
enters a namespace again.

What a poll asks follows from what pyroute2's decoding costs: a link message carries ≈ 40
attributes, and a full RTM_GETLINK dump on a held socket costs ≈ 10 ms of CPU a poll for 14
links (``bench/links.py``; the hand-written parser this replaced: ≈ 1 ms). So the links' names,
kinds and states are dumped once and then kept up to date by the kernel's link notifications
(RTMGRP_LINK: every link added, changed or removed), and a poll asks for the counters only
(RTM_GETSTATS with IFLA_STATS_LINK_64, one small message a link): ≈ 1.9 ms for 14 links, the
hop to the host loop and back included. Notifications are full link messages, so applying them
in order after the dump converges on the kernel's state whatever raced the dump. Anything that
goes wrong (a notification overflow, an error reply, a timeout) drops the socket and the kept
state; the next read starts again with a full dump.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import socket
import threading
from collections.abc import Callable
from typing import Any, Literal

from tui.host.hostloop import HostLoop, HostLoopError, host_loop
from tui.host.links import Link, LinkReadError

MAX_DUMP_ATTEMPTS = 3  # a dump that raced a change of the links (NLM_F_DUMP_INTR) is asked again
RCVBUF = 1 << 20  # room for a burst of link notifications (pyroute2's own default)
STATS_LINK_64 = 1  # RTM_GETSTATS filter_mask bit of IFLA_STATS_LINK_64 (1 << (1 - 1))


@dataclasses.dataclass
class Counts:
    """What a ``NamespaceLinks`` did, for tests and the bench."""

    full_dumps: int = 0  # sockets opened and the links dumped in full
    interrupted: int = 0  # dump attempts the kernel flagged NLM_F_DUMP_INTR (asked again)
    notifications: int = 0  # link notifications applied


_import_lock = threading.Lock()


def import_pyroute2() -> None:
    """Import pyroute2, one thread at a time: its modules import each other, and two threads
    importing it at once can meet a half-made module ("partially initialized module")."""
    with _import_lock:
        import pyroute2  # noqa: F401  (its __init__ imports all of it: 0.15-0.6 s)


class DumpInterrupted(Exception):
    """The kernel flagged every attempt of a dump as inconsistent (NLM_F_DUMP_INTR)."""


def _attrs(msg: Any) -> dict[str, Any]:
    """A decoded message's attributes by name, the first of each (values decoded on use)."""
    found: dict[str, Any] = {}
    for slot in msg["attrs"]:
        found.setdefault(slot.name, slot)
    return found


def _value(attrs: dict[str, Any], name: str) -> Any:
    slot = attrs.get(name)
    return None if slot is None else slot.get_value()


def link_from_message(msg: Any) -> tuple[int, Link, int | None]:
    """One pyroute2 ifinfmsg: (ifindex, Link with its counters, master ifindex)."""
    attrs = _attrs(msg)
    info = _value(attrs, "IFLA_LINKINFO")
    stats = _value(attrs, "IFLA_STATS64") or _value(attrs, "IFLA_STATS")
    carrier = _value(attrs, "IFLA_CARRIER")
    link = Link(
        name=_value(attrs, "IFLA_IFNAME") or "",
        kind=info.get_attr("IFLA_INFO_KIND") if info is not None else None,
        oper_state=_value(attrs, "IFLA_OPERSTATE"),
        carrier=None if carrier is None else bool(carrier),
        mac=_value(attrs, "IFLA_ADDRESS"),
        rx_bytes=stats["rx_bytes"] if stats is not None else None,
        tx_bytes=stats["tx_bytes"] if stats is not None else None,
    )
    return msg["index"], link, _value(attrs, "IFLA_MASTER") or None


def links_by_name(entries: dict[int, tuple[Link, int | None]]) -> dict[str, Link]:
    """Links by name, each master's index resolved to its name."""
    links: dict[str, Link] = {}
    for link, master in entries.values():
        master_entry = entries.get(master) if master else None
        link.master = master_entry[0].name if master_entry is not None else None
        links[link.name] = link
    return links


def _interrupted(messages: list[Any], flag: int) -> bool:
    return any(msg["header"]["flags"] & flag for msg in messages)


class _Session:
    """The socket, its AsyncIPRoute and the links kept from the dump and the notifications.
    Lives on the host loop: every method runs there."""

    def __init__(self, sock: socket.socket, follow: bool, counts: Counts) -> None:
        from pyroute2 import AsyncIPRoute

        self.sock = sock
        self.follow = follow
        self.counts = counts
        self.ipr = AsyncIPRoute(use_socket=sock)  # made on the loop: its socket state is per thread
        self.entries: dict[int, tuple[Link, int | None]] = {}
        self.listener: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None

    async def start(self) -> dict[str, Link]:
        """Subscribe to link notifications (when following), dump the links, then follow.
        The first read: every link with its counters."""
        from pyroute2.netlink import NLM_F_DUMP_INTR
        from pyroute2.netlink.rtnl import RTMGRP_LINK

        if self.follow:
            await self.ipr.bind(groups=RTMGRP_LINK)
        for _attempt in range(MAX_DUMP_ATTEMPTS):
            messages = [msg async for msg in await self.ipr.link("dump")]
            if not _interrupted(messages, NLM_F_DUMP_INTR):
                break
            self.counts.interrupted += 1
        else:
            raise DumpInterrupted
        self.entries = {}
        for msg in messages:
            index, link, master = link_from_message(msg)
            self.entries[index] = (link, master)
        if self.follow:
            # Started after the dump: notifications that came meanwhile wait in pyroute2's
            # queue and are applied after it, in order.
            self.listener = asyncio.get_running_loop().create_task(self._listen())
        return links_by_name(
            {i: (dataclasses.replace(link), master) for i, (link, master) in self.entries.items()}
        )

    async def _listen(self) -> None:
        from pyroute2.netlink.rtnl import RTM_DELLINK, RTM_NEWLINK

        try:
            while True:
                async for msg in self.ipr.get():
                    header = msg["header"]
                    # Only the kernel's notifications (sequence 0) about links themselves
                    # (AF_UNSPEC: AF_BRIDGE ones are about bridge ports, partial).
                    if header["sequence_number"] != 0 or msg.get("family") != socket.AF_UNSPEC:
                        continue
                    self.counts.notifications += 1
                    if header["type"] == RTM_NEWLINK:
                        index, link, master = link_from_message(msg)
                        self.entries[index] = (link, master)
                    elif header["type"] == RTM_DELLINK:
                        self.entries.pop(msg["index"], None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # e.g. ENOBUFS: notifications were lost; start afresh
            self.failure = exc

    async def counters(self) -> dict[str, Link]:
        """The links as followed, with their counters now (one RTM_GETSTATS dump)."""
        from pyroute2.netlink import NLM_F_DUMP_INTR

        if self.failure is not None:
            raise self.failure
        if self.listener is None or self.listener.done():
            raise OSError("the link notifications stopped")
        for _attempt in range(MAX_DUMP_ATTEMPTS):
            messages = [m async for m in await self.ipr.stats("dump", filter_mask=STATS_LINK_64)]
            if not _interrupted(messages, NLM_F_DUMP_INTR):
                break
            self.counts.interrupted += 1
        else:
            raise DumpInterrupted
        if self.failure is not None:  # the listener ran while we waited (same loop)
            raise self.failure
        current: dict[int, tuple[Link, int | None]] = {}
        for msg in messages:
            entry = self.entries.get(msg["ifindex"])
            if entry is None:  # its notification has not come in yet: next poll
                continue
            link, master = entry
            stats = msg.get_attr("IFLA_STATS_LINK_64")
            current[msg["ifindex"]] = (
                Link(
                    name=link.name,
                    kind=link.kind,
                    oper_state=link.oper_state,
                    carrier=link.carrier,
                    mac=link.mac,
                    rx_bytes=stats["rx_bytes"] if stats is not None else None,
                    tx_bytes=stats["tx_bytes"] if stats is not None else None,
                ),
                master,
            )
        # A link in the counters' dump but gone from the notifications is gone, and the other
        # way round: the newer of the two says so.
        return links_by_name(current)

    async def close(self) -> None:
        if self.listener is not None:
            self.listener.cancel()
            with contextlib.suppress(BaseException):
                await self.listener
        with contextlib.suppress(Exception):
            self.ipr.close()
        self.sock.close()


def open_socket(netns: str | None, timeout: float) -> socket.socket:
    """An rtnetlink socket in NETNS (None: our own namespace). Raises LinkReadError when
    pyroute2 is broken, OSError when the namespace cannot be entered, TimeoutError when the
    thread entering it did not finish within TIMEOUT."""
    try:
        import_pyroute2()
        from pyroute2.netlink import NETLINK_ROUTE
    except ImportError as exc:  # pragma: no cover - a broken install
        raise LinkReadError(f"pyroute2 is not importable: {exc}") from exc
    if not netns:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_ROUTE)
    return _NamespacedSocket(netns, NETLINK_ROUTE).make(timeout)


class _NamespacedSocket:
    """A netlink socket made by a thread of its own that entered NETNS and then ends there
    (it is never used again, so it is never moved back)."""

    def __init__(self, netns: str, protocol: int) -> None:
        self.netns = netns
        self.protocol = protocol
        self._lock = threading.Lock()
        self._result: socket.socket | BaseException | None = None
        self._abandoned = False

    def make(self, timeout: float) -> socket.socket:
        thread = threading.Thread(target=self._enter_and_make, name="netns-socket", daemon=True)
        thread.start()
        thread.join(timeout)
        with self._lock:
            result = self._result
            if result is None:  # the thread closes what it makes after this
                self._abandoned = True
                raise TimeoutError(f"entering network namespace '{self.netns}'")
        if isinstance(result, BaseException):
            raise result
        return result

    def _enter_and_make(self) -> None:
        from pyroute2.netns import NETNS_RUN_DIR, setns

        result: socket.socket | BaseException
        try:
            # A name is one under /run/netns (ip-netns); a path is used as it is. The fd is
            # ours, so pyroute2 never creates a namespace (its default for a name would);
            # O_NONBLOCK: a FIFO at the path fails setns at once instead of blocking the open.
            path = self.netns if "/" in self.netns else f"{NETNS_RUN_DIR}/{self.netns}"
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
            try:
                setns(fd, flags=0, fork=False)
            finally:
                os.close(fd)
            result = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, self.protocol)
        except BaseException as exc:  # handed to the caller
            result = exc
        with self._lock:
            if self._abandoned and isinstance(result, socket.socket):
                result.close()
            self._result = result


def read_all_links(netns: str | None, *, timeout: float = 5.0) -> dict[str, Link]:
    """Every link of NETNS (None: our own namespace) with its kind, state and carrier, by one
    dump (the host checks). Raises LinkReadError with the reason."""
    return NamespaceLinks(netns, timeout=timeout, follow=False).read()


Deletion = Literal["deleted", "gone", "refused"]


def delete_link(
    netns: str | None, name: str, allowed: Callable[[Link], bool], *, timeout: float = 5.0
) -> Deletion:
    """Delete the link NAME of NETNS (None: ours) if ``allowed`` says so of the link as it is
    just before: "refused" when it does not, "gone" when there is no such link. Raises
    LinkReadError with the reason."""
    what = f"delete {name}"
    try:
        sock = open_socket(netns, timeout)
    except LinkReadError:
        raise
    except Exception as exc:
        raise LinkReadError(_reason(netns, timeout, exc, what)) from exc
    try:
        coro = asyncio.wait_for(_delete(sock, name, allowed), timeout)
        return host_loop().run(coro, timeout + 1.0)
    except (Exception, asyncio.CancelledError) as exc:  # the loop closing cancels it
        raise LinkReadError(_reason(netns, timeout, exc, what)) from exc
    finally:
        sock.close()


async def _delete(sock: socket.socket, name: str, allowed: Callable[[Link], bool]) -> Deletion:
    from pyroute2 import AsyncIPRoute

    ipr = AsyncIPRoute(use_socket=sock)  # made on the loop: its socket state is per thread
    try:
        found = await ipr.link_lookup(ifname=name)
        if not found:
            return "gone"
        (msg,) = await ipr.link("get", index=found[0])
        _index, link, _master = link_from_message(msg)
        if not allowed(link):
            return "refused"
        await ipr.link("del", index=found[0])
        return "deleted"
    finally:
        ipr.close()


def _reason(netns: str | None, timeout: float, exc: BaseException, what: str) -> str:
    """One line for the admin: why WHAT failed in NETNS."""
    where = f"cannot {what} in netns '{netns}'" if netns else f"cannot {what} here"
    if isinstance(exc, FileNotFoundError) and netns:
        return f"network namespace '{netns}' does not exist"
    if isinstance(exc, PermissionError):
        if netns:
            return f"no permission to enter network namespace '{netns}'"
        return f"{where}: permission denied"
    if isinstance(exc, DumpInterrupted):
        return f"{where}: the links kept changing"
    if isinstance(exc, TimeoutError):  # asyncio's and the host loop's
        return f"{where}: no answer within {timeout:.1f} s"
    code = getattr(exc, "code", None)  # pyroute2's NetlinkError: an errno in ``code``
    if isinstance(code, int) and code > 0 and not isinstance(exc, OSError):
        return f"{where}: {os.strerror(code)}"
    if isinstance(exc, OSError):
        text = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc))
        return f"{where}: {text}"
    if isinstance(exc, asyncio.CancelledError):
        return f"{where}: the host loop stopped"
    return f"{where}: {str(exc) or type(exc).__name__}"


class NamespaceLinks:
    """All links of the network namespace NETNS (a name under /run/netns, or a path; None:
    our own namespace).

    ``read`` from any thread (callers serialise: ``LinkReader`` holds a lock); it waits for
    the host loop at most TIMEOUT seconds. FOLLOW: keep the socket and follow the links
    between reads (the monitor); without it every read is a full dump (a one-off read).
    RCVBUF: the socket's receive buffer (notifications beyond it are lost: the next read says
    so and the one after starts afresh). Raises LinkReadError with the reason."""

    def __init__(
        self,
        netns: str | None,
        *,
        timeout: float = 5.0,
        follow: bool = True,
        rcvbuf: int = RCVBUF,
    ) -> None:
        self.netns = netns
        self.timeout = timeout
        self.follow = follow
        self.rcvbuf = rcvbuf
        self.counts = Counts()
        self._session: _Session | None = None
        self._loop: HostLoop | None = None

    def read(self) -> dict[str, Link]:
        try:
            if self._session is None:
                return self._open()
            return self._run(self._counters(self._session))
        except LinkReadError:
            self.close()
            raise
        except (Exception, asyncio.CancelledError) as exc:  # the loop closing cancels it
            self.close()
            raise LinkReadError(_reason(self.netns, self.timeout, exc, "read links")) from exc

    @property
    def holds_socket(self) -> bool:
        return self._session is not None

    def _open(self) -> dict[str, Link]:
        sock = open_socket(self.netns, self.timeout)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)
            self._loop = host_loop()
            session, links = self._run(self._start(sock))
            self.counts.full_dumps += 1
        except BaseException:
            sock.close()
            raise
        if self.follow:
            self._session = session
        else:
            self._close_session(session)
        return links

    async def _start(self, sock: socket.socket) -> tuple[_Session, dict[str, Link]]:
        session = _Session(sock, self.follow, self.counts)
        try:
            return session, await asyncio.wait_for(session.start(), self.timeout)
        except BaseException:
            await session.close()
            raise

    async def _counters(self, session: _Session) -> dict[str, Link]:
        return await asyncio.wait_for(session.counters(), self.timeout)

    def _run(self, coro: Any) -> Any:
        loop = self._loop or host_loop()
        return loop.run(coro, self.timeout + 1.0)

    def _close_session(self, session: _Session) -> None:
        loop = self._loop
        if loop is not None and loop.in_loop_thread():
            loop.loop.create_task(session.close())
            return
        try:
            if loop is None:
                raise HostLoopError("no host loop")
            loop.run(session.close(), 2.0)
        except BaseException:  # the loop stopped or hung: close the fd at least
            session.sock.close()

    def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            self._close_session(session)
