"""The VM list's rows as data: its columns (order, labels, natural sort direction), ``RowData``
(one VM as the table needs it), what a row's cells depend on (``row_signature``) and what each
column sorts by (``sort_values``). The widget is ``tui.widgets.vm_table``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui.host.logs.summary import ProblemCounts
from tui.host.model import VM
from tui.host.sampling import VMSample
from tui.widgets.vm_state import drift_badge, vm_state


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    descending: bool = False  # the natural first direction (numbers: biggest first)


# The columns that change every poll come first: Textual repaints a changed cell from the
# start of its line, so the further left the live figures are, the fewer bytes go out.
COLUMNS = (
    Column("name", "Name"),
    Column("state", "State"),
    Column("cpu", "CPU% (vCPUs)", True),
    Column("memory", "Mem host/cfg", True),
    Column("net", "Net ↓rx ↑tx", True),
    Column("vcpu", "vCPU", True),
    Column("hypervisor", "Hypervisor"),
    Column("drift", "Drift"),
    Column("restarts", "Restarts", True),
    Column("log", "Log 1h", True),
    Column("problems", "Problems", True),
)
COLUMN_KEYS = tuple(c.key for c in COLUMNS)
COLUMN_BY_KEY = {c.key: c for c in COLUMNS}
# Left out on a narrow terminal: the vCPU count is in the CPU figure's meaning and the
# Overview, the hypervisor in the Overview.
NARROW_DROPS = frozenset({"vcpu", "hypervisor"})


@dataclass
class RowData:
    """One VM as the table needs it."""

    vm: VM
    sample: VMSample | None = None
    cpu_history: list[float | None] | None = None
    crash_looping: bool = False
    busy: str | None = None  # the title of a job running on the VM
    marked: bool = False  # marked for a bulk action
    # err/warning lines its units logged in the last hour; None: the journal not read yet
    log: ProblemCounts | None = None


def row_signature(row: RowData) -> tuple[Any, ...] | None:
    """Everything the cells and sort values of a row WITHOUT a sample depend on: while it is
    the same, the row is left as it is (a stopped VM's row rarely changes; at 2000 rows
    making every cell afresh each poll held the UI thread for a second). None for a sampled
    row: its figures change every poll."""
    if row.sample is not None or row.cpu_history:
        return None
    vm, unit = row.vm, row.vm.unit
    return (
        (unit.active, unit.sub, unit.restarts) if unit is not None else None,
        row.crash_looping,
        vm.vcpu,
        vm.mem_mib,
        vm.hypervisor,
        vm.drift,
        tuple(vm.problems),
        bool(vm.interfaces),
        row.busy,
        row.marked,
        row.log,
    )


def sort_values(row: RowData) -> dict[str, Any]:
    """What each column sorts by; None = unknown (always sorted last)."""
    vm, s = row.vm, row.sample
    state = vm_state(vm, s, row.crash_looping)
    net = None
    if s is not None and s.net:
        net = sum(r.guest_rx_bps + r.guest_tx_bps for r in s.net.values())
    restarts = vm.unit.restarts if vm.unit else None
    return {
        "name": vm.name.lower(),
        "state": (state.rank, state.label),
        "hypervisor": vm.hypervisor,
        "vcpu": (s.vcpu_count if s else None) or vm.vcpu,
        "cpu": s.cpu_pct_of_vcpus if s else None,
        "memory": s.mem_host_bytes if s else None,
        "net": net,
        "drift": drift_badge(vm).rank,
        "restarts": restarts,
        "log": (row.log.errors, row.log.warnings) if row.log is not None else None,
        "problems": len(vm.problems) or None,
    }


# What these columns sort by is read from the state dirs. Every other column sorts rows
# without a sample and before systemd's answer (a first look) by name alone: their values
# are unknown or the same ("asking systemd").
STATE_DIR_COLUMNS = frozenset({"vcpu", "hypervisor", "drift", "problems"})


def first_by_name(column: str | None, reverse: bool | None) -> bool | None:
    """Where the table sorted by COLUMN (None: by name), REVERSE (None: the column's natural
    direction) puts the first look's rows: False: the first names on top, True: the last
    names; None: it depends on what the state dirs hold (every VM must be read)."""
    col = COLUMN_BY_KEY.get(column or "name", COLUMN_BY_KEY["name"])
    if col.key in STATE_DIR_COLUMNS:
        return None
    return col.descending if reverse is None else reverse
