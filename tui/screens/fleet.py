"""The fleet view (``--all-hosts``): a row per host, then every host's VMs in one table.

Shown over the monitor (``MainScreen`` stays below and keeps receiving the fleet's
snapshots under ``HOST/NAME`` keys): Enter on a VM closes this view and opens that VM's usual
detail there; ``c`` and ``l`` open its console and logs (through its host's agent for a
remote host's VM). ``:`` picks a host to show alone (``HostPicker``), as do the palette's
"Host: NAME" entries. The app calls ``show`` after every poll.
"""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen, Screen
from textual.widgets import Footer, OptionList, Static
from textual.widgets.option_list import Option

from tui.actions.app_mixin import FooterBindings
from tui.feed.fleet import FleetSnapshot
from tui.widgets.filter_bar import FilterBar
from tui.widgets.fleet_table import FleetTable, HostsTable, fleet_rows
from tui.widgets.format import clean
from tui.widgets.outside import outside_text

ALL_HOSTS = ""  # the picker's option id for "every host"


class HostPicker(ModalScreen[str | None]):
    """Which host to show: every host, or one (its reachability beside its name)."""

    DEFAULT_CSS = """
    HostPicker { align: center middle; }
    HostPicker > OptionList { width: 80; height: auto; max-height: 20; border: round $accent; }
    """
    BINDINGS = [Binding("escape", "close", "Close", id="hosts.close")]

    def __init__(self, snapshot: FleetSnapshot | None, current: str | None) -> None:
        super().__init__()
        self.snapshot = snapshot
        self.current = current

    def compose(self) -> ComposeResult:
        options = [Option("All hosts", id=ALL_HOSTS)]
        for status in self.snapshot.hosts if self.snapshot else []:
            why = "up" if status.reachable else f"down: {status.error or 'connecting'}"
            label = f"{status.name}  ({why})"
            options.append(Option(outside_text(clean(label, 120)), id=status.name))
        yield OptionList(*options, id="host-options")

    def on_mount(self) -> None:
        options = self.query_one(OptionList)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        current = self.current if self.current is not None else ALL_HOSTS
        options.highlighted = ids.index(current) if current in ids else 0
        options.focus()

    @on(OptionList.OptionSelected)
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id or ALL_HOSTS)

    def action_close(self) -> None:
        self.dismiss(None)


class FleetScreen(FooterBindings, Screen[str | None]):
    """Dismissed with the key of the VM to open (Enter), or None (Esc)."""

    DEFAULT_CSS = """
    FleetScreen { layout: vertical; }
    FleetScreen > #fleet-title { height: 1; padding: 0 1; background: $boost; }
    FleetScreen > FleetTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("colon", "pick_host", "Host", key_display=":", id="fleet.host"),
        Binding("slash", "fleet_filter", "Filter", key_display="/", id="fleet.filter"),
        Binding("s", "fleet_sort", "Sort", id="fleet.sort"),
        Binding("S", "fleet_sort_reverse", "Reverse sort", id="fleet.sort_reverse"),
        Binding("escape", "back", "Monitor", id="fleet.back"),
        # The app's console and logs, of this table's VM (its host's: tui/agent/views.py).
        Binding("c", "app.console", "Console", show=False, id="fleet.console"),
        Binding("l", "app.logs", "Logs", show=False, id="fleet.logs"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: FleetSnapshot | None = None
        self._title_text = ""

    def compose(self) -> ComposeResult:
        yield Static(id="fleet-title")
        yield HostsTable(id="fleet-hosts")
        yield FilterBar(id="fleet-filter")
        yield FleetTable(id="fleet-vms")
        yield Footer()

    def on_mount(self) -> None:
        self.table.focus()
        self._title()

    @property
    def table(self) -> FleetTable:
        return self.query_one(FleetTable)

    fleet_selection = True  # the app's actions take this table's VM (ActionsAppMixin)

    @property
    def selected_name(self) -> str | None:
        """The fleet key under the cursor: what an action key acts on here."""
        return self.table.selected_key

    def show(self, snapshot: FleetSnapshot) -> None:
        self.snapshot = snapshot
        with self.app.batch_update():
            self.query_one(HostsTable).show(snapshot.hosts)
            self.table.show(fleet_rows(snapshot))
            self._title()

    def _title(self) -> None:
        snap = self.snapshot
        table = self.table
        parts = ["Fleet"]
        if snap is not None:
            up = sum(1 for s in snap.hosts if s.reachable)
            parts.append(f"{len(snap.hosts)} hosts, {up} reachable")
            parts.append(f"{len(snap.inventory.vms)} VMs")
        if table.host is not None:
            parts.append(f"host {table.host} only")
        if table.filter_text:
            parts.append(f"{table.matched} match “{table.filter_text}”")
        parts.append(f"sort: {table.sort_by}{' (reversed)' if table.reverse else ''}")
        title = " · ".join(parts)
        if title != self._title_text:  # Static.update asks for a relayout: only on change
            self._title_text = title
            self.query_one("#fleet-title", Static).update(outside_text(clean(title)))

    def show_host(self, host: str | None) -> None:
        """Only HOST's VMs (None: every host's)."""
        self.table.host = host or None
        self.table.refill()
        self._title()

    # --- keys ----------------------------------------------------------------------------

    @on(FleetTable.Selected, "#fleet-vms")
    def _open_vm(self, event: FleetTable.Selected) -> None:
        """Enter on a VM (the table's own Enter): its detail on the monitor."""
        self.dismiss(event.row_key)

    def action_pick_host(self) -> None:
        def chosen(host: str | None) -> None:
            if host is not None:
                self.show_host(host)

        self.app.push_screen(HostPicker(self.snapshot, self.table.host), chosen)

    def action_fleet_filter(self) -> None:
        self.query_one(FilterBar).open()

    @on(FilterBar.Changed, "#fleet-filter")
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.table.filter_text = event.value
        self.table.refill()
        self._title()

    @on(FilterBar.Closed)
    def _filter_closed(self) -> None:
        self.table.focus()

    def action_fleet_sort(self) -> None:
        self.table.cycle_sort()
        self._title()

    def action_fleet_sort_reverse(self) -> None:
        self.table.reverse_sort()
        self._title()

    def action_back(self) -> None:
        self.dismiss(None)
