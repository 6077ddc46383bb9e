"""How a VM's state reads on screen: a marker, a word and a level (for the colour).

Shared by the table, the header and the detail pane so they always agree.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass

from tui.host.model import PENDING, VM, Drift
from tui.host.sampling import VMSample


@dataclass(frozen=True)
class Badge:
    marker: str
    label: str
    level: str  # ok / warn / error / muted
    rank: int = 0  # for sorting: most alive first

    @property
    def text(self) -> str:
        return f"{self.marker} {self.label}"


def vm_state(vm: VM, sample: VMSample | None, crash_looping: bool = False) -> Badge:
    """CRASH_LOOPING: the unit's restarts are climbing (``tui.host.crashloop``); that says more
    than the state of the moment, which cycles through activating, active and, for an instant
    of each restart, inactive: a crash loop is one steady state."""
    unit = vm.unit
    active = unit.active if unit and unit.active else "unknown"
    sub = unit.sub if unit else None
    if active == PENDING:
        return Badge("…", "asking systemd", "muted", 5)
    if crash_looping:
        return Badge("⟳", "crash-looping", "error", 3)
    if active == "active":
        status = sample.qmp_status if sample else None
        if status is None or status == "running":
            return Badge("●", "running" if status else "active", "ok", 0)
        if status in ("paused", "suspended", "prelaunch", "inmigrate", "postmigrate"):
            return Badge("‖", status, "warn", 1)
        return Badge("◆", status, "error", 1)  # shutdown, guest-panicked, internal-error...
    if active in ("activating", "reloading"):
        # The sub-state says more ("auto-restart", "start-pre") and keeps the column narrow.
        label = active if not sub or sub in (active, "start") else sub
        return Badge("◐", label, "warn", 2)
    if active == "deactivating":
        return Badge("◑", "deactivating", "warn", 2)
    if active == "failed":
        return Badge("✖", "failed", "error", 3)
    if active == "inactive":
        return Badge("○", "inactive", "muted", 4)
    return Badge("?", active, "warn", 5)


DRIFT = {
    Drift.CURRENT: Badge("=", "current", "ok", 0),
    Drift.STALE: Badge("↻", "stale", "warn", 1),
    Drift.NOT_BOOTED: Badge("-", "not-booted", "muted", 2),
    Drift.BROKEN: Badge("✖", "broken", "error", 3),
}


def drift_badge(vm: VM) -> Badge:
    return DRIFT.get(vm.drift, Badge("?", str(vm.drift), "warn", 4))


def counts_by_state(
    vms: list[VM], samples: dict[str, VMSample], crash_looping: Collection[str] = ()
) -> list[tuple[Badge, int]]:
    """(badge, count) per state seen, most alive first."""
    seen: dict[tuple[str, str], tuple[Badge, int]] = {}
    for vm in vms:
        badge = vm_state(vm, samples.get(vm.name), vm.name in crash_looping)
        key = (badge.marker, badge.label)
        b, n = seen.get(key, (Badge(badge.marker, key[1], badge.level, badge.rank), 0))
        seen[key] = (b, n + 1)
    return sorted(seen.values(), key=lambda bn: (bn[0].rank, bn[0].label))
