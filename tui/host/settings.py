"""Where the host layer finds things. The same code runs on a real host and on the lab."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from tui.host import tools


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
