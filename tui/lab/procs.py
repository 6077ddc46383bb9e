"""The cgroups and processes of the lab's systemd manager: find, wait for and clean them up
(the manager runs in a cgroup of its own in the name=systemd and unified hierarchies)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

# --- cgroups --------------------------------------------------------------------------------


def cgroup_mounts() -> list[Path]:
    """Where the hierarchies systemd tracks units in are mounted: cgroup2 and name=systemd (v1)."""
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        pre, _, post = line.partition(" - ")
        fields, post_fields = pre.split(), post.split()
        if len(fields) < 5 or len(post_fields) < 3:
            continue
        fstype, options = post_fields[0], post_fields[2].split(",")
        if fstype == "cgroup2" or (fstype == "cgroup" and "name=systemd" in options):
            found.append(Path(fields[4]))
    return found


def all_cgroup_dirs(cgroup_name: str) -> list[Path]:
    """The lab's cgroup in every mounted hierarchy (systemd may create it in v1 controllers too)."""
    base = Path("/sys/fs/cgroup")
    dirs = [m / cgroup_name for m in cgroup_mounts()]
    if base.is_dir():
        for sub in base.iterdir():
            cand = sub / cgroup_name
            if cand.is_dir() and cand not in dirs:
                dirs.append(cand)
    return dirs


def cgroup_pids(cgroup_name: str) -> set[int]:
    pids: set[int] = set()
    for top in all_cgroup_dirs(cgroup_name):
        if not top.is_dir():
            continue
        for dirpath, _dirs, files in os.walk(top):
            if "cgroup.procs" in files:
                with contextlib.suppress(OSError):
                    pids |= {int(x) for x in (Path(dirpath) / "cgroup.procs").read_text().split()}
    return pids


def remove_cgroups(cgroup_name: str) -> list[Path]:
    """rmdir the lab's cgroup trees bottom-up; returns what could not be removed."""
    left = []
    for top in all_cgroup_dirs(cgroup_name):
        if not top.is_dir():
            continue
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            try:
                os.rmdir(dirpath)
            except OSError:
                left.append(Path(dirpath))
    return left


# --- processes ------------------------------------------------------------------------------


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError):
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            _reap(pid)
            return False
    return True


def _reap(pid: int) -> None:
    with contextlib.suppress(ChildProcessError, OSError):
        os.waitpid(pid, os.WNOHANG)


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        _reap(pid)
        if not pid_alive(pid):
            return True
        time.sleep(0.1)
    return not pid_alive(pid)


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    env = {}
    for item in raw.split(b"\0"):
        k, sep, v = item.partition(b"=")
        if sep:
            env[k.decode(errors="replace")] = v.decode(errors="replace")
    return env
