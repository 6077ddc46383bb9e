"""Every link of a network namespace with its kind, through pyroute2 (the host checks need the
kind, tap or macvtap, which the monitor's link reader does not ask for)."""

from __future__ import annotations

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from tui.host.checks.leftovers import LinkFact
from tui.host.text import sanitise


class LinkListError(Exception):
    pass


def read_link_facts(netns: str | None) -> list[LinkFact]:
    try:
        with IPRoute(netns=netns) if netns else IPRoute() as ipr:
            links = ipr.get_links()
            return [
                LinkFact(
                    sanitise(str(link.get("ifname") or "")),
                    link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND"),
                    link.get("operstate"),
                )
                for link in links
            ]
    except (OSError, NetlinkError) as exc:
        where = f"network namespace {netns}" if netns else "the host's links"
        raise LinkListError(f"cannot list {where}: {exc}") from exc


def delete_link(name: str, netns: str | None) -> None:
    """Delete the link NAME, only if it is still a tap or macvtap nobody uses."""
    try:
        with IPRoute(netns=netns) if netns else IPRoute() as ipr:
            found = ipr.link_lookup(ifname=name)
            if not found:
                return
            (link,) = ipr.get_links(found[0])
            kind = link.get_nested("IFLA_LINKINFO", "IFLA_INFO_KIND")
            if kind not in ("tun", "macvtap") or link.get("operstate") == "UP":
                raise LinkListError(f"{name} is no longer an unused tap or macvtap: left alone")
            ipr.link("del", index=found[0])
    except (OSError, NetlinkError) as exc:
        raise LinkListError(f"cannot delete {name}: {exc}") from exc
