"""Network links (taps, macvtaps) as the kernel sees them.

Two readers with one result type: sysfs for the TUI's own network namespace (cheap, no import
cost: `list` must stay fast) and rtnetlink for another namespace (the lab's, or any netns the
host's taps live in), where sysfs cannot look. A one-off read (`list`) asks pyroute2;
``LinkReader``, for the long-running monitor, keeps one netlink socket open in the namespace
and dumps the links itself each poll (pyroute2's IPRoute is bound to the thread that made it,
while every poll runs in a new thread). That socket is made by a short-lived thread that enters
the namespace (``setns`` moves only the calling thread): pyroute2's own helper costs ~0.25 s of
import and a child process, on the monitor's first poll, which the first screen waits for.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import struct
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SYS_CLASS_NET = Path("/sys/class/net")


@dataclass
class Link:
    name: str
    kind: str | None = None  # "tun", "macvtap", "bridge", ...
    oper_state: str | None = None  # "UP", "DOWN", "LOWERLAYERDOWN", "UNKNOWN", ...
    carrier: bool | None = None
    mac: str | None = None
    master: str | None = None
    rx_bytes: int | None = None
    tx_bytes: int | None = None


class LinkReadError(Exception):
    pass


@dataclass
class LinkTable:
    """One read of the links, shared by a poll's listing and its sampler."""

    links: dict[str, Link] = field(default_factory=dict)
    error: str | None = None  # why nothing could be read; ``links`` is then empty
    t: float = 0.0  # time.monotonic() of the read


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _sysfs_link(name: str) -> Link | None:
    base = SYS_CLASS_NET / name
    if not base.exists():
        return None
    kind = None
    uevent = _read(base / "uevent") or ""
    for line in uevent.splitlines():
        if line.startswith("DEVTYPE="):
            kind = line.split("=", 1)[1]
    if kind is None and (base / "tun_flags").exists():
        kind = "tun"
    if kind is None and (base / "macvtap").is_dir():  # its tapN character device's class dir
        kind = "macvtap"
    master = None
    with contextlib.suppress(OSError):
        master = os.path.basename(os.readlink(base / "master"))
    carrier = _read(base / "carrier")
    return Link(
        name=name,
        kind=kind,
        oper_state=(_read(base / "operstate") or "").upper() or None,
        carrier=None if carrier is None else carrier == "1",
        mac=_read(base / "address"),
        master=master,
        rx_bytes=_int(_read(base / "statistics" / "rx_bytes")),
        tx_bytes=_int(_read(base / "statistics" / "tx_bytes")),
    )


def read_links_sysfs(names: list[str]) -> dict[str, Link]:
    """The named links of our own namespace; absent ones are simply missing from the dict."""
    found: dict[str, Link] = {}
    for name in names:
        if "/" in name or name in (".", ".."):
            continue
        link = _sysfs_link(name)
        if link is not None:
            found[name] = link
    return found


def read_links_netns(netns: str) -> dict[str, Link]:
    """All links of network namespace NETNS, through rtnetlink. Raises LinkReadError."""
    try:
        from pyroute2 import IPRoute  # imported here: it costs ~0.25 s
    except ImportError as exc:  # pragma: no cover - a broken install
        raise LinkReadError(f"pyroute2 is not importable: {exc}") from exc
    try:
        with IPRoute(netns=netns, flags=0) as ipr:
            messages = list(ipr.get_links())
    except FileNotFoundError as exc:
        raise LinkReadError(f"network namespace '{netns}' does not exist") from exc
    except PermissionError as exc:
        raise LinkReadError(f"no permission to enter network namespace '{netns}'") from exc
    except Exception as exc:  # pyroute2 raises many kinds; the reason matters, not the type
        raise LinkReadError(f"cannot read links in netns '{netns}': {exc}") from exc
    return links_from_pyroute2(messages)


def links_from_pyroute2(messages: Iterable[Any]) -> dict[str, Link]:
    """Links from pyroute2's ifinfmsg messages (``IPRoute.get_links()``)."""
    messages = list(messages)
    by_index = {msg["index"]: msg.get_attr("IFLA_IFNAME") for msg in messages}
    links: dict[str, Link] = {}
    for msg in messages:
        name = msg.get_attr("IFLA_IFNAME")
        info = msg.get_attr("IFLA_LINKINFO")
        stats = msg.get_attr("IFLA_STATS64") or msg.get_attr("IFLA_STATS")
        carrier = msg.get_attr("IFLA_CARRIER")
        links[name] = Link(
            name=name,
            kind=info.get_attr("IFLA_INFO_KIND") if info is not None else None,
            oper_state=msg.get_attr("IFLA_OPERSTATE"),
            carrier=None if carrier is None else bool(carrier),
            mac=msg.get_attr("IFLA_ADDRESS"),
            master=by_index.get(msg.get_attr("IFLA_MASTER")),
            rx_bytes=stats["rx_bytes"] if stats is not None else None,
            tx_bytes=stats["tx_bytes"] if stats is not None else None,
        )
    return links


def read_links(names: list[str], netns: str | None) -> dict[str, Link]:
    if netns:
        return read_links_netns(netns)
    return read_links_sysfs(names)


# --- rtnetlink without pyroute2 (for the held socket) ---------------------------------------

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_GETLINK = 16, 18
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_DUMP_INTR, NLM_F_DUMP = 0x1, 0x2, 0x10, 0x300
IFLA_ADDRESS, IFLA_IFNAME, IFLA_STATS, IFLA_MASTER = 1, 3, 7, 10
IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_STATS64, IFLA_CARRIER = 16, 18, 23, 33
IFLA_INFO_KIND = 1
NLA_TYPE_MASK = 0x3FFF  # without NLA_F_NESTED / NLA_F_NET_BYTEORDER
# IF_OPER_* codes, named as pyroute2 (and `ip link`) name them.
OPER_STATES = ("UNKNOWN", "NOTPRESENT", "DOWN", "LOWERLAYERDOWN", "TESTING", "DORMANT", "UP")
_NLMSGHDR = struct.Struct("=IHHII")  # len, type, flags, seq, pid
_IFINFOMSG = struct.Struct("=BxHiII")  # family, type, index, flags, change
_RTATTR = struct.Struct("=HH")  # len, type
_STATS64_BYTES = struct.Struct("=QQQQ")  # rx_packets, tx_packets, rx_bytes, tx_bytes
_STATS32_BYTES = struct.Struct("=IIII")
MAX_DUMP_ATTEMPTS = 3  # a dump that raced a link change is asked for again
RECV_BYTES = 65536  # more than the kernel puts in one dump datagram


class _DumpInterrupted(Exception):
    pass


def _attrs(data: bytes | memoryview, start: int, end: int) -> dict[int, memoryview]:
    """rtattrs between START and END of DATA: type -> payload (the first of each type)."""
    view = memoryview(data)
    found: dict[int, memoryview] = {}
    pos = start
    while pos + 4 <= end:
        length, kind = _RTATTR.unpack_from(view, pos)
        if length < 4 or pos + length > end:
            break
        found.setdefault(kind & NLA_TYPE_MASK, view[pos + 4 : pos + length])
        pos += (length + 3) & ~3
    return found


def _asciiz(value: memoryview) -> str:
    return bytes(value).split(b"\0", 1)[0].decode("ascii", errors="replace")


def parse_link_message(data: bytes | memoryview) -> tuple[int, Link, int | None]:
    """One RTM_NEWLINK payload (after the nlmsghdr): (ifindex, Link, master ifindex)."""
    _family, _type, index, _flags, _change = _IFINFOMSG.unpack_from(data, 0)
    attrs = _attrs(data, _IFINFOMSG.size, len(data))
    name = _asciiz(attrs[IFLA_IFNAME]) if IFLA_IFNAME in attrs else ""
    kind = None
    if IFLA_LINKINFO in attrs:
        info = _attrs(attrs[IFLA_LINKINFO], 0, len(attrs[IFLA_LINKINFO]))
        if IFLA_INFO_KIND in info:
            kind = _asciiz(info[IFLA_INFO_KIND])
    oper = None
    if IFLA_OPERSTATE in attrs and len(attrs[IFLA_OPERSTATE]) >= 1:
        code = attrs[IFLA_OPERSTATE][0]
        oper = OPER_STATES[code] if code < len(OPER_STATES) else str(code)
    carrier = None
    if IFLA_CARRIER in attrs and len(attrs[IFLA_CARRIER]) >= 1:
        carrier = bool(attrs[IFLA_CARRIER][0])
    mac = None
    if IFLA_ADDRESS in attrs:
        mac = ":".join(f"{b:02x}" for b in attrs[IFLA_ADDRESS])
    master = None
    if IFLA_MASTER in attrs and len(attrs[IFLA_MASTER]) >= 4:
        master = struct.unpack_from("=I", attrs[IFLA_MASTER])[0]
    rx = tx = None
    if IFLA_STATS64 in attrs and len(attrs[IFLA_STATS64]) >= _STATS64_BYTES.size:
        _rxp, _txp, rx, tx = _STATS64_BYTES.unpack_from(attrs[IFLA_STATS64])
    elif IFLA_STATS in attrs and len(attrs[IFLA_STATS]) >= _STATS32_BYTES.size:
        _rxp, _txp, rx, tx = _STATS32_BYTES.unpack_from(attrs[IFLA_STATS])
    link = Link(
        name=name, kind=kind, oper_state=oper, carrier=carrier, mac=mac, rx_bytes=rx, tx_bytes=tx
    )
    return index, link, master


def dump_links(sock: socket.socket, seq: int) -> dict[str, Link]:
    """All links of SOCK's network namespace, by one RTM_GETLINK dump on a NETLINK_ROUTE
    socket. Raises OSError (a netlink error reply too) or _DumpInterrupted."""
    request = _NLMSGHDR.pack(
        _NLMSGHDR.size + _IFINFOMSG.size, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, seq, 0
    ) + _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
    sock.sendall(request)
    parsed: list[tuple[int, Link, int | None]] = []
    interrupted = False
    done = False
    while not done:
        data = sock.recv(RECV_BYTES)
        if not data:
            raise OSError(errno.EPIPE, "netlink socket closed")
        pos = 0
        while pos + _NLMSGHDR.size <= len(data):
            length, kind, flags, msg_seq, _pid = _NLMSGHDR.unpack_from(data, pos)
            if length < _NLMSGHDR.size or pos + length > len(data):
                break
            body = memoryview(data)[pos + _NLMSGHDR.size : pos + length]
            pos += (length + 3) & ~3
            if msg_seq != seq:
                continue  # left over from an abandoned request
            interrupted = interrupted or bool(flags & NLM_F_DUMP_INTR)
            if kind == NLMSG_DONE:
                done = True
                break
            if kind == NLMSG_ERROR:
                code = -struct.unpack_from("=i", body)[0]
                if code:
                    raise OSError(code, os.strerror(code))
                continue
            if kind == RTM_NEWLINK:
                parsed.append(parse_link_message(body))
    if interrupted:
        raise _DumpInterrupted
    by_index = {index: link.name for index, link, _ in parsed}
    links: dict[str, Link] = {}
    for _index, link, master in parsed:
        link.master = by_index.get(master) if master else None
        links[link.name] = link
    return links


def netns_path(netns: str) -> str:
    """Where a named namespace is mounted (as `ip netns` and pyroute2 name it), or NETNS
    itself when it is a path."""
    return netns if os.path.dirname(netns) else f"/var/run/netns/{netns}"


CLONE_NEWNET = 0x40000000


def netns_socket(netns: str, family: int, kind: int, proto: int) -> socket.socket:
    """A socket made inside the network namespace NETNS (a name under /run/netns, or a path).

    A thread of its own enters the namespace, makes the socket and ends; the socket stays in
    that namespace, the rest of the process never leaves its own. Raises FileNotFoundError
    (no such namespace), PermissionError (not allowed to enter it), OSError."""
    import ctypes  # here: only the monitor in a foreign namespace needs it

    fd = os.open(netns_path(netns), os.O_RDONLY | os.O_CLOEXEC)
    made: list[socket.socket] = []
    failed: list[BaseException] = []

    def enter_and_make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.setns(fd, CLONE_NEWNET) != 0:
                code = ctypes.get_errno()
                raise OSError(code, os.strerror(code))
            made.append(socket.socket(family, kind, proto))
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    try:
        worker = threading.Thread(target=enter_and_make, name="netns-socket", daemon=True)
        worker.start()
        worker.join()
    finally:
        os.close(fd)
    if failed:
        raise failed[0]
    return made[0]


def _netns_identity(netns: str) -> tuple[int, int]:
    st = os.stat(netns_path(netns))
    return st.st_dev, st.st_ino


class LinkReader:
    """Links for the long-running monitor, one read per poll (``read``).

    Own namespace (NETNS None): sysfs, for the names asked. Another namespace: one
    NETLINK_ROUTE socket made inside it on first use (``netns_socket``) and kept for
    the reader's lifetime; a namespace that was deleted is reported as missing at the next
    read, and one replaced under the same name (a new inode) gets a new socket. Any error
    drops the socket, so the next read starts afresh. Safe to call from any thread.
    """

    def __init__(self, netns: str | None, *, timeout: float = 5.0) -> None:
        self.netns = netns
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._identity: tuple[int, int] | None = None
        self._seq = 0
        self._lock = threading.Lock()

    def read(self, names: list[str]) -> LinkTable:
        """The links (all of the namespace, or the NAMES in ours); errors as ``error``."""
        try:
            links = self.read_links(names)
        except LinkReadError as exc:
            return LinkTable(error=str(exc), t=time.monotonic())
        return LinkTable(links=links, t=time.monotonic())

    def read_links(self, names: list[str]) -> dict[str, Link]:
        if not self.netns:
            return read_links_sysfs(names)
        with self._lock:
            return self._read_netns(self.netns)

    def _read_netns(self, netns: str) -> dict[str, Link]:
        try:
            identity = _netns_identity(netns)
        except FileNotFoundError as exc:
            self._drop()
            raise LinkReadError(f"network namespace '{netns}' does not exist") from exc
        except OSError as exc:
            self._drop()
            raise LinkReadError(
                f"cannot read links in netns '{netns}': {exc.strerror or exc}"
            ) from exc
        if self._sock is None or identity != self._identity:
            self._drop()
            self._sock = self._open(netns)
            self._identity = identity
        for attempt in range(MAX_DUMP_ATTEMPTS):
            self._seq = self._seq % 0x7FFFFFFF + 1
            try:
                return dump_links(self._sock, self._seq)
            except _DumpInterrupted:
                if attempt == MAX_DUMP_ATTEMPTS - 1:
                    self._drop()
                    raise LinkReadError(
                        f"cannot read links in netns '{netns}': the links kept changing"
                    ) from None
            except (OSError, struct.error) as exc:
                self._drop()
                reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
                raise LinkReadError(f"cannot read links in netns '{netns}': {reason}") from exc
        raise AssertionError("unreachable")  # pragma: no cover

    def _open(self, netns: str) -> socket.socket:
        try:
            sock = netns_socket(netns, socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE)
        except FileNotFoundError as exc:
            raise LinkReadError(f"network namespace '{netns}' does not exist") from exc
        except PermissionError as exc:
            raise LinkReadError(f"no permission to enter network namespace '{netns}'") from exc
        except OSError as exc:
            raise LinkReadError(
                f"cannot read links in netns '{netns}': {exc.strerror or exc}"
            ) from exc
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
            sock.settimeout(self.timeout)
            sock.bind((0, 0))
        except OSError as exc:
            sock.close()
            raise LinkReadError(
                f"cannot read links in netns '{netns}': {exc.strerror or exc}"
            ) from exc
        return sock

    def _drop(self) -> None:
        if self._sock is not None:
            with contextlib.suppress(OSError):
                self._sock.close()
        self._sock = None
        self._identity = None

    def close(self) -> None:
        with self._lock:
            self._drop()
