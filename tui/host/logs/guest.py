"""A guest's own journal, shared with the host as the microvm.nix FAQ sets it up: a share whose
mount point in the guest is /var/log/journal, so its source on the host holds
``<machine-id>/*.journal``.

The share source is declared by the VM's runner, but what is inside it is written by the guest:
the machine-id directory and the files are opened without following links (at directory fds),
must be a directory and regular files, and journalctl is handed the open files
(``--file=/proc/self/fd/N``), so nothing can be swapped in between the check and the read.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from tui.host.model import VM

MACHINE_ID = re.compile(r"[0-9a-f]{32}\Z")
MAX_ENTRIES = 4096  # names looked at in one directory
MAX_FILES = 256  # journal files handed to journalctl

FAQ_HINT = """\
No guest journal found in {vm}'s shares. To have one (microvm.nix FAQ, "How to centralize
logging with journald?"), add to the VM's NixOS configuration:

  microvm.shares = [ {{
    # On the host
    source = "/var/lib/microvms/${{config.networking.hostName}}/journal";
    # In the MicroVM
    mountPoint = "/var/log/journal";
    tag = "journal";
    proto = "virtiofs";
    socket = "journal.sock";
  }} ];
  # journald names its directory after /etc/machine-id: make it fixed
  microvm.machineId = "<32 hex digits, e.g. from systemd-id128 new>";
"""

_OPEN_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK


@dataclass(frozen=True)
class GuestJournal:
    share_tag: str
    source: str  # the share's source directory on the host
    machine_id: str


def _source_path(vm: VM, source: str) -> str:
    # A relative source is relative to the state dir (the unit's WorkingDirectory).
    return source if os.path.isabs(source) else os.path.join(str(vm.path), source)


def _names(fd: int) -> list[str]:
    names = []
    with os.scandir(fd) as it:
        for entry in it:
            names.append(entry.name)
            if len(names) >= MAX_ENTRIES:
                break
    return sorted(names)


def _machine_ids(dir_fd: int) -> list[str]:
    found = []
    for name in _names(dir_fd):
        if not MACHINE_ID.match(name):
            continue
        with contextlib.suppress(OSError):
            st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                found.append(name)
    return found


def machine_id_dirs(source: str) -> list[str]:
    """The machine-id directories in a journal share's SOURCE (opened without following a
    link at its last component). Raises OSError."""
    fd = os.open(source, _OPEN_DIR)
    try:
        return _machine_ids(fd)
    finally:
        os.close(fd)


def find_guest_journal(vm: VM) -> tuple[GuestJournal | None, str]:
    """The VM's guest journal, or None and why not (one line, or the FAQ hint)."""
    seen: list[str] = []
    for share in vm.shares:
        if not share.source:
            continue
        source = _source_path(vm, share.source)
        try:
            fd = os.open(source, _OPEN_DIR)
        except OSError as exc:
            seen.append(f"{share.tag}: {exc.strerror}")
            continue
        try:
            ids = _machine_ids(fd)
        except OSError as exc:
            seen.append(f"{share.tag}: {exc.strerror}")
            continue
        finally:
            os.close(fd)
        if len(ids) > 1:
            return None, (
                f"share {share.tag!r} holds {len(ids)} machine-id directories: set a fixed"
                " microvm.machineId and remove the others"
            )
        if ids:
            return GuestJournal(share.tag, source, ids[0]), ""
    why = FAQ_HINT.format(vm=vm.name)
    if seen:
        why += "\n(shares that could not be read: " + "; ".join(seen) + ")"
    return None, why


@contextlib.contextmanager
def opened_journal_files(
    journal: GuestJournal,
) -> Iterator[tuple[tuple[str, ...], tuple[int, ...]]]:
    """The guest journal's files, opened: (``--file`` arguments, fds to hand to journalctl)."""
    fds: list[int] = []
    try:
        top = os.open(journal.source, _OPEN_DIR)
        fds.append(top)
        mid = os.open(journal.machine_id, _OPEN_DIR, dir_fd=top)
        fds.append(mid)
        files: list[int] = []
        for name in _names(mid):
            if not (name.endswith(".journal") or name.endswith(".journal~")):
                continue
            try:
                fd = os.open(name, _OPEN_FILE, dir_fd=mid)
            except OSError:
                continue  # a link or a name that went away
            fds.append(fd)
            if stat.S_ISREG(os.fstat(fd).st_mode):
                files.append(fd)
            if len(files) >= MAX_FILES:
                break
        yield tuple(f"/proc/self/fd/{fd}" for fd in files), tuple(files)
    finally:
        for fd in fds:
            with contextlib.suppress(OSError):
                os.close(fd)
