"""Per-VM checks from the microvm.nix FAQ: a block-device volume the hypervisor's user cannot
open, a virtiofs source replaced after its virtiofsd started, a journal share without exactly
one machine-id directory.

Only ``stat`` is used on what the VM's data names (never an open): a volume path may be a
``/dev/disk/by-*`` link, and a share source a sops-nix ``/run/secrets`` link, so both are
followed, which is what the hypervisor and virtiofsd did when they started.
"""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
import stat
from collections.abc import Iterable
from dataclasses import dataclass

from tui.host.checks.findings import CheckKind, Finding
from tui.host.logs.guest import machine_id_dirs
from tui.host.model import VM

MAX_FDS = 4096  # fds looked at per virtiofsd process
JOURNAL_MOUNT_TAG = "journal"


@dataclass(frozen=True)
class RunAs:
    """The user a VM's hypervisor runs as (the unit's ``User=``; microvm on NixOS)."""

    name: str
    uid: int
    gids: frozenset[int]

    @classmethod
    def lookup(cls, user: str, extra_groups: Iterable[str] = ()) -> RunAs | str:
        """RunAs for USER (a name or a number) with its groups and the unit's
        ``SupplementaryGroups``; or why not (one line)."""
        try:
            entry = pwd.getpwuid(int(user)) if user.isdigit() else pwd.getpwnam(user)
        except (KeyError, ValueError):
            return f"the hypervisor's user {user!r} does not exist on this host"
        gids = {entry.pw_gid}
        with contextlib.suppress(OSError):
            gids.update(os.getgrouplist(entry.pw_name, entry.pw_gid))
        for group in extra_groups:
            with contextlib.suppress(KeyError, ValueError):
                gids.add(int(group) if group.isdigit() else grp.getgrnam(group).gr_gid)
        return cls(entry.pw_name, entry.pw_uid, frozenset(gids))

    def may(self, st: os.stat_result, write: bool) -> bool:
        """May this user open the file of ST for reading (and writing), by its mode bits?
        (ACLs from udev's uaccess are not looked at: they are for desktop seats.)"""
        if self.uid == 0:
            return True
        if st.st_uid == self.uid:
            read, wr = stat.S_IRUSR, stat.S_IWUSR
        elif st.st_gid in self.gids:
            read, wr = stat.S_IRGRP, stat.S_IWGRP
        else:
            read, wr = stat.S_IROTH, stat.S_IWOTH
        mode = st.st_mode
        return bool(mode & read) and (not write or bool(mode & wr))


def in_state_dir(vm: VM, path: str) -> str:
    # A relative volume or share path is relative to the state dir (the unit's working dir).
    return path if os.path.isabs(path) else os.path.join(str(vm.path), path)


def block_device_access(vm: VM, run_as: RunAs) -> list[Finding]:
    found = []
    for volume in vm.volumes:
        path = in_state_dir(vm, volume.image)
        try:
            st = os.stat(path)
        except OSError:
            continue  # a missing volume is the listing's problem, said there
        if not stat.S_ISBLK(st.st_mode):
            continue
        write = not volume.read_only
        if run_as.may(st, write):
            continue
        try:
            group = grp.getgrgid(st.st_gid).gr_name
        except KeyError:
            group = str(st.st_gid)
        need = "read and write" if write else "read"
        found.append(
            Finding(
                CheckKind.BLOCK_DEVICE_ACCESS,
                vm.name,
                f"volume {path} is a block device ({group}, mode {stat.S_IMODE(st.st_mode):o})"
                f" that {run_as.name} cannot {need}",
                f'add users.users.{run_as.name}.extraGroups = [ "{group}" ] or a udev rule'
                " for this device",
                vm=vm.name,
            )
        )
    return found


def held_directories(pids: Iterable[int]) -> set[tuple[int, int]]:
    """(device, inode) of every directory the processes PIDS hold: their root, their working
    directory and their open directory fds (virtiofsd holds its shared dir one of these ways:
    pivot_root into it, or an O_PATH fd)."""
    held: set[tuple[int, int]] = set()

    def add(path: str) -> None:
        with contextlib.suppress(OSError):
            st = os.stat(path)
            if stat.S_ISDIR(st.st_mode):
                held.add((st.st_dev, st.st_ino))

    for pid in pids:
        add(f"/proc/{pid}/root")
        add(f"/proc/{pid}/cwd")
        try:
            with os.scandir(f"/proc/{pid}/fd") as it:
                for n, entry in enumerate(it):
                    if n >= MAX_FDS:
                        break
                    add(entry.path)
        except OSError:
            continue
    return held


def virtiofs_replaced(vm: VM, virtiofsd_pids: list[int]) -> list[Finding]:
    """Shares whose source is now another directory than the one virtiofsd holds."""
    if not virtiofsd_pids:
        return []
    held = held_directories(virtiofsd_pids)
    if not held:
        return []  # the processes went away (or cannot be read): nothing to compare
    found = []
    for share in vm.shares:
        if share.proto != "virtiofs" or not share.source:
            continue
        source = in_state_dir(vm, share.source)
        try:
            st = os.stat(source)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) in held:
            continue
        found.append(
            Finding(
                CheckKind.VIRTIOFS_REPLACED,
                vm.name,
                f"share {share.tag!r}: {source} was replaced after its virtiofsd started;"
                " the guest still sees the old directory",
                "restart the VM, or set sops.keepGenerations = 0 (sops-nix secrets)",
                vm=vm.name,
            )
        )
    return found


def _is_journal_share(vm: VM, tag: str, source: str) -> bool:
    # The mount point lives in the guest's config; the FAQ's share is tagged and named
    # "journal" (source STATE/NAME/journal).
    return tag == JOURNAL_MOUNT_TAG or os.path.basename(source.rstrip("/")) == "journal"


def journal_machine_id(vm: VM, has_booted: bool) -> list[Finding]:
    found = []
    for share in vm.shares:
        if not share.source or not _is_journal_share(vm, share.tag, share.source):
            continue
        source = in_state_dir(vm, share.source)
        try:
            ids = machine_id_dirs(source)
        except OSError:
            continue
        if len(ids) == 1 or (not ids and not has_booted):
            continue  # one directory; or a guest that never ran has not written one yet
        what = "no machine-id directory" if not ids else f"{len(ids)} machine-id directories"
        found.append(
            Finding(
                CheckKind.JOURNAL_MACHINE_ID,
                vm.name,
                f"journal share {share.tag!r} ({source}) holds {what}",
                'give the guest a fixed machine-id: microvm.machineId = "<32 hex digits>"'
                " (systemd-id128 new), then remove the other directories",
                vm=vm.name,
            )
        )
    return found
