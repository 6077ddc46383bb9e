"""The lab's own network namespace: the VMs' taps live there, never in the host's namespace.

Only loopback is up inside it and nothing routes out of it. Only namespaces whose name this module
derived from a lab root are ever created or deleted.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

PREFIX = "mvtui-"
NETNS_DIR = Path("/run/netns")


def netns_name(root: Path) -> str:
    return PREFIX + hashlib.sha256(str(root).encode()).hexdigest()[:8]


def exists(name: str) -> bool:
    return (NETNS_DIR / name).exists() and name in list_netns()


def list_netns() -> list[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=False)
    return [line.split()[0] for line in out.stdout.splitlines() if line.strip()]


def _check(name: str) -> None:
    if not name.startswith(PREFIX) or "/" in name:
        raise ValueError(f"not a lab namespace: {name!r}")


def create(name: str) -> bool:
    """Create the namespace with loopback up. False if it already existed."""
    _check(name)
    if exists(name):
        return False
    subprocess.run(["ip", "netns", "add", name], check=True, capture_output=True, text=True)
    subprocess.run(
        ["ip", "-n", name, "link", "set", "lo", "up"], check=True, capture_output=True, text=True
    )
    return True


def ensure_uplink(name: str, link: str) -> None:
    """A link for macvtaps to sit on, inside the namespace, that leads nowhere: a dummy, or
    (kernels without dummy) a veth pair whose both ends stay in the namespace."""
    _check(name)
    ip = ["ip", "-n", name]
    if subprocess.run([*ip, "link", "show", link], capture_output=True).returncode == 0:
        return
    made = subprocess.run([*ip, "link", "add", link, "type", "dummy"], capture_output=True)
    if made.returncode != 0:
        peer = f"{link}-peer"
        subprocess.run([*ip, "link", "delete", peer], capture_output=True)
        subprocess.run(
            [*ip, "link", "add", link, "type", "veth", "peer", "name", peer],
            check=True,
            capture_output=True,
        )
        subprocess.run([*ip, "link", "set", peer, "up"], check=True, capture_output=True)
    subprocess.run([*ip, "link", "set", link, "up"], check=True, capture_output=True)


def delete(name: str) -> None:
    _check(name)
    if name in list_netns() or (NETNS_DIR / name).exists():
        subprocess.run(["ip", "netns", "delete", name], check=False, capture_output=True)


def pids(name: str) -> set[int]:
    """Processes living in the namespace (all started by the lab's units)."""
    _check(name)
    out = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True, check=False)
    return {int(p) for p in out.stdout.split() if p.isdigit() and int(p) != os.getpid()}


def links(name: str) -> list[dict]:
    """`ip -j link` inside the namespace."""
    import json

    _check(name)
    out = subprocess.run(
        ["ip", "-j", "-n", name, "link", "show"], capture_output=True, text=True, check=False
    )
    return json.loads(out.stdout or "[]")
