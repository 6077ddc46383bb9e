"""A remote host as the config names it (``[hosts.NAME]``). Kept light: the config imports it."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_AGENT = "microvm-tui agent"


@dataclass(frozen=True)
class RemoteHost:
    """One ``[hosts.NAME]`` table: how to reach the host and run its agent."""

    name: str
    ssh: tuple[str, ...]  # ssh arguments: options and the destination
    agent: str = DEFAULT_AGENT  # the remote command line (the remote login shell runs it)
    interval: float | None = None  # seconds between its snapshots; None: the app's interval
    read_only: bool = False  # change nothing on this host, whatever its agent allows
