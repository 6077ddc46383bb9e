"""The journal's figures in the monitor: the table's "Log 1h" column (err/warning lines per VM
in the last hour) and a failing VM's last error line in its Overview, fed by the source's
snapshot (the JournalSummary behind it is tested against the lab's journald in
test_logs_lab.py)."""

from __future__ import annotations

import dataclasses

from tests.conftest import until_in_app
from tests.monitor_support import SIZE, frames, make_app
from tui.feed import ReplaySource
from tui.host.logs.entry import LogLine
from tui.host.logs.summary import ProblemCounts
from tui.widgets.detail.overview import OverviewView
from tui.widgets.vm_table import VMTable

CRASHY_ERROR = LogLine(
    usec=1, unit="microvm@crashy.service", priority=6, text="qemu: could not open kernel [/x]"
)


def source(known: bool) -> ReplaySource:
    last = frames()[-1]
    snap = dataclasses.replace(
        last,
        log_counts={"db": ProblemCounts(errors=3, warnings=5), "web": ProblemCounts(warnings=2)}
        if known
        else None,
        last_errors={"crashy": CRASHY_ERROR} if known else {},
    )
    return ReplaySource([snap])


def cell(table: VMTable, vm: str, column: str) -> str:
    return str(table.get_cell(vm, column))


async def test_the_log_column_counts_errors_and_warnings() -> None:
    app = make_app(source(known=True))
    async with app.run_test(size=SIZE) as pilot:
        table = await until_in_app(pilot, lambda: app.polls and app.screen.query_one(VMTable), 5)
        assert cell(table, "db", "log") == "3E 5W"
        assert cell(table, "web", "log") == "2W"
        assert cell(table, "idle", "log") == "—"


async def test_the_log_column_is_empty_until_the_journal_was_read() -> None:
    app = make_app(source(known=False))
    async with app.run_test(size=SIZE) as pilot:
        table = await until_in_app(pilot, lambda: app.polls and app.screen.query_one(VMTable), 5)
        assert cell(table, "db", "log") == ""


async def test_a_crash_looping_vms_overview_shows_its_last_error() -> None:
    app = make_app(source(known=True))
    async with app.run_test(size=SIZE) as pilot:
        table = await until_in_app(pilot, lambda: app.polls and app.screen.query_one(VMTable), 5)
        table.move_cursor(row=table.get_row_index("crashy"))
        await pilot.pause()
        overview = app.screen.query_one(OverviewView)
        def shown() -> str:
            return "\n".join(overview.plain_lines)

        text = await until_in_app(pilot, lambda: "Last error" in shown() and shown(), 5)
        assert "qemu: could not open kernel [/x]  (l: logs)" in text
