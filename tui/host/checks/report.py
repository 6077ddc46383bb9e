"""All host checks, once: what the app runs once a minute off the poll (and ``microvm-tui
checks`` prints). Each check's failure to run is one line in ``errors``, never a traceback."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterable

from tui.host.checks import leftovers, vm_checks
from tui.host.checks.findings import CheckReport
from tui.host.links import Link
from tui.host.model import VM, Inventory
from tui.host.sampling.cgroup import CgroupLayout
from tui.host.settings import HostSettings
from tui.host.systemd import Systemctl, SystemdError

MAX_PIDS = 1024


def _has_block_volume(vm: VM) -> bool:
    for volume in vm.volumes:
        path = vm_checks.in_state_dir(vm, volume.image)
        with contextlib.suppress(OSError):
            if stat.S_ISBLK(os.stat(path).st_mode):
                return True
    return False


def cgroup_pids(layout: CgroupLayout, control_group: str) -> list[int]:
    """The processes of a unit's cgroup (v2), bounded; [] when it cannot be read."""
    directory = layout.v2_dir(control_group) if control_group else None
    if directory is None:
        return []
    try:
        fd = os.open(directory / "cgroup.procs", os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return []
    try:
        text = os.read(fd, 65536).decode("ascii", "replace")
    except OSError:
        return []
    finally:
        os.close(fd)
    return [int(p) for p in text.split()[:MAX_PIDS] if p.isdigit()]


def _default_user(settings: HostSettings) -> str:
    # No User=: the manager's own user (root for the system manager).
    return "root" if settings.systemd_scope == "system" else str(os.getuid())


def run_checks(
    inventory: Inventory,
    settings: HostSettings,
    layout: CgroupLayout,
    *,
    systemd: Systemctl | None = None,
    read_links: Callable[[str | None], Iterable[Link]] | None = None,
) -> CheckReport:
    started = time.monotonic()
    report = CheckReport()
    systemd = systemd or Systemctl(settings)
    vms = inventory.vms
    names = {vm.name for vm in vms}

    # Which units to ask about: main units of VMs with a block-device volume (User=), and
    # running virtiofsd helpers (their cgroup). Loaded units only: `show` loads what it is asked.
    users_of = [vm for vm in vms if vm.unit and vm.unit.load == "loaded" and _has_block_volume(vm)]
    virtiofsd = {
        vm.name: h.name
        for vm in vms
        for h in vm.helper_units
        if h.name.startswith("microvm-virtiofsd@") and h.active == "active"
    }
    asked = [f"microvm@{vm.name}.service" for vm in users_of] + list(virtiofsd.values())
    props: dict[str, dict[str, str]] = {}
    if asked:
        try:
            props = systemd.properties(asked, ["User", "SupplementaryGroups", "ControlGroup"])
        except SystemdError as exc:
            report.errors.append(f"host checks: {exc}")

    for vm in users_of:
        unit = props.get(f"microvm@{vm.name}.service")
        if unit is None:
            continue
        run_as = vm_checks.RunAs.lookup(
            unit.get("User") or _default_user(settings),
            unit.get("SupplementaryGroups", "").split(),
        )
        if isinstance(run_as, str):
            report.errors.append(f"{vm.name}: {run_as}")
            continue
        report.findings += vm_checks.block_device_access(vm, run_as)

    for vm in vms:
        helper = virtiofsd.get(vm.name)
        if helper and helper in props:
            pids = cgroup_pids(layout, props[helper].get("ControlGroup", ""))
            report.findings += vm_checks.virtiofs_replaced(vm, pids)
        report.findings += vm_checks.journal_machine_id(vm, has_booted=vm.booted is not None)

    try:
        units = systemd.list_units(["microvm@*"])
    except SystemdError as exc:
        report.errors.append(f"host checks: {exc}")
    else:
        report.findings += leftovers.orphan_units(units, names)
    try:
        report.findings += leftovers.stale_gcroots(settings.gcroots_dir, names)
    except OSError as exc:
        report.errors.append(f"cannot read {settings.gcroots_dir}: {exc.strerror or exc}")
    if read_links is None:
        from tui.host.rtnl import read_all_links  # imports pyroute2 on use: 0.15-0.6 s

        def read_links(netns: str | None) -> Iterable[Link]:
            return read_all_links(netns).values()

    try:
        links = read_links(settings.netns)
    except Exception as exc:  # LinkReadError and anything pyroute2 raises: one line
        report.errors.append(str(exc))
    else:
        report.findings += leftovers.orphan_links(links, leftovers.named_links(vms), settings.netns)
    report.findings += leftovers.stale_sockets(vms)
    report.took_ms = (time.monotonic() - started) * 1000
    return report
