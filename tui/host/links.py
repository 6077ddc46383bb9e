"""Network links (taps, macvtaps) as the kernel sees them.

Two readers with one result type: sysfs for the TUI's own network namespace (cheap, no import
cost: `list` must stay fast) and rtnetlink through pyroute2 for another namespace (the lab's,
or any netns the host's taps live in), where sysfs cannot look (``rtnl``: pyroute2's
``AsyncIPRoute`` on the host loop). A one-off read (`list`) dumps the links once;
``LinkReader``, for the long-running monitor, keeps one socket in the namespace and follows
the links between polls, so a poll asks the kernel only for the counters.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tui.host.rtnl import NamespaceLinks

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
    """All links of network namespace NETNS, by one rtnetlink dump through pyroute2 (``rtnl``).
    Raises LinkReadError."""
    from tui.host.rtnl import NamespaceLinks  # imports pyroute2 on use: it costs 0.15-0.6 s

    return NamespaceLinks(netns, follow=False).read()


def read_links(names: list[str], netns: str | None) -> dict[str, Link]:
    if netns:
        return read_links_netns(netns)
    return read_links_sysfs(names)


def netns_path(netns: str) -> str:
    """Where a named namespace is mounted (as `ip netns` and pyroute2 name it), or NETNS
    itself when it is a path."""
    return netns if os.path.dirname(netns) else f"/var/run/netns/{netns}"


def _netns_identity(netns: str) -> tuple[int, int]:
    st = os.stat(netns_path(netns))
    return st.st_dev, st.st_ino


def _import_rtnl() -> None:
    from tui.host.rtnl import import_pyroute2

    with contextlib.suppress(Exception):  # a broken install: the first read says why
        import_pyroute2()


class LinkReader:
    """Links for the long-running monitor, one read per poll (``read``).

    Own namespace (NETNS None): sysfs, for the names asked. Another namespace: pyroute2 on the
    host loop (``rtnl.NamespaceLinks``): one rtnetlink socket made inside it on first use and
    kept, the links followed by the kernel's notifications, each poll asking only for the
    counters. A namespace that was deleted is reported as missing at the next read (and its
    socket dropped); one replaced under the same name (a new inode) is entered again. Any
    error drops the socket, so the next read starts afresh. Safe to call from any thread.

    pyroute2 takes 0.15-0.6 s to import: ``warm_up`` starts that in a thread (a read meanwhile
    waits for the rest: ``rtnl.import_pyroute2``).
    """

    def __init__(self, netns: str | None, *, timeout: float = 5.0) -> None:
        self.netns = netns
        self.timeout = timeout
        self._links: NamespaceLinks | None = None  # made on first use
        self._identity: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._warming = False

    def warm_up(self) -> None:
        """For another namespace, start importing pyroute2 in a thread (0.15-0.6 s of CPU), so
        the first read does not wait for all of it. Called once the first table is on screen:
        begun with the app, it slowed the app's own start (one thread runs Python at a time)."""
        if self.netns and not self._warming:
            self._warming = True
            threading.Thread(target=_import_rtnl, name="mvtui-import-pyroute2", daemon=True).start()

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
        if self._links is None or identity != self._identity:
            self._drop()
            from tui.host.rtnl import NamespaceLinks

            self._links = NamespaceLinks(netns, timeout=self.timeout)
            self._identity = identity
        return self._links.read()  # drops its socket itself on an error

    @property
    def holds_socket(self) -> bool:
        """Whether a socket in the namespace is kept (for tests and the bench)."""
        return self._links is not None and self._links.holds_socket

    def _drop(self) -> None:
        if self._links is not None:
            self._links.close()
        self._links = None
        self._identity = None

    def close(self) -> None:
        with self._lock:
            self._drop()
