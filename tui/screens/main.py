"""The monitor: host header, filter line, the VM table and the selected VM's detail tabs."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from textual import on
from textual.app import ComposeResult
from textual.screen import Screen
from textual.widget import Widget
from textual.widgets import Static

from tui.actions.app_mixin import FooterBindings
from tui.actions.registry import Scope, bindings
from tui.feed import Snapshot, VMView, per_vm
from tui.widgets.detail.base import DetailData
from tui.widgets.detail.pane import TAB_IDS, DetailPane
from tui.widgets.filter_bar import FilterBar
from tui.widgets.footer import KeysFooter
from tui.widgets.format import clean
from tui.widgets.host_header import HeaderData, HostHeader
from tui.widgets.outside import outside_text
from tui.widgets.vm_table import COLUMN_BY_KEY, RowData, VMTable

SPARK_POINTS = 8
W = TypeVar("W", bound=Widget)


class MainScreen(FooterBindings, Screen[None]):
    """Shows the app's latest ``Snapshot``; the app calls ``show`` after every poll."""

    DEFAULT_CSS = """
    MainScreen {
        layout: vertical;
    }
    MainScreen > #empty {
        height: auto;
        padding: 1 2;
        color: $text-muted;
        display: none;
    }
    MainScreen > #empty.-shown {
        display: block;
    }
    MainScreen > VMTable {
        height: auto;
        max-height: 50%;
    }
    MainScreen.-table-only > VMTable {
        max-height: 100%;
    }
    MainScreen > DetailPane {
        height: 1fr;
        min-height: 8;
    }
    MainScreen.-table-only > DetailPane {
        display: none;
    }
    """

    BINDINGS = bindings(Scope.MAIN)  # tui/actions/registry.py

    def __init__(self) -> None:
        super().__init__()
        self.snapshot: Snapshot | None = None
        self.views: dict[str, VMView] = {}  # the snapshot's VMs, joined once per show
        self.read_only_reason: str | None = None
        self.interval = 1.0
        self.error: str | None = None
        self._empty_text = ""
        self._widgets: dict[str, Widget] = {}  # composed once: found once, not every poll
        self.busy: dict[str, str] = {}  # VM name -> title of the job running on it
        self.marks: set[str] = set()  # VM names marked for a bulk action
        # Remembered from the last run (the app's state file), applied once mounted.
        self.initial_sort: tuple[str | None, bool | None] = (None, None)
        self.initial_tab: str | None = None
        self.on_composed: Callable[[], None] | None = None  # called once, mounted

    def compose(self) -> ComposeResult:
        yield HostHeader(id="header")
        yield FilterBar(id="filter")
        yield Static(id="empty")
        yield VMTable(id="vms")
        yield DetailPane(id="detail")
        yield KeysFooter()

    def on_mount(self) -> None:
        self.query_one(VMTable).focus()
        self._show_header()
        column, reverse = self.initial_sort
        if column in COLUMN_BY_KEY:
            self.table.set_sort(column, reverse)
        if self.initial_tab in TAB_IDS:
            self.query_one(DetailPane).show_tab(self.initial_tab)
        if self.on_composed is not None:
            self.on_composed()

    # --- data ------------------------------------------------------------------------------

    def _one(self, kind: type[W], selector: str | None = None) -> W:
        """``query_one(SELECTOR or KIND, KIND)``, looked up once: the screen never replaces
        its widgets."""
        key = selector or kind.__name__
        widget = self._widgets.get(key)
        if widget is None or widget.parent is None:
            widget = self._widgets[key] = self.query_one(selector or kind, kind)
        return widget  # type: ignore[return-value]

    @property
    def table(self) -> VMTable:
        return self._one(VMTable)

    @property
    def selected_name(self) -> str | None:
        table = self._widgets.get(VMTable.__name__)
        if table is None or table.parent is None:
            tables = self.query(VMTable)
            if not tables:
                return None
            table = self._widgets[VMTable.__name__] = tables.first()
        assert isinstance(table, VMTable)
        return table.selected_name

    def show(self, snapshot: Snapshot, error: str | None = None) -> None:
        self.snapshot = snapshot
        self.error = error
        self.views = per_vm(snapshot)
        self.marks &= self.views.keys()  # a VM gone from the host is no longer marked
        rows = [
            RowData(
                vm=view.vm,
                sample=view.sample,
                cpu_history=[p.cpu_pct for p in view.history[-SPARK_POINTS:]],
                crash_looping=view.crash_looping,
                busy=self.busy.get(name),
                marked=name in self.marks,
                log=view.log,
            )
            for name, view in self.views.items()
        ]
        with self.app.batch_update():
            self._show_header()
            self.table.update_rows(rows)
            self._show_empty()
            self._show_detail()

    def show_error(self, error: str) -> None:
        """The last poll failed as a whole: say so, keep the last data on screen."""
        self.error = error
        self._show_header()

    def _show_header(self) -> None:
        snap = self.snapshot
        self._one(HostHeader).show(
            HeaderData(
                inventory=snap.inventory if snap else None,
                host=snap.host if snap else None,
                samples=snap.samples if snap else {},
                crash_looping=snap.crash_looping if snap else [],
                hostname=snap.hostname if snap else None,
                read_only_reason=self.read_only_reason,
                poll_ms=snap.poll_ms if snap else None,
                error=self.error,
                shown=self.table.matched if self.table.filter_text else None,
                jobs_running=len(self.busy),
                marked=len(self.marks),
            )
        )

    def set_busy(self, busy: dict[str, str]) -> None:
        """The VMs a job runs on now (name -> job title): marked in their rows and counted in
        the header, between polls too."""
        if busy == self.busy:
            return
        self.busy = dict(busy)
        if self.snapshot is not None:
            self.show(self.snapshot, self.error)
        else:
            self._show_header()

    def _show_empty(self) -> None:
        empty = self._one(Static, "#empty")
        snap = self.snapshot
        text = ""
        if snap is not None:
            inv = snap.inventory
            if inv.error:
                text = (
                    f"{clean(inv.error)}.\n"
                    "Set another state dir with --state-dir or in the config file."
                )
            elif not inv.vms:
                text = (
                    f"No VMs in {clean(inv.state_dir)}.\n"
                    "Create one with `microvm -c NAME` (or declare it in the host's NixOS "
                    "configuration), or point --state-dir at the right place."
                )
            elif not self.table.matched:
                text = f"No VM matches “{clean(self.table.filter_text)}”. Esc clears the filter."
        if text != self._empty_text:  # Static.update asks for a relayout: only on change
            self._empty_text = text
            empty.update(outside_text(text))
            empty.set_class(bool(text), "-shown")

    def _show_detail(self) -> None:
        name = self.selected_name
        view = self.views.get(name) if name is not None else None
        data = DetailData(interval=self.interval)
        if view is not None:
            data = DetailData(
                vm=view.vm,
                sample=view.sample,
                history=view.history,
                crash_looping=view.crash_looping,
                interval=self.interval,
                last_error=view.last_error,
                findings=view.findings,
            )
        self._one(DetailPane).show(data)

    @on(VMTable.RowHighlighted, "#vms")
    def _row_highlighted(self, event: VMTable.RowHighlighted) -> None:
        self._show_detail()

    # --- filter ----------------------------------------------------------------------------

    @on(FilterBar.Changed, "#filter")
    def _filter_changed(self, event: FilterBar.Changed) -> None:
        self.table.set_filter(event.value)
        self._show_header()
        self._show_empty()
        self._show_detail()

    @on(FilterBar.Closed)
    def _filter_closed(self) -> None:
        self.table.focus()

    def action_filter(self) -> None:
        self.query_one(FilterBar).open()

    def action_clear_filter(self) -> None:
        bar = self.query_one(FilterBar)
        if bar.value or self.table.filter_text:
            bar.action_clear()

    # --- opening a VM ----------------------------------------------------------------------

    def action_open_vm(self) -> None:
        """Enter on a row: the VM's detail gets the focus (Enter there opens the console)."""
        if self.selected_name is None:
            return
        self.remove_class("-table-only")
        self.query_one(DetailPane).focus_tabs()

    # --- sorting ---------------------------------------------------------------------------

    # --- marks (the bulk actions apply to the marked VMs) ----------------------------------

    def _set_marks(self, marks: set[str]) -> None:
        if marks == self.marks:
            return
        self.marks = marks
        if self.snapshot is not None:
            self.show(self.snapshot, self.error)
        else:
            self._show_header()

    def action_toggle_mark(self) -> None:
        """Mark or unmark the VM under the cursor, and move to the next row (space, space…
        marks a run of VMs)."""
        name = self.selected_name
        if name is None:
            return
        self._set_marks(self.marks ^ {name})
        self.table.action_cursor_down()

    def action_mark_shown(self) -> None:
        self._set_marks(self.marks | set(self.table.order))

    def action_clear_marks(self) -> None:
        self._set_marks(set())

    def action_sort_next(self) -> None:
        self.table.cycle_sort()

    def action_sort_reverse(self) -> None:
        self.table.reverse_sort()

    def action_sort_by(self, column: str) -> None:
        if column in COLUMN_BY_KEY:
            self.table.set_sort(column)

    # --- detail ----------------------------------------------------------------------------

    def action_toggle_detail(self) -> None:
        self.toggle_class("-table-only")

    def action_show_tab(self, tab: str) -> None:
        self.remove_class("-table-only")
        self.query_one(DetailPane).show_tab(tab)

    def _step_tab(self, step: int) -> None:
        pane = self.query_one(DetailPane)
        index = TAB_IDS.index(pane.active_tab)
        self.action_show_tab(TAB_IDS[(index + step) % len(TAB_IDS)])

    def action_next_tab(self) -> None:
        self._step_tab(1)

    def action_prev_tab(self) -> None:
        self._step_tab(-1)
