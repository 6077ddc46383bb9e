"""Network links (taps, macvtaps) as the kernel sees them.

Two readers with one result type: sysfs for the TUI's own network namespace (cheap, no import
cost: `list` must stay fast) and pyroute2 for another namespace (the lab's, or any netns the
host's taps live in), where sysfs cannot look.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

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
