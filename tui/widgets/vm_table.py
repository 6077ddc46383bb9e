"""The VM list: a DataTable diffed by VM name each refresh, never rebuilt."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import DataTable

from tui.host.model import VM

# (key, label): keys are stable column keys used for diffing and sorting.
COLUMNS = (
    ("name", "Name"),
    ("state", "State"),
    ("hypervisor", "Hypervisor"),
    ("vcpu", "vCPU"),
    ("memory", "Memory"),
    ("drift", "Drift"),
    ("restarts", "Restarts"),
    ("nics", "NICs"),
    ("problems", "Problems"),
)

STATE_STYLE = {
    "active": ("● ", "green"),
    "activating": ("◐ ", "yellow"),
    "deactivating": ("◑ ", "yellow"),
    "failed": ("✖ ", "red"),
    "inactive": ("○ ", "dim"),
}
DRIFT_STYLE = {
    "current": ("= ", "green"),
    "stale": ("↻ ", "yellow"),
    "not-booted": ("- ", "dim"),
    "broken": ("✖ ", "red"),
}


def _clean(text: str) -> str:
    return "".join(c if c.isprintable() else "?" for c in text)


def state_cell(vm: VM) -> Text:
    unit = vm.unit
    active = unit.active if unit and unit.active else "unknown"
    marker, style = STATE_STYLE.get(active, ("? ", "magenta"))
    label = active
    if unit and unit.sub and active not in ("unknown", unit.sub):
        label = f"{active} ({unit.sub})"
    return Text(marker + label, style=style)


def drift_cell(vm: VM) -> Text:
    marker, style = DRIFT_STYLE.get(str(vm.drift), ("? ", ""))
    return Text(marker + str(vm.drift), style=style)


def row_cells(vm: VM) -> dict[str, object]:
    nics = Text()
    for i, iface in enumerate(vm.interfaces):
        if i:
            nics.append(" ")
        missing = iface.exists is False
        nics.append(_clean(iface.id) + ("!" if missing else ""), style="red" if missing else "")
    problems = Text(
        f"⚠ {len(vm.problems)}: {_clean(vm.problems[0])}" if vm.problems else "",
        style="red",
    )
    restarts = vm.unit.restarts if vm.unit else None
    return {
        "name": Text(_clean(vm.name), style="bold"),
        "state": state_cell(vm),
        "hypervisor": vm.hypervisor or "?",
        "vcpu": "" if vm.vcpu is None else str(vm.vcpu),
        "memory": "" if vm.mem_mib is None else f"{vm.mem_mib} MiB",
        "drift": drift_cell(vm),
        "restarts": "" if restarts is None else str(restarts),
        "nics": nics,
        "problems": problems,
    }


class VMTable(DataTable):
    DEFAULT_CSS = """
    VMTable {
        height: 1fr;
    }
    """

    def on_mount(self) -> None:
        self.cursor_type = "row"
        self.zebra_stripes = True
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def update_vms(self, vms: list[VM]) -> None:
        """Diff the rows against VMS: remove gone rows, update changed cells, add new rows."""
        selected = self.selected_name
        wanted = {vm.name: vm for vm in vms}
        with self.app.batch_update():
            for key in list(self.rows):
                if key.value not in wanted:
                    self.remove_row(key)
            for vm in vms:
                cells = row_cells(vm)
                if vm.name in self.rows:
                    for column, value in cells.items():
                        if self.get_cell(vm.name, column) != value:
                            self.update_cell(vm.name, column, value)
                else:
                    self.add_row(*cells.values(), key=vm.name)
            if selected is not None:
                self.select_name(selected)

    @property
    def selected_name(self) -> str | None:
        if not self.rows or self.cursor_row < 0:
            return None
        try:
            return self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None

    def select_name(self, name: str) -> None:
        if name in self.rows:
            self.move_cursor(row=self.get_row_index(name))
