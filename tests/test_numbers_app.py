"""What the numbers say on screen (issue 10 items 2 and 3): units, the 100% cap, the quiet
source line of memory and CPU. Fed by the recorded lab (tests/fixtures/monitor)."""

from __future__ import annotations

import copy

from tests.monitor_support import SIZE, frames, make_app, until
from tui.feed import ReplaySource
from tui.host.sampling import NetRate
from tui.widgets.detail.pane import DetailPane
from tui.widgets.vm_table import VMTable


def web_busy() -> ReplaySource:
    """The last recorded poll, with web's CPU a little over 100% of its one vCPU (its cgroup
    counts QEMU's own threads too) and 6.3 MiB/s going to the guest."""
    last = copy.deepcopy(frames()[-1])
    web = last.samples["web"]
    web.cpu_pct_of_vcpus, web.cpu_pct_of_host = 101.3, 50.6
    web.net = {"vm-web": NetRate(guest_rx_bps=6.3 * 2**20, guest_tx_bps=70.0)}
    return ReplaySource([last])


async def overview_lines(app, pilot) -> list[str]:  # type: ignore[no-untyped-def]
    table = app.main_screen.query_one(VMTable)
    table.move_cursor(row=table.get_row_index("web"))
    await pilot.pause()
    view = app.main_screen.query_one(DetailPane).query_one("#view-overview")
    return [line.rstrip() for line in view.plain_lines]


async def test_cpu_over_100_is_capped_in_the_table_and_explained_in_the_overview() -> None:
    app = make_app(web_busy())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        cell = app.main_screen.query_one(VMTable).get_cell("web", "cpu").plain
        assert cell.split()[0] == "100%", cell
        lines = await overview_lines(app, pilot)
        text = "\n".join(lines)
        assert "101% of 1 vCPU" in text
        assert "over 100%: the unit's CPU counts QEMU's own threads" in text


async def test_net_rates_carry_their_unit() -> None:
    app = make_app(web_busy())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        assert app.main_screen.query_one(VMTable).get_cell("web", "net").plain == (
            "↓6.3MiB/s ↑70B/s"
        )
        await overview_lines(app, pilot)
        await pilot.press("2")
        await pilot.pause()
        network = "\n".join(
            app.main_screen.query_one(DetailPane).query_one("#view-network").plain_lines
        )
        assert "↓6.3MiB/s ↑70B/s" in network


async def test_memory_shows_the_value_and_its_source_quietly_below() -> None:
    app = make_app(web_busy())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        lines = await overview_lines(app, pilot)
        at = next(i for i, line in enumerate(lines) if "host footprint" in line)
        assert lines[at].split("host footprint", 1)[1].strip() == "180 MiB"
        hint = lines[at + 1].strip()
        assert hint.startswith("from process RssAnon+RssShmem; not the unit's cgroup: ")
        assert "cgroup not found" in hint
