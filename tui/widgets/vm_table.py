"""The VM list: a RowTable (tui/widgets/table) diffed by VM name each poll, never rebuilt.

Each poll: rows of VMs that left (or no longer match the filter) are removed, only cells whose
text changed are updated, new VMs are added by key, all inside one ``app.batch_update()``.
A changed row is rendered again and repainted alone; the others are drawn from the table's
cache. Sorting uses the underlying values (numbers, not the rendered text) and happens only
when the order would change; it reorders the row keys, and the cursor is put back on the same
VM afterwards (the table's sort keeps the cursor's row *index*, not its row).

At scale (2000 VMs) the first fill is what costs. New rows go in in sort order, a screenful at
once and the rest a step at a time after the first paint (``filling`` says rows still wait), so
the table is on screen at once and keys are answered between steps. The cells of a row without
a sample depend only on its signature (``row_signature``), and most stopped VMs share one: they
are made once per signature.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.text import Span, Text
from textual.binding import Binding
from textual.geometry import Region
from textual.message import Message
from textual.strip import Strip

from tui.host.sampling import Why
from tui.widgets.format import DASH, clean, percent, rate, sparkline
from tui.widgets.kept_styles import KeptComponentStyles
from tui.widgets.levels import level_classes, level_css, level_style
from tui.widgets.table import RowTable
from tui.widgets.vm_rows import (
    COLUMN_BY_KEY,
    COLUMN_KEYS,
    NARROW_DROPS,
    Column,
    RowData,
    row_signature,
    sort_values,
)
from tui.widgets.vm_state import drift_badge, vm_state

PREFIX = "vm-table"
SPARK_WIDTH = 8
PROBLEM_WIDTH = 30  # the first problem, cut; the detail pane lists them all
NAME_WIDTH = 24  # a longer name is cut with "…" (the detail pane's title shows it whole)
NARROW = 120  # below this many columns the low-value columns are left out
ARROW = " ▲"  # the sort arrow; every label keeps room for it so sorting never hides it
BUSY_MARK = "⚙"  # after the name while a job runs on the VM
MARK = "✓"  # before the name of a marked VM (the bulk actions apply to the marked VMs)
FIRST_ROWS = 64  # new rows added at once into an empty table: more than a screenful
ROWS_PER_STEP = 200  # then this many per step; keys are handled between steps
STEP_PAUSE_S = 0.02  # after a paint of the table, before the next step: room for keys
SHARED_CELLS = 4096  # signatures whose cells are kept (a host has few distinct ones)


def _mib(n: int | None) -> str:
    if n is None:
        return DASH
    return "<1" if 0 < n < 2**19 else f"{n / 2**20:.0f}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


class NameText(Text):
    """The name cell; carries the VM's real name (the text is cleaned for display)."""

    vm: str = ""


class VMTable(KeptComponentStyles, RowTable):
    """Rows keyed by VM name. Feed it with ``update_rows``."""

    DEFAULT_CSS = """
    VMTable {
        height: auto;
        max-height: 100%;
    }
    """ + level_css("VMTable", PREFIX)
    COMPONENT_CLASSES = RowTable.COMPONENT_CLASSES | level_classes(PREFIX)
    BINDINGS = [
        Binding("home", "scroll_top", "First VM", show=False, id="first_vm"),
        Binding("end", "scroll_bottom", "Last VM", show=False, id="last_vm"),
        Binding("enter", "screen.open_vm", "Open VM", show=False, id="open_vm"),
    ]

    class SortChanged(Message):
        def __init__(self, column: str, reverse: bool) -> None:
            super().__init__()
            self.column = column
            self.reverse = reverse

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(zebra_stripes=True, fixed_columns=1, **kwargs)
        self.sort_column = "name"
        self.sort_reverse = False
        self.filter_text = ""
        self._rows_data: list[RowData] = []
        self._sort_keys: dict[str, dict[str, Any]] = {}
        # Per VM shown: the signature and sort values last worked out (see update_rows).
        self._made: dict[str, tuple[tuple[Any, ...] | None, dict[str, Any]]] = {}
        self._styles: dict[str | None, Any] = {}  # level -> style, during update_rows
        self.matched = 0  # rows shown after the filter
        self._updating = False  # within update_rows (the theme stays the same)
        # Non-name cells of rows without a sample, by signature (rows share them: never mutated).
        self._shared_cells: dict[tuple[Any, ...], dict[str, Text]] = {}
        self.waiting = 0  # rows to show that are not in the table yet (the fill goes on)
        self._step_due = False  # a step is to be armed at the next paint
        self._step_armed = False
        self.shown_columns: tuple[str, ...] = COLUMN_KEYS

    def on_mount(self) -> None:
        self._add_columns()
        self.app.theme_changed_signal.subscribe(
            self, lambda _theme: self.call_after_refresh(self._restyle)
        )

    # --- cells -----------------------------------------------------------------------------

    def _style(self, level: str | None) -> Any:
        style = self._styles.get(level)
        if style is None:
            style = level_style(self, PREFIX, level)
            if self._updating:  # within one update_rows the theme is the same
                self._styles[level] = style
        return style

    def _text(self, text: str, level: str | None = None) -> Text:
        # The style goes in as a span: Text equality (the diff) compares spans, not the base
        # style, so a colour change alone (a theme switch) still updates the cell.
        text = clean(text)  # every cell: text from outside, sanitised
        if not level or not text:
            return Text(text, end="")
        return Text(text, end="", spans=[Span(0, len(text), self._style(level))])

    def cells(self, row: RowData) -> dict[str, Text]:
        signature = row_signature(row)
        shared = self._shared_cells.get(signature) if signature is not None else None
        if shared is None:
            shared = self._other_cells(row)
            if signature is not None:
                if len(self._shared_cells) >= SHARED_CELLS:
                    self._shared_cells.clear()
                self._shared_cells[signature] = shared
        return {"name": self._name_cell(row), **shared}

    def _name_cell(self, row: RowData) -> NameText:
        name = NameText(_cut(clean(row.vm.name), NAME_WIDTH), end="")
        name.stylize(self._style("bold"))
        if row.marked:
            name = NameText.assemble((f"{MARK} ", self._style("accent")), name, end="")
        if row.busy:
            name.append(f" {BUSY_MARK}", self._style("accent"))
        name.vm = row.vm.name
        return name

    def _other_cells(self, row: RowData) -> dict[str, Text]:
        """Every cell but the name's: for a row without a sample, a function of its signature."""
        vm, s = row.vm, row.sample
        state = vm_state(vm, s, row.crash_looping)
        vcpu = (s.vcpu_count if s else None) or vm.vcpu

        if s is None:
            cpu = self._text(DASH, "muted")
            used = DASH
        else:
            spark = sparkline(row.cpu_history or [], SPARK_WIDTH)
            pct = s.cpu_pct_of_vcpus
            cpu = Text(end="")
            if pct is None:
                # "…" = wait for the next poll; "?" = cannot be read (the detail says why).
                waiting = s.reasons.get("cpu_pct_of_vcpus") == Why.NEEDS_TWO
                cpu.append(
                    f"{'…' if waiting else '?':>6}", self._style("muted" if waiting else "warn")
                )
            else:
                # The unit's CPU includes the hypervisor's own threads, so it can pass 100%
                # of the vCPUs; the table says "all busy" (the Overview gives the figure).
                shown = min(pct, 100.0)
                cpu.append(f"{percent(shown):>6}", self._style("warn" if pct >= 90 else None))
            cpu.append(" " + spark, self._style("accent"))
            used = _mib(s.mem_host_bytes)
        cfg = (s.mem_configured_mib if s else None) or vm.mem_mib
        cfg_text = DASH if cfg is None else str(cfg)
        memory = self._text(f"{used}/{cfg_text} MiB", "muted" if s is None else None)

        if not vm.interfaces and vm.hypervisor is not None:
            # A fact of the runner (read, as its hypervisor is known), running or not.
            net = self._text("no NICs", "muted")
        elif s is None:
            net = self._text(DASH, "muted")
        elif s.net:
            rx = sum(r.guest_rx_bps for r in s.net.values())
            tx = sum(r.guest_tx_bps for r in s.net.values())
            net = self._text(f"↓{rate(rx)} ↑{rate(tx)}")
        else:
            waiting = all(s.reasons.get(f"net:{i.id}") == Why.NEEDS_TWO for i in vm.interfaces)
            net = self._text("…" if waiting else "?", "muted" if waiting else "warn")

        restarts_n = vm.unit.restarts if vm.unit else None
        if row.crash_looping:  # the State column says "crash-looping" in words
            restarts = self._text(f"{restarts_n} ⟳", "error")
        else:
            level = "muted" if not restarts_n else "warn"
            restarts = self._text(DASH if restarts_n is None else str(restarts_n), level)
        log = row.log
        if log is None:
            log_cell = self._text("", "muted")
        elif log.errors or log.warnings:
            text = " ".join(
                part
                for part in (
                    f"{log.errors}E" if log.errors else "",
                    f"{log.warnings}W" if log.warnings else "",
                )
                if part
            )
            log_cell = self._text(text, "error" if log.errors else "warn")
        else:
            log_cell = self._text(DASH, "muted")
        problems = (
            self._text(
                f"⚠ {len(vm.problems)}: {_cut(clean(vm.problems[0]), PROBLEM_WIDTH)}", "error"
            )
            if vm.problems
            else self._text("")
        )
        drift = drift_badge(vm)
        return {
            "state": self._text(state.text, state.level),
            "hypervisor": self._text(vm.hypervisor or "?", None if vm.hypervisor else "warn"),
            "vcpu": self._text(DASH if vcpu is None else str(vcpu)),
            "cpu": cpu,
            "memory": memory,
            "net": net,
            "drift": self._text(drift.text, drift.level),
            "restarts": restarts,
            "log": log_cell,
            "problems": problems,
        }

    # --- the diff --------------------------------------------------------------------------

    def matches(self, row: RowData) -> bool:
        if not self.filter_text:
            return True
        needle = self.filter_text.lower()
        state = vm_state(row.vm, row.sample, row.crash_looping)
        return needle in row.vm.name.lower() or needle in state.label

    def update_rows(self, rows: list[RowData]) -> None:
        """Diff the table against ROWS: remove gone rows, update changed cells, add new rows,
        re-sort only when the order changed; the cursor stays on its VM.

        New rows go in in sort order, at most ``ROWS_PER_STEP`` of them (``FIRST_ROWS`` into an
        empty table); the rest follow in steps after the next paints (``waiting``)."""
        self._rows_data = rows
        selected = self.selected_name
        shown = [r for r in rows if self.matches(r)]
        self.matched = len(shown)
        wanted = {r.vm.name for r in shown}
        self._updating = True
        self._styles = {}
        try:
            with self.app.batch_update():
                for key in [k for k in self.rows if k not in wanted]:
                    self.remove_row(key)
                    self._made.pop(key, None)
                sort_keys = {}
                new: list[RowData] = []
                in_table = self.rows
                for row in shown:
                    # _made: the signature and sort values last worked out for the VM; the
                    # cells of a row in the table were made from them.
                    name = row.vm.name
                    signature = row_signature(row)
                    made = self._made.get(name)
                    same = signature is not None and made is not None and made[0] == signature
                    if same:
                        sort_keys[name] = made[1]  # type: ignore[index]
                    else:
                        sort_keys[name] = sort_values(row)
                        self._made[name] = (signature, sort_keys[name])
                    if name not in in_table:
                        new.append(row)
                        continue
                    if same:
                        continue
                    cells = self.cells(row)
                    for column in self.shown_columns:
                        value = cells[column]
                        current = self.get_cell(name, column)
                        if current is not value and current != value:
                            self.update_cell(name, column, value)
                if len(self._made) > len(sort_keys):  # VMs gone or filtered out
                    for name in [n for n in self._made if n not in sort_keys]:
                        del self._made[name]
                self._sort_keys = sort_keys
                self._add_new(new)
                self._apply_sort()
                if selected is not None and selected in self.rows:
                    self.select_name(selected)
        finally:
            self._updating = False

    def _add_new(self, new: list[RowData]) -> None:
        """Add NEW rows (not in the table) in sort order, as many as one step takes; arm the
        next step for the rest."""
        budget = FIRST_ROWS if not self.rows else ROWS_PER_STEP
        if len(new) > budget:
            key = self._row_key_fn()
            new.sort(key=lambda row: key(row.vm.name), reverse=self.sort_reverse)
        for row in new[:budget]:
            cells = self.cells(row)
            self.add_row(*(cells[k] for k in self.shown_columns), key=row.vm.name)
        self.waiting = max(0, len(new) - budget)
        # The next step is armed by the next paint of the table (render_lines): the rows
        # added are on screen before more are added.
        self._step_armed = False
        self._step_due = self.waiting > 0

    def render_lines(self, crop: Region) -> list[Strip]:
        lines = super().render_lines(crop)
        if self._step_due and not self._step_armed:
            self._step_due, self._step_armed = False, True
            self.set_timer(STEP_PAUSE_S, self._fill_step, name="fill-step")
        return lines

    def _fill_step(self) -> None:
        self._step_armed = False
        if self.waiting:
            self.update_rows(self._rows_data)

    @property
    def filling(self) -> bool:
        """Rows to show are still being added (the first fill of a big host)."""
        return self.waiting > 0

    # --- narrow terminals ------------------------------------------------------------------

    def _add_columns(self) -> None:
        for key in self.shown_columns:
            self.add_column(self._label(COLUMN_BY_KEY[key]), key=key)

    def columns_for(self, width: int) -> tuple[str, ...]:
        if width >= NARROW:
            return COLUMN_KEYS
        return tuple(k for k in COLUMN_KEYS if k not in NARROW_DROPS or k == self.sort_column)

    def on_resize(self) -> None:
        self._fit_columns()

    def _fit_columns(self) -> None:
        if self.size.width <= 0:
            return
        wanted = self.columns_for(self.size.width)
        if wanted != self.shown_columns:
            # Rebuilt once per crossing of the NARROW line, not per poll.
            self.shown_columns = wanted
            selected = self.selected_name
            self.clear(columns=True)
            self._add_columns()
            self.update_rows(self._rows_data)
            if selected is not None:
                self.select_name(selected)

    def _restyle(self) -> None:
        # Cell styles come from the theme: redraw every cell in the new colours.
        self._made.clear()
        self._shared_cells.clear()
        self.update_rows(self._rows_data)

    # --- sorting ---------------------------------------------------------------------------

    def _row_key_fn(self) -> Callable[[str], Any]:
        """The sort key of a row, by VM name."""
        column, reverse = self.sort_column, self.sort_reverse
        sort_keys = self._sort_keys

        def key(name: str) -> Any:
            values = sort_keys.get(name, {})
            value = values.get(column)
            tie = values.get("name", "")
            if value is None:
                # Unknown values go last whichever the direction.
                return (not reverse, 0, tie)
            return (reverse, value, tie)

        return key

    def _apply_sort(self) -> bool:
        """Re-sort when the order changed (True then); the cursor stays on its VM."""
        key = self._row_key_fn()
        current = self.ordered_keys
        wanted = sorted(current, key=key, reverse=self.sort_reverse)
        if wanted == current:
            return False
        selected = self.selected_name
        self.reorder(wanted)
        if selected is not None:
            self.select_name(selected)
        return True

    def set_sort(self, column: str, reverse: bool | None = None) -> None:
        """Sort by COLUMN; REVERSE None = the column's natural direction."""
        if column not in COLUMN_BY_KEY:
            raise ValueError(f"no column {column!r}")
        old = self.sort_column
        self.sort_column = column
        self.sort_reverse = COLUMN_BY_KEY[column].descending if reverse is None else reverse
        self._fit_columns()  # a column left out on a narrow terminal comes back to sort by
        for key in {old, column}:
            if key in self.shown_columns:
                self.set_column_label(key, self._label(COLUMN_BY_KEY[key]))
        # A label keeps room for the arrow, so the columns keep their widths: the rows are
        # drawn again from the table's cache, in their new order.
        self._apply_sort()
        self.post_message(self.SortChanged(self.sort_column, self.sort_reverse))

    def cycle_sort(self) -> None:
        index = COLUMN_KEYS.index(self.sort_column)
        self.set_sort(COLUMN_KEYS[(index + 1) % len(COLUMN_KEYS)])

    def reverse_sort(self) -> None:
        self.set_sort(self.sort_column, not self.sort_reverse)

    def _label(self, col: Column) -> Text:
        label = Text(col.label)
        if col.key == self.sort_column:
            label.append(" ▼" if self.sort_reverse else ARROW)
        else:
            label.append(" " * len(ARROW))  # the column is as wide sorted as not
        return label

    def on_row_table_header_selected(self, event: RowTable.HeaderSelected) -> None:
        event.stop()
        column = event.column_key
        if column == self.sort_column:
            self.reverse_sort()
        else:
            self.set_sort(column)

    # --- filter ----------------------------------------------------------------------------

    def set_filter(self, text: str) -> None:
        self.filter_text = text.strip()
        self.update_rows(self._rows_data)

    # --- the cursor ------------------------------------------------------------------------

    @property
    def selected_name(self) -> str | None:
        return self.row_key_at(self.cursor_row)

    def select_name(self, name: str) -> None:
        if name in self.rows:
            index = self.get_row_index(name)
            if index != self.cursor_row:
                self.move_cursor(row=index)

    @property
    def order(self) -> list[str]:
        """VM names in on-screen order."""
        return list(self.ordered_keys)
