"""Where the host layer finds things. The same code runs on a real host and on the lab."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tui.host import tools

SYSTEM_BUS = Path("/run/dbus/system_bus_socket")
PRIVATE_SOCKET = Path("/run/systemd/private")  # systemd's own, root only, no bus daemon


@dataclass(frozen=True)
class SystemdBus:
    """Where the monitor reaches systemd over D-Bus (``[host] systemd_bus``), one of:

    - "auto": the system bus for ``systemd_scope = "system"``; for "user", the user's bus
      ($XDG_RUNTIME_DIR/bus, from ``systemd_env`` or our environment);
    - "system": the system bus (/run/dbus/system_bus_socket);
    - "private": systemd's private socket (/run/systemd/private: root only, no bus daemon);
    - "unix:path=/ABS/SOCKET": a bus at that socket (the lab's);
    - "systemctl": no D-Bus: a `systemctl` process each poll.
    """

    kind: str  # auto, system, private, path, systemctl
    path: Path | None = None  # for "path"

    def __str__(self) -> str:
        return f"unix:path={self.path}" if self.kind == "path" else self.kind


@dataclass(frozen=True)
class HostSettings:
    state_dir: Path = Path("/var/lib/microvms")
    # How to reach the systemd manager that runs microvm@NAME: the system one on a real host,
    # the lab's user manager (with its XDG_RUNTIME_DIR) in the lab.
    systemd_scope: str = "system"  # "system" or "user"
    systemd_env: dict[str, str] = field(default_factory=dict)
    # Network namespace the VMs' taps live in; None = the TUI's own namespace (a real host).
    netns: str | None = None
    # Where serial output lands on a host whose units append it to files
    # (`StandardOutput=append:DIR/NAME.log`). None = the journal (microvm.nix's default).
    console_log_dir: Path | None = None
    # A journal directory to read instead of the system's (`journalctl --directory`): the lab's
    # journald writes there. None on a real host: the system journal.
    journal_dir: Path | None = None
    gcroots_dir: Path = Path("/nix/var/nix/gcroots/microvm")
    nix_options: tuple[str, ...] = ()
    # Where `list` keeps runner parses between runs (``parsecache``); None: parse every time.
    cache_dir: Path | None = None
    timeout: float = 5.0  # seconds for any one external command or socket query
    # How the monitor follows systemd over D-Bus (``SystemdBus``): the system bus by default.
    systemd_bus: SystemdBus = field(default_factory=lambda: SystemdBus("auto"))
    # Where jobs run as systemd units keep their job files (``actions.jobfile``): ours only.
    jobs_dir: Path = Path("/run/microvm-tui/jobs")

    def systemctl_argv(self, *args: str) -> list[str]:
        argv = [tools.path("systemctl")]
        if self.systemd_scope == "user":
            argv.append("--user")
        return [*argv, *args]

    def journalctl_argv(self, *args: str) -> list[str]:
        argv = [tools.path("journalctl")]
        if self.journal_dir is not None:
            # A journald of its own (the lab's) keeps every unit's lines there, user manager's
            # units included, under their unit name (`-u`, not `--user-unit`).
            argv.append(f"--directory={self.journal_dir}")
        elif self.systemd_scope == "user":
            argv.append("--user")
        return [*argv, *args]

    def bus_socket(self) -> tuple[Path, bool] | None:
        """The socket to reach systemd over D-Bus, and whether a bus daemon is behind it
        (False: systemd's private socket, peer to peer); None: ask systemctl instead."""
        bus = self.systemd_bus
        if bus.kind == "systemctl":
            return None
        if bus.kind == "path" and bus.path is not None:
            return bus.path, True
        if bus.kind == "private":
            return PRIVATE_SOCKET, False
        if bus.kind == "auto" and self.systemd_scope == "user":
            runtime = self.systemd_env.get("XDG_RUNTIME_DIR") or os.environ.get("XDG_RUNTIME_DIR")
            if not runtime or not os.path.isabs(runtime):
                return None
            return Path(runtime) / "bus", True
        return SYSTEM_BUS, True

    def command_env(self) -> dict[str, str]:
        """The environment for systemctl/journalctl/nix: a clean one, plus the scope's extras
        (never a PATH: ``tools`` finds the programs)."""
        return tools.child_env(self.systemd_env)


@dataclass(frozen=True)
class DeploySource:
    """Where deploys of prebuilt runners come from (``[deploy]`` in the config)."""

    cache: str | None = None  # a binary cache URL for `nix copy --from`
    hydra_url: str | None = None  # a URL template, {name} replaced, answering Hydra's JSON
    check_sigs: bool = True  # False: `nix copy --no-check-sigs` (the admin's choice only)


def default_cache_dir() -> Path | None:
    """$XDG_CACHE_HOME/microvm-tui, else ~/.cache/microvm-tui; None without a home."""
    base = os.environ.get("XDG_CACHE_HOME")
    if base and os.path.isabs(base):
        return Path(base) / "microvm-tui"
    home = os.environ.get("HOME")
    if home and os.path.isabs(home):
        return Path(home) / ".cache" / "microvm-tui"
    return None
