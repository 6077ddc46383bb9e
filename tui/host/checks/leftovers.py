"""What a VM removed from the config leaves behind (the upstream tracker's reports): a
``microvm@NAME`` unit still running, GC roots of VMs that are gone, taps and macvtaps no VM
names, control sockets of VMs that are not running."""

from __future__ import annotations

import contextlib
import os
import re
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path

from tui.host.checks.findings import CheckKind, CleanKind, CleanStep, Finding
from tui.host.links import Link
from tui.host.model import VM, UnitState
from tui.host.names import is_valid_name
from tui.host.text import sanitise

MAX_ENTRIES = 4096
GCROOT_NAME = re.compile(r"(?:booted-|old-)?(?P<vm>.+)\Z")
# A unit in one of these states works (or failed) for a VM: a loaded but inactive unit is only
# systemd's memory of it and costs nothing.
BUSY_STATES = frozenset({"active", "activating", "deactivating", "reloading", "failed"})
LINK_KINDS = frozenset({"tun", "macvtap"})


def orphan_units(units: Mapping[str, UnitState], vm_names: set[str]) -> list[Finding]:
    found = []
    for name, unit in sorted(units.items()):
        if not (name.startswith("microvm@") and name.endswith(".service")):
            continue
        vm = name[len("microvm@") : -len(".service")]
        if vm in vm_names or unit.active not in BUSY_STATES:
            continue
        found.append(
            Finding(
                CheckKind.ORPHAN_UNIT,
                name,
                f"{name} is {unit.active} but there is no state dir for {vm}",
                "the VM was removed from the configuration; stop the unit",
                clean=CleanStep(CleanKind.STOP_UNIT, name),
            )
        )
    return found


def gcroot_owner(name: str) -> str | None:
    """The VM a GC root's name is for (NAME, booted-NAME, old-NAME)."""
    match = GCROOT_NAME.match(name)
    return match.group("vm") if match else None


def stale_gcroots(gcroots_dir: Path, vm_names: set[str]) -> list[Finding]:
    found = []
    try:
        with os.scandir(gcroots_dir) as it:
            entries = [e for _, e in zip(range(MAX_ENTRIES), it, strict=False)]
    except FileNotFoundError:
        return []
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.is_symlink():
            continue
        vm = gcroot_owner(entry.name)
        if vm is None or vm in vm_names or not is_valid_name(vm):
            continue
        target = ""
        with contextlib.suppress(OSError):
            target = os.readlink(entry.path)
        found.append(
            Finding(
                CheckKind.STALE_GCROOT,
                entry.name,
                f"GC root {entry.path} -> {target} is for {vm}, which has no state dir",
                "the VM was deleted; remove the GC root so nix can collect its closure",
                clean=CleanStep(CleanKind.REMOVE_GCROOT, entry.name, directory=str(gcroots_dir)),
            )
        )
    return found


def named_links(vms: Iterable[VM]) -> set[str]:
    return {nic.id for vm in vms for nic in vm.interfaces}


def orphan_links(links: Iterable[Link], named: set[str], netns: str | None) -> list[Finding]:
    """Taps and macvtaps that no VM names and nothing uses: a persistent tap with no process
    attached (and a macvtap nobody opened) has no carrier. One in use belongs to someone
    else (libvirt's vnetN, a container) and is left alone."""
    found = []
    for link in links:
        name = sanitise(link.name)  # a link's name may hold any byte but '/', ':' and spaces
        if link.kind not in LINK_KINDS or name in named:
            continue
        if link.oper_state not in ("DOWN", "LOWERLAYERDOWN", "LOWER_LAYER_DOWN"):
            continue
        kind = "tap" if link.kind == "tun" else link.kind
        where = f" (network namespace {netns})" if netns else ""
        found.append(
            Finding(
                CheckKind.ORPHAN_TAP,
                name,
                f"{kind} {name}{where} is named by no VM and not in use",
                "left by a VM that was removed or renamed; delete the interface",
                clean=CleanStep(CleanKind.DELETE_LINK, name, netns=netns),
            )
        )
    return found


def deletable_link(link: Link) -> bool:
    """Still a tap or macvtap nobody uses, as the cleaning step checks just before deleting."""
    return link.kind in LINK_KINDS and link.oper_state != "UP"


def _not_running(vm: VM) -> bool:
    units = [vm.unit, *vm.helper_units] if vm.unit else []
    return bool(units) and all(u is not None and u.active in ("inactive", "failed") for u in units)


def vm_socket_names(vm: VM) -> list[str]:
    """The socket files a VM's runner declares that lie directly in its state dir."""
    paths = [vm.socket] + [s.socket for s in vm.shares]
    if vm.serial is not None and vm.serial.kind == "unix":
        paths.append(vm.serial.path)
    names = []
    for path in paths:
        if not path:
            continue
        full = path if os.path.isabs(path) else os.path.join(str(vm.path), path)
        if os.path.dirname(os.path.normpath(full)) == os.path.normpath(str(vm.path)):
            names.append(os.path.basename(full))
    return list(dict.fromkeys(names))


def stale_sockets(vms: Iterable[VM]) -> list[Finding]:
    """Control and share sockets left in the state dir of a VM whose units all stopped
    (a hypervisor that was killed does not remove its socket)."""
    found = []
    for vm in vms:
        if not _not_running(vm):
            continue
        for name in vm_socket_names(vm):
            with contextlib.suppress(OSError):
                st = os.lstat(os.path.join(str(vm.path), name))
                if stat.S_ISSOCK(st.st_mode):
                    found.append(
                        Finding(
                            CheckKind.STALE_SOCKET,
                            f"{vm.name}/{name}",
                            f"{vm.path}/{name} is left from a run that ended",
                            "nothing listens on it; remove it",
                            vm=vm.name,
                            clean=CleanStep(CleanKind.REMOVE_SOCKET, name, directory=str(vm.path)),
                        )
                    )
    return found
