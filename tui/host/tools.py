"""The external programs the host layer runs, found once on a fixed PATH, and their environment.

The app runs as root, and its config may name an environment for the tools
(``[host.systemd_env]``). Neither that nor the PATH the app was started with chooses which binary
runs: every tool is looked up once, on first use, in ``SAFE_PATH`` only (directories root owns
on NixOS and on other distributions), and run by the absolute path found. A candidate must be a
regular executable file owned by root (or by us) that neither group nor others can write.

A child gets an environment we build (``child_env``): who we are (from the password database),
a few variables passed on from ours, the config's extras, and ``PATH = SAFE_PATH``; not our
environment wholesale.
"""

from __future__ import annotations

import os
import pwd
import stat
import threading
from collections.abc import Mapping

SAFE_PATH = ":".join(
    (
        "/run/current-system/sw/bin",  # NixOS
        "/run/wrappers/bin",  # NixOS setuid wrappers
        "/nix/var/nix/profiles/default/bin",  # Nix on another distribution
        "/usr/sbin",
        "/usr/bin",
        "/sbin",
        "/bin",
    )
)

# Every program the host layer runs. Looked up together the first time one is asked for.
KNOWN = ("systemctl", "systemd-run", "journalctl", "nix", "crosvm", "cat")  # cat: the console relay

# Passed on from our own environment (the admin's, not the config's): the time zone, the user
# manager's runtime dir (``systemctl --user``), how a non-root Nix reaches its daemon.
PASSED_ON = ("TZ", "XDG_RUNTIME_DIR", "NIX_REMOTE")
# Files named by our environment: passed on only when root or we own them and neither group
# nor others can write them (a user's CA bundle would let them swap what root's nix fetches).
PASSED_ON_FILES = ("NIX_SSL_CERT_FILE", "SSL_CERT_FILE")

# Variables that choose code for a child to run, so no config file may set them.
FORBIDDEN_PREFIXES = ("LD_",)
FORBIDDEN_NAMES = frozenset({"PATH"})

_lock = threading.Lock()
_found: dict[str, str | None] | None = None


def forbidden_env(name: str) -> bool:
    """Whether a config may not set NAME for the tools (PATH, the dynamic loader's LD_*)."""
    return name in FORBIDDEN_NAMES or name.startswith(FORBIDDEN_PREFIXES)


def _trusted_executable(path: str) -> bool:
    try:
        st = os.stat(path)  # follows links: /run/current-system/sw/bin/* point into the store
    except OSError:
        return False
    return (
        stat.S_ISREG(st.st_mode)
        and st.st_mode & 0o111 != 0
        and st.st_uid in (0, os.geteuid())
        and st.st_mode & 0o022 == 0
    )


def _lookup(name: str) -> str | None:
    for directory in SAFE_PATH.split(":"):
        candidate = os.path.join(directory, name)
        if _trusted_executable(candidate):
            return candidate
    return None


def table() -> dict[str, str | None]:
    """Every known tool -> its absolute path (None: not installed). Computed once."""
    global _found
    with _lock:
        if _found is None:
            _found = {name: _lookup(name) for name in KNOWN}
        return _found


def find(name: str) -> str | None:
    """The absolute path of tool NAME (one of ``KNOWN``), or None when it is not installed."""
    return table()[name]


def path(name: str) -> str:
    """What to put in argv[0] for tool NAME: its absolute path; if it is not installed, the bare
    name, which fails to start with FileNotFoundError (the child's PATH is ``SAFE_PATH`` only,
    so it cannot find a program anywhere else either)."""
    return find(name) or name


def _owned_by_us(path: str) -> bool:
    try:
        st = os.stat(path)
    except (OSError, ValueError):
        return False
    return st.st_uid in (0, os.geteuid()) and st.st_mode & 0o022 == 0


def who_we_are() -> dict[str, str]:
    """HOME, USER and LOGNAME of the effective user from the password database, not from our
    environment: under ``sudo -E`` $HOME is another user's, and their ~/.config/nix/nix.conf
    could name a program (``post-build-hook``) for root's nix to run."""
    try:
        entry = pwd.getpwuid(os.geteuid())
    except KeyError:
        return {}
    return {"HOME": entry.pw_dir, "USER": entry.pw_name, "LOGNAME": entry.pw_name}


def child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for a tool: who we are, ours (``PASSED_ON``, ``PASSED_ON_FILES``),
    EXTRA (the config's), our fixed settings."""
    env = who_we_are()
    env.update((k, v) for k in PASSED_ON if (v := os.environ.get(k)) is not None)
    env.update((k, v) for k in PASSED_ON_FILES if (v := os.environ.get(k)) and _owned_by_us(v))
    for key, value in (extra or {}).items():
        if not forbidden_env(key):  # the config loader refuses them; never let one through
            env[key] = value
    env["PATH"] = SAFE_PATH
    env.setdefault("SYSTEMD_COLORS", "0")
    env["SYSTEMD_PAGER"] = ""
    env["LC_ALL"] = "C"
    return env
