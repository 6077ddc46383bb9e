"""Units tab: microvm@NAME and its helper units, restarts and crash-looping."""

from __future__ import annotations

from rich.text import Text

from tui.host.crashloop import LOOP_RESTARTS, LOOP_WINDOW_S
from tui.host.model import PENDING, UnitState
from tui.widgets.detail.base import Block, DetailData, DetailView, Grid, Note
from tui.widgets.format import DASH
from tui.widgets.wrap import PathCell

LOOP_NOTE = f"⟳ crash-looping: {LOOP_RESTARTS}+ restarts in {LOOP_WINDOW_S / 60:.0f} min"
LEVEL = {"active": "ok", "failed": "error", "activating": "warn", "deactivating": "warn"}


class UnitsView(DetailView):
    def blocks(self, data: DetailData) -> list[Block]:
        vm = data.vm
        assert vm is not None
        units = ([vm.unit] if vm.unit else []) + list(vm.helper_units)
        if not units:
            return [Note(self.missing("no units known for this VM"))]
        rows = [self._row(u, data.crash_looping and u is vm.unit) for u in units]
        blocks: list[Block] = [
            Grid(("unit", "load", "state", "pid", "restarts", "last result", "note"), tuple(rows))
        ]
        return blocks

    def _row(self, u: UnitState, crash_looping: bool) -> tuple[Text | PathCell, ...]:
        if u.active in (None, "unknown", PENDING):
            state = self.t("? unknown", "warn")
        else:
            state = self.t(f"{u.active}/{u.sub or DASH}", LEVEL.get(u.active, "muted"))
        restarts = (
            self.t(DASH, "muted")
            if u.restarts is None
            else self.t(str(u.restarts), "warn" if u.restarts else None)
        )
        result = u.result or DASH
        if u.exec_main_status not in (None, 0):
            result = f"{result}, exit status {u.exec_main_status}"
        note = Text(end="")
        if crash_looping:
            note.append_text(self.t(LOOP_NOTE, "error"))
        if u.error:
            if note:
                note.append("  ")
            note.append_text(self.missing(u.error))
        return (
            PathCell(self.t(u.name, "bold")),
            self.t(u.load or DASH, None if u.load in (None, "loaded") else "warn"),
            state,
            self.t(str(u.main_pid) if u.main_pid else DASH, None if u.main_pid else "muted"),
            restarts,
            self.t(result, "warn" if u.result not in (None, "success") else None),
            note,
        )
