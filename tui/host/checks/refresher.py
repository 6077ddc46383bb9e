"""The host checks in the monitor: run in a thread of their own at most once a REFRESH
seconds on the poll's latest listing, so a poll never waits for them; a poll takes what the
last run found (``report``) and, when one is due, starts the next. ``run_now`` (the checks
view's "check again", and after a clean step) starts one at once."""

from __future__ import annotations

import threading
import time

from tui.host.checks.findings import CheckReport
from tui.host.model import Inventory
from tui.host.sampling.cgroup import CgroupLayout, host_layout
from tui.host.settings import HostSettings


class HostChecks:
    REFRESH = 60.0

    def __init__(
        self,
        settings: HostSettings,
        refresh: float = REFRESH,
        layout: CgroupLayout | None = None,
    ) -> None:
        self.settings = settings
        self.refresh = refresh
        self.layout = layout
        self.report: CheckReport | None = None  # None: not run yet
        self.runs = 0  # finished runs (tests wait on this)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = float("-inf")

    def poll(self, inventory: Inventory, now: float | None = None) -> None:
        """Start a run on INVENTORY when one is due; never waits."""
        now = time.monotonic() if now is None else now
        if now - self._started >= self.refresh:
            self._start(inventory, now)

    def run_now(self, inventory: Inventory) -> None:
        self._start(inventory, time.monotonic())

    def _start(self, inventory: Inventory, now: float) -> None:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return
            self._started = now
            self._thread = threading.Thread(
                target=self._run, args=(inventory,), name="host-checks", daemon=True
            )
            self._thread.start()

    def _run(self, inventory: Inventory) -> None:
        if self.layout is None:
            self.layout = host_layout()
        try:
            # Imported by the first run, in its thread: the app's first frame needs none of it.
            from tui.host.checks.report import run_checks

            report = run_checks(inventory, self.settings, self.layout)
        except Exception as exc:  # a bug must not end the monitor: say it, in one line
            report = CheckReport(errors=[f"host checks failed: {type(exc).__name__}: {exc}"])
        with self._lock:
            self.report = report
            self.runs += 1

    def latest(self) -> CheckReport | None:
        with self._lock:
            return self.report
