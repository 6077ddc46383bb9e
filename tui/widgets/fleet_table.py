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

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from tui.feed.fleet import FleetSnapshot, HostStatus
from tui.host.model import Drift
from tui.widgets.format import DASH, clean, percent, size
from tui.widgets.vm_state import counts_by_state, drift_badge, vm_state

DRIFT_SHOWN = (Drift.STALE, Drift.BROKEN)  # what a host row counts: runners to look at
LEVEL_STYLE = {"ok": "green", "warn": "yellow", "error": "bold red", "muted": "dim", None: ""}


def _text(value: object, level: str | None = None) -> Text:
    return Text(clean(str(value), 200), style=LEVEL_STYLE.get(level, ""), no_wrap=True)


# --- a table that repaints only the rows that changed ----------------------------------------


def _signature(cells: tuple[Text, ...]) -> tuple[tuple[str, str], ...]:
    """What a row shows: each cell's text and style (``Text.__eq__`` ignores the style)."""
    return tuple((cell.plain, str(cell.style)) for cell in cells)


def _cell_segments(
    cell: Text, width: int, style: Style, over: Style | None, console: Console
) -> list[Segment]:
    """CELL cut or padded to WIDTH cells, a space either side, on STYLE (OVER on top of the
    cell's own style: the cursor's)."""
    edge = style + over if over else style
    if not cell.spans:  # our cells: one style each (the fast path, no Rich render)
        own = Style.parse(cell.style) if isinstance(cell.style, str) else cell.style
        plain = cell.plain
        if cell_len(plain) > width:
            plain = set_cell_size(plain, max(0, width - 1)) + "…"
        shown = style + own + over if over else style + own
        return [Segment(f" {set_cell_size(plain, width)} ", shown)]
    text = cell.copy()
    text.truncate(width, overflow="ellipsis", pad=True)
    segments = [Segment(" ", edge)]
    for seg in text.render(console):
        shown = style + seg.style if seg.style else style
        segments.append(Segment(seg.text, shown + over if over else shown))
    segments.append(Segment(" ", edge))
    return segments


class LineTable(ScrollView, can_focus=True):
    """Rows of single-line ``Text`` cells under a header, drawn with Textual's line API.

    ``set_rows`` compares each row with what is shown: only rows whose cells changed are
    rendered again and repainted (``refresh_lines``); the same rows in the same order with the
    same figures cost nothing. (A DataTable renders every visible row again after any
    ``update_cell``: with a CPU figure changing on most rows every poll, that was most of the
    fleet view's CPU.) ``rendered`` counts rows rendered (tests, bench).
    """

    COMPONENT_CLASSES = {"line-table--header", "line-table--cursor"}
    DEFAULT_CSS = """
    LineTable {
        background: $surface;
        color: $foreground;
        &:focus {
            background-tint: $foreground 5%;
            & > .line-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
        & > .line-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .line-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
    }
    """
    BINDINGS = [
        Binding("up", "cursor(-1)", "Up", show=False),
        Binding("down", "cursor(1)", "Down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home", "cursor_to(0)", "First", show=False),
        Binding("end", "cursor_to(-1)", "Last", show=False),
        Binding("enter", "select", "Open", show=False),
    ]

    class Selected(Message):
        """Enter (or a click) on a row: its key."""

        def __init__(self, table: LineTable, key: str) -> None:
            super().__init__()
            self.table = table
            self.key = key

        @property
        def control(self) -> LineTable:
            return self.table

    def __init__(
        self,
        columns: tuple[str, ...],
        *,
        cursor: bool = True,
        min_widths: tuple[int, ...] = (),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.columns = columns
        # A figure's column as wide as its usual widest value: "9.9%" -> "10.2%" does not
        # widen the column (and draw every row again) on a poll.
        self.min_widths = [
            max(cell_len(label), width)
            for label, width in itertools.zip_longest(columns, min_widths, fillvalue=0)
        ][: len(columns)]
        self.show_cursor = cursor
        self.cursor_row = 0
        self.rendered = 0  # rows rendered so far (a repaint of an unchanged row costs none)
        self._keys: list[str] = []
        self._index: dict[str, int] = {}
        self._cells: dict[str, tuple[Text, ...]] = {}
        self._signatures: dict[str, tuple[tuple[str, str], ...]] = {}
        self._widths = list(self.min_widths)
        self._strips: dict[str, Strip] = {}  # rendered rows (not under the cursor)
        self._header: Strip | None = None
        self._styles: tuple[Style, Style, Style] | None = None  # base, header, cursor

    # --- data --------------------------------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        return list(self._keys)

    @property
    def row_count(self) -> int:
        return len(self._keys)

    def get_row(self, key: str) -> tuple[Text, ...]:
        return self._cells[key]

    def get_row_index(self, key: str) -> int:
        return self._index[key]

    @property
    def selected_key(self) -> str | None:
        if not self.show_cursor or not self._keys:
            return None
        return self._keys[min(self.cursor_row, len(self._keys) - 1)]

    def set_rows(self, rows: list[tuple[str, tuple[Text, ...]]]) -> None:
        """Show ROWS (key, cells) in this order; the cursor stays on its row's key."""
        keys = [key for key, _ in rows]
        # The same rows: a column only widens (a figure that shrinks back leaves it be).
        widths = list(self._widths if keys == self._keys else self.min_widths)
        for _, cells in rows:
            for i, cell in enumerate(cells):
                if cell.cell_len > widths[i]:
                    widths[i] = cell.cell_len
        everything = widths != self._widths or keys != self._keys
        changed: list[int] = []
        selected = self.selected_key
        for i, (key, cells) in enumerate(rows):
            signature = _signature(cells)
            if self._signatures.get(key) != signature:
                self._signatures[key] = signature
                self._strips.pop(key, None)
                changed.append(i)
            self._cells[key] = cells
        if everything:
            gone = set(self._keys) - set(keys)
            for key in gone:
                self._cells.pop(key, None)
                self._signatures.pop(key, None)
                self._strips.pop(key, None)
            if widths != self._widths:
                self._strips.clear()
                self._header = None
            self._widths = widths
            self._keys = keys
            self._index = {key: i for i, key in enumerate(keys)}
            size = Size(sum(w + 2 for w in widths), len(keys) + 1)
            if size != self.virtual_size:
                self.virtual_size = size
            if selected in self._index:
                self.cursor_row = self._index[selected]
            self.cursor_row = max(0, min(self.cursor_row, len(keys) - 1))
            self.refresh()
            return
        for i in changed:
            self.refresh_lines(i + 1)

    def clear_rows(self) -> None:
        self.set_rows([])

    # --- the cursor ----------------------------------------------------------------------------

    def move_cursor(self, row: int) -> None:
        if not self._keys:
            return
        row = max(0, min(row, len(self._keys) - 1))
        if row != self.cursor_row:
            self.refresh_lines(self.cursor_row + 1)
            self.cursor_row = row
            self.refresh_lines(row + 1)
        visible = max(1, self.size.height - 1)  # below the header
        top = self.scroll_offset.y
        if row < top:
            self.scroll_to(y=row, animate=False)
        elif row >= top + visible:
            self.scroll_to(y=row - visible + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        self.move_cursor(self.cursor_row + step)

    def action_page(self, direction: int) -> None:
        self.move_cursor(self.cursor_row + direction * max(1, self.size.height - 2))

    def action_cursor_to(self, row: int) -> None:
        self.move_cursor(row if row >= 0 else len(self._keys) - 1)

    def action_select(self) -> None:
        key = self.selected_key
        if key is not None:
            self.post_message(self.Selected(self, key))

    def on_click(self, event: events.Click) -> None:
        row = event.y + self.scroll_offset.y - 1
        if self.show_cursor and 0 <= row < len(self._keys) and event.y >= 1:
            self.move_cursor(row)
            self.action_select()

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self._restyle()

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self._restyle()

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._restyle()

    def _restyle(self) -> None:
        self._styles = None
        self._strips.clear()
        self._header = None
        self.refresh()

    # --- drawing -------------------------------------------------------------------------------

    def _get_styles(self) -> tuple[Style, Style, Style]:
        """The widget's style, the header's and the cursor's (drawn over a cell's own)."""
        if self._styles is None:
            base = self.rich_style
            self._styles = (
                base,
                base + self.get_component_rich_style("line-table--header"),
                self.get_component_rich_style("line-table--cursor"),
            )
        return self._styles

    def _row_strip(self, cells: tuple[Text, ...], style: Style, over: Style | None) -> Strip:
        console = self.app.console
        segments: list[Segment] = []
        for cell, width in zip(cells, self._widths, strict=False):
            segments += _cell_segments(cell, width, style, over, console)
        return Strip(segments)

    def render_line(self, y: int) -> Strip:
        base, header_style, cursor_style = self._get_styles()
        scroll_x, scroll_y = self.scroll_offset
        width = self.size.width
        if y == 0:
            if self._header is None:
                labels = tuple(Text(label) for label in self.columns)
                self._header = self._row_strip(labels, header_style, None)
            strip = self._header
            return strip.crop_extend(scroll_x, scroll_x + width, header_style)
        row = scroll_y + y - 1
        if row >= len(self._keys):
            return Strip.blank(width, base)
        key = self._keys[row]
        if self.show_cursor and row == self.cursor_row:
            self.rendered += 1
            strip = self._row_strip(self._cells[key], base, cursor_style)
            return strip.crop_extend(scroll_x, scroll_x + width, base + cursor_style)
        strip = self._strips.get(key)
        if strip is None:
            self.rendered += 1
            strip = self._strips[key] = self._row_strip(self._cells[key], base, None)
        return strip.crop_extend(scroll_x, scroll_x + width, base)


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


class HostsTable(LineTable):
    """One row per host, in the config's order (this host first)."""

    DEFAULT_CSS = "HostsTable { height: auto; max-height: 12; overflow-x: hidden; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(HOST_COLUMNS, cursor=False, min_widths=HOST_MIN_WIDTHS, **kwargs)
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


class FleetTable(LineTable):
    """Every host's VMs, row keys ``HOST/NAME``. Filter: a text in the host, the name or the
    state; ``host``: one host only (the host switcher)."""

    DEFAULT_CSS = "FleetTable { height: 1fr; }"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(VM_COLUMNS, min_widths=VM_MIN_WIDTHS, **kwargs)
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
        rows whose cells changed are drawn again (``LineTable.set_rows``)."""
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
