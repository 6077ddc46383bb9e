"""The fleet view's two tables: one row per host (``HostsTable``: reachability or ssh's
reason, round-trip time, VMs by state, drift, host CPU and memory) and one row per VM of
every host (``FleetTable``: a Host column first, keys ``HOST/NAME``), with a filter, a host
to show alone and a sort that all work across hosts.

Rows are made from plain data (``HostStatus``, ``FleetSnapshot``); every outside string goes
through ``clean`` and into ``Text``, never markup.
"""

from __future__ import annotations

import itertools
from collections import Counter
from dataclasses import dataclass
from typing import Any

from rich.text import Text

from tui.feed.fleet import FleetSnapshot, HostStatus
from tui.host.model import Drift
from tui.widgets.format import DASH, clean, percent, size
from tui.widgets.table import RowTable
from tui.widgets.vm_state import counts_by_state, drift_badge, vm_state

DRIFT_SHOWN = (Drift.STALE, Drift.BROKEN)  # what a host row counts: runners to look at
LEVEL_STYLE = {"ok": "green", "warn": "yellow", "error": "bold red", "muted": "dim", None: ""}


def _text(value: object, level: str | None = None) -> Text:
    return Text(clean(str(value), 200), style=LEVEL_STYLE.get(level, ""), no_wrap=True)


# --- the table both are -------------------------------------------------------------------


class FleetLines(RowTable):
    """A RowTable of the fleet's columns, shown a poll at a time (``RowTable.set_rows``: only
    the cells whose text or style changed are rendered again; the same rows with the same
    figures cost nothing, see ``render_stats``). A figure's column has a floor as wide as its
    usual widest value, and only widens while the same rows show: "9.9%" -> "10.2%" does not
    widen the column (and draw every row again) on a poll."""

    Selected = RowTable.RowSelected  # Enter (or a second click) on a row: ``row_key``

    def __init__(
        self,
        columns: tuple[str, ...],
        min_widths: tuple[int, ...],
        *,
        cursor: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(cursor=cursor, **kwargs)
        for i, (label, width) in enumerate(itertools.zip_longest(columns, min_widths)):
            if label is not None:
                self.add_column(label, key=str(i), min_width=width or 0)

    @property
    def keys(self) -> list[str]:
        return list(self.ordered_keys)

    @property
    def selected_key(self) -> str | None:
        return self.row_key_at(self.cursor_row) if self.show_cursor else None


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
HOST_MIN_WIDTHS = (0, len("999 ms"), 0, 0, len("99.9%"), len("9.9 GiB/9.9 GiB"))


class HostsTable(FleetLines):
    """One row per host, in the config's order (this host first)."""

    DEFAULT_CSS = "HostsTable { height: auto; max-height: 12; overflow-x: hidden; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(HOST_COLUMNS, HOST_MIN_WIDTHS, cursor=False, **kwargs)
        self.can_focus = False

    def show(self, hosts: list[HostStatus]) -> None:
        self.set_rows([(status.name, tuple(host_cells(status))) for status in hosts])


# --- VMs of every host ----------------------------------------------------------------------


@dataclass(frozen=True)
class FleetRow:
    key: str  # HOST/NAME
    host: str
    name: str
    cells: tuple[Text, ...]
    sort: dict[str, Any]


VM_COLUMNS = ("Host", "VM", "State", "Drift", "CPU", "Memory")
VM_MIN_WIDTHS = (0, 0, 0, 0, len("99.9%"), len("999.9 MiB"))
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


class FleetTable(FleetLines):
    """Every host's VMs, row keys ``HOST/NAME``. Filter: a text in the host, the name or the
    state; ``host``: one host only (the host switcher)."""

    DEFAULT_CSS = "FleetTable { height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(VM_COLUMNS, VM_MIN_WIDTHS, **kwargs)
        self.rows_data: list[FleetRow] = []
        self.filter_text = ""
        self.host: str | None = None
        self.sort_by = "host"
        self.reverse = False

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
        """The rows that match, in order; the cursor stays on its VM (by row key). Only the
        cells that changed are drawn again (``RowTable.set_rows``)."""
        shown = sorted(
            (r for r in self.rows_data if self.matches(r)),
            key=lambda r: r.sort[self.sort_by],
            reverse=self.reverse,
        )
        self.set_rows([(r.key, r.cells) for r in shown])

    @property
    def matched(self) -> int:
        return self.row_count

    def cycle_sort(self) -> None:
        self.sort_by = SORTS[(SORTS.index(self.sort_by) + 1) % len(SORTS)]
        self.refill()

    def reverse_sort(self) -> None:
        self.reverse = not self.reverse
        self.refill()
