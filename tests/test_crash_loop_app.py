"""A crash-looping VM reads as one steady state in the table (issue 10 item 4, issue 9.9).

The unit's states are the ones systemd cycles through for the lab's `crashy` (a runner that
exits after a second, Restart=always): activating/start, active/running (with a MainPID),
activating/auto-restart, and for an instant of each restart job inactive/dead. The real
``Sampler`` (and its crash-loop tracker) sees them poll by poll.
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path

from tests.monitor_support import SIZE, make_app, until
from tui.feed import Snapshot
from tui.host.model import VM, Drift, Inventory, UnitState
from tui.host.sampling import Sampler
from tui.host.settings import HostSettings
from tui.widgets.vm_table import VMTable

# (active, sub, running?) per poll; NRestarts grows by one at each auto-restart.
CYCLE = (
    ("activating", "auto-restart", False),
    ("inactive", "dead", False),  # the restart job's stop half, caught by a poll
    ("active", "running", True),
    ("activating", "auto-restart", False),
    ("activating", "auto-restart", False),
)


class CrashyCycle:
    def __init__(self) -> None:
        self.sampler = Sampler(guest_stats_interval=0)
        self.steps = itertools.cycle(CYCLE)
        self.restarts = 40
        self.settings = HostSettings(state_dir=Path("/nonexistent"))

    def poll(self, focus: str | None = None) -> Snapshot:
        active, sub, running = next(self.steps)
        if sub == "auto-restart" and active == "activating":
            self.restarts += 1
        unit = UnitState(
            name="microvm@crashy.service", load="loaded", active=active, sub=sub,
            main_pid=os.getpid() if running else None, restarts=self.restarts,
        )  # fmt: skip
        vm = VM(
            name="crashy", path=Path("/nonexistent/crashy"), hypervisor="kvmtool",
            drift=Drift.NOT_BOOTED, vcpu=1, mem_mib=128, unit=unit,
        )  # fmt: skip
        samples = self.sampler.sample([vm], self.settings)
        return Snapshot(
            inventory=Inventory(state_dir=self.settings.state_dir, vms=[vm]),
            samples=samples,
            crash_looping=sorted(self.sampler.timeline.crash_looping),
        )

    def close(self) -> None:
        self.sampler.close()


async def test_crashy_is_one_steady_state_poll_after_poll() -> None:
    source = CrashyCycle()
    app = make_app(source, interval=0.01)
    try:
        async with app.run_test(size=SIZE) as pilot:
            table = app.main_screen.query_one(VMTable)
            # Three restarts seen: a crash loop from then on.
            await until(pilot, lambda: app.polls >= 8, timeout=15)
            assert app.snapshot.crash_looping == ["crashy"]
            seen: set[tuple[str, str]] = set()
            for _ in range(3 * len(CYCLE)):
                polls = app.polls
                await until(pilot, lambda polls=polls: app.polls > polls, timeout=5)
                seen.add((table.get_cell("crashy", "state").plain,
                          table.get_cell("crashy", "net").plain))  # fmt: skip
            assert seen == {("⟳ crash-looping", "no NICs")}
    finally:
        source.close()
