"""The fleet view's two tables: one row per host (``HostsTable``: reachability or ssh's
reason, round-trip time, VMs by state, drift, host CPU and memory) and one row per VM of
every host (``FleetTable``: a Host column first, keys ``HOST/NAME``), with a filter, a host
to show alone and a sort that all work across hosts.

Rows are made from plain data (``HostStatus``, ``FleetSnapshot``); every outside string goes
through ``clean`` and into ``Text``, never markup.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from tui.feed.fleet import FleetSnapshot, HostStatus
from tui.host.model import Drift
from tui.widgets.format import DASH, clean, percent, size
from tui.widgets.table import RowTable
from tui.widgets.vm_state import counts_by_state, drift_badge, vm_state

DRIFT_SHOWN = (Drift.STALE, Drift.BROKEN)  # what a host row counts: runners to look at
LEVEL_STYLE = {"ok": "green", "warn": "yellow", "error": "bold red", "muted": "dim", None: ""}


def _text(value: object, level: str | None = None) -> Text:
    return Text(clean(str(value), 200), style=LEVEL_STYLE.get(level, ""), no_wrap=True)


def _same(a: Text, b: Text) -> bool:
    return a.plain == b.plain and a.style == b.style


# --- hosts ----------------------------------------------------------------------------------


def host_cells(status: HostStatus) -> list[Text]:
    snap = status.snapshot
    if status.reachable:
        reach = _text("up" + (" (read-only)" if status.read_only else ""), "ok")
    elif status.error is not None:
        reach = _text(f"down: {status.error}", "error")
    else:
        reach = _text("connecting…", "muted")
    rtt = DASH if status.local else (f"{status.rtt_ms:.0f} ms" if status.rtt_ms else DASH)
    states = DASH
    drift = DASH
    cpu = mem = DASH
    if snap is not None:
        vms = snap.inventory.vms
        counted = counts_by_state(vms, snap.samples, snap.crash_looping)
        # The State column's markers, counted: "●4 ⟳1 ○2" (compact: ssh's reason needs room).
        states = " ".join(f"{b.marker}{n}" for b, n in counted) or "no VMs"
        by_drift = Counter(vm.drift for vm in vms)
        off = [f"{n} {d.value}" for d, n in ((d, by_drift[d]) for d in DRIFT_SHOWN) if n]
        drift = " ".join(off) or "all current"
        if snap.host is not None:
            cpu = percent(snap.host.cpu_pct)
            mem = f"{size(snap.host.mem_used_bytes)}/{size(snap.host.mem_total_bytes)}"
    return [  # the reason last: a long ssh line is what gets cut at the right edge
        _text(status.name + (" (this host)" if status.local else "")),
        _text(rtt),
        _text(states),
        _text(drift, "warn" if drift not in (DASH, "all current") else None),
        _text(cpu),
        _text(mem),
        reach,
    ]


HOST_COLUMNS = ("Host", "RTT", "VMs", "Drift", "CPU", "Memory", "Reachable")


class HostsTable(DataTable):
    """One row per host, in the config's order (this host first)."""

    DEFAULT_CSS = "HostsTable { height: auto; max-height: 12; overflow-x: hidden; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(cursor_type="none", zebra_stripes=False, **kwargs)
        self.can_focus = False

    def on_mount(self) -> None:
        for label in HOST_COLUMNS:
            self.add_column(label, key=label)

    def show(self, hosts: list[HostStatus]) -> None:
        rows = [(status.name, host_cells(status)) for status in hosts]
        if [key for key, _ in rows] != [key.value for key in self.rows]:
            self.clear()
            for key, cells in rows:
                self.add_row(*cells, key=key)
            return
        for key, cells in rows:
            for column, cell in zip(HOST_COLUMNS, cells, strict=True):
                if not _same(self.get_cell(key, column), cell):
                    self.update_cell(key, column, cell)


# --- VMs of every host ----------------------------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    key: str  # HOST/NAME
    host: str
    name: str
    cells: tuple[Text, ...]
    sort: dict[str, Any]


VM_COLUMNS = ("Host", "VM", "State", "Drift", "CPU", "Memory")
SORTS = ("host", "name", "state", "cpu", "memory")


def fleet_rows(snap: FleetSnapshot) -> list[FleetRow]:
    rows = []
    order = {s.name: i for i, s in enumerate(snap.hosts)}  # the config's order, this host first
    for vm in snap.inventory.vms:
        host, name = snap.members.get(vm.name, ("?", vm.name))
        at = order.get(host, len(order))
        sample = snap.samples.get(vm.name)
        badge = vm_state(vm, sample, vm.name in snap.crash_looping)
        drift = drift_badge(vm)
        cpu = sample.cpu_pct_of_vcpus if sample else None
        mem = sample.mem_host_bytes if sample else None
        rows.append(
            FleetRow(
                key=vm.name,
                host=host,
                name=name,
                cells=(
                    _text(host),
                    _text(name),
                    _text(f"{badge.marker} {badge.label}", badge.level),
                    _text(f"{drift.marker} {drift.label}", drift.level),
                    _text(percent(cpu)),
                    _text(size(mem) if mem is not None else DASH),
                ),
                sort={
                    "host": (at, name),
                    "name": (name, at),
                    "state": (badge.rank, at, name),
                    "cpu": (-(cpu or 0.0), at, name),
                    "memory": (-(mem or 0), at, name),
                },
            )
        )
    return rows


class FleetTable(RowTable):
    """Every host's VMs, row keys ``HOST/NAME``. Filter: a text in the host, the name or the
    state; ``host``: one host only (the host switcher)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.rows_data: list[FleetRow] = []
        self.filter_text = ""
        self.host: str | None = None
        self.sort_by = "host"
        self.reverse = False
        self._keys: list[str] = []  # the rows on screen, in order
        self._cells: dict[str, tuple[Text, ...]] = {}  # what each shows

    def on_mount(self) -> None:
        for label in VM_COLUMNS:
            self.add_column(label, key=label)

    def matches(self, row: FleetRow) -> bool:
        if self.host is not None and row.host != self.host:
            return False
        needle = self.filter_text.casefold()
        if not needle:
            return True
        return any(needle in cell.plain.casefold() for cell in row.cells[:3])

    def show(self, rows: list[FleetRow]) -> None:
        self.rows_data = rows
        self.refill()

    def refill(self) -> None:
        """The rows that match, in order; the cursor stays on its VM (by row key). With the
        same rows in the same order (most polls: figures change, VMs do not) only the cells
        that changed are set, the table is not rebuilt."""
        shown = sorted(
            (r for r in self.rows_data if self.matches(r)),
            key=lambda r: r.sort[self.sort_by],
            reverse=self.reverse,
        )
        keys = [r.key for r in shown]
        if keys == self._keys:
            for row in shown:
                before = self._cells.get(row.key)
                for i, (column, cell) in enumerate(zip(VM_COLUMNS, row.cells, strict=True)):
                    if before is None or not _same(before[i], cell):
                        self.update_cell(row.key, column, cell, update_width=False)
                self._cells[row.key] = row.cells
            return
        selected = self.selected_key
        self.clear()
        for row in shown:
            self.add_row(*row.cells, key=row.key)
        self._keys = keys
        self._cells = {r.key: r.cells for r in shown}
        if selected is not None and selected in self.rows:
            self.move_cursor(row=self.get_row_index(selected))

    @property
    def matched(self) -> int:
        return self.row_count

    @property
    def selected_key(self) -> str | None:
        return self.row_key_at(self.cursor_row)

    def cycle_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.refill()

    def reverse_sort(self) -> None:
        self.reverse = not self.reverse
        self.refill()
