"""The table leaves a row without a sample alone while what it shows is the same, and still
follows every change of a stopped VM: its unit state (from "asking systemd" on), restarts,
problems, drift."""

from __future__ import annotations

import copy

from tests.monitor_support import SIZE, frames, make_app, until
from tui.feed import ReplaySource, Snapshot
from tui.host.model import PENDING, Drift, UnitState
from tui.widgets.vm_table import VMTable


def _frame(base: Snapshot, **units: UnitState) -> Snapshot:
    snap = copy.deepcopy(base)
    for vm in snap.inventory.vms:
        if vm.name in units:
            vm.unit = units[vm.name]
    return snap


async def test_stopped_rows_follow_every_change_and_are_left_alone_otherwise(
    monkeypatch,  # type: ignore[no-untyped-def]
) -> None:
    base = frames()[-1]
    pending = _frame(base, idle=UnitState(name="microvm@idle.service", active=PENDING))
    settled = _frame(
        base, idle=UnitState(name="microvm@idle.service", active="inactive", sub="dead", restarts=0)
    )
    failed = _frame(
        base, idle=UnitState(name="microvm@idle.service", active="failed", sub="failed", restarts=4)
    )
    for vm in failed.inventory.vms:
        if vm.name == "idle":
            vm.problems = ["something new is wrong"]
            vm.drift = Drift.BROKEN
    source = ReplaySource([pending, settled, settled, failed])
    made: list[str] = []
    cells = VMTable.cells

    def counting(self, row):  # type: ignore[no-untyped-def]
        made.append(row.vm.name)
        return cells(self, row)

    monkeypatch.setattr(VMTable, "cells", counting)
    app = make_app(source)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main_screen.query_one(VMTable)

        def text(column: str) -> str:
            return table.get_cell("idle", column).plain

        await until(pilot, lambda: app.polls >= 1)
        assert "asking systemd" in text("state")
        app.poll()
        await until(pilot, lambda: app.polls >= 2)
        assert "inactive" in text("state") and text("restarts") == "0"
        made.clear()
        app.poll()
        await until(pilot, lambda: app.polls >= 3)
        # Nothing changed: idle's row (no sample) is not made again; sampled rows are.
        assert "idle" not in made
        assert made and set(made) == {n for n in base.samples}
        app.poll()
        await until(pilot, lambda: app.polls >= 4)
        assert "failed" in text("state")
        assert text("restarts") == "4"
        assert "something new is wrong" in text("problems")
        assert "broken" in text("drift")
