"""Per-VM figures from the journal for the table and the Overview: how many err/warning lines
each VM's units logged in the last hour (one journalctl for all VMs, run once a minute, not per
poll), and the line that most likely says why a VM failed."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from tui.host.logs.entry import LogLine
from tui.host.logs.query import LogQuery, Since, vm_units
from tui.host.logs.reader import read_journal
from tui.host.settings import HostSettings

COUNT_WINDOW = "last hour"
MAX_COUNTED = 50_000  # entries read for the counts at most
UNIT_PATTERNS = ("microvm@*.service", "microvm-*@*.service", "install-microvm-*.service")


@dataclass(frozen=True)
class ProblemCounts:
    errors: int = 0  # err, crit, alert, emerg
    warnings: int = 0


def vm_of_unit(unit: str) -> str | None:
    """The VM a unit of ours belongs to: microvm@NAME, microvm-X@NAME, install-microvm-NAME."""
    name = unit.removesuffix(".service")
    if name.startswith("install-microvm-"):
        return name[len("install-microvm-") :] or None
    if name.startswith("microvm") and "@" in name:
        return name.partition("@")[2] or None
    return None


def problem_counts(
    settings: HostSettings, timeout: float | None = None
) -> tuple[dict[str, ProblemCounts], str | None]:
    """({vm: counts} for VMs with any, error or None): err and warning lines in the last hour."""
    query = LogQuery(units=UNIT_PATTERNS, since=Since.HOUR, priority=4, lines=MAX_COUNTED)
    result = read_journal(settings, query, timeout=timeout)
    if result.error:
        return {}, result.error
    counts: dict[str, list[int]] = {}
    for line in result.lines:
        vm = vm_of_unit(line.unit)
        if vm is None:
            continue
        pair = counts.setdefault(vm, [0, 0])
        pair[0 if line.priority <= 3 else 1] += 1
    return {vm: ProblemCounts(e, w) for vm, (e, w) in counts.items()}, None


def last_error(settings: HostSettings, vm: str, timeout: float | None = None) -> LogLine | None:
    """The last err-or-worse line of the VM's units in the last hour; else the last line they
    wrote themselves (a hypervisor's complaint on stderr is often logged as info)."""
    units = vm_units(vm)
    for priority in (3, None):
        query = LogQuery(units=units, since=Since.HOUR, priority=priority, lines=20)
        result = read_journal(settings, query, timeout=timeout)
        own = [line for line in result.lines if not line.from_manager and line.text.strip()]
        if own:
            return own[-1]
    return None


class JournalSummary:
    """The table's and Overview's journal figures, refreshed in a thread of their own at most
    once a REFRESH seconds, so a poll never waits for journalctl: a poll takes what the last
    refresh found and, when one is due, starts the next.

    FAILING (VMs that failed or crash-loop) get their last error line in the same refresh.
    """

    REFRESH = 60.0

    def __init__(self, settings: HostSettings, refresh: float = REFRESH) -> None:
        self.settings = settings
        self.refresh = refresh
        self.counts: dict[str, ProblemCounts] = {}
        self.last_errors: dict[str, LogLine] = {}
        self.error: str | None = None
        self.refreshes = 0  # finished refreshes (tests wait on this)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._started = float("-inf")
        self._failing: frozenset[str] = frozenset()

    def poll(self, failing: set[str] | frozenset[str], now: float | None = None) -> None:
        """Start a refresh when one is due (or when a VM newly fails); never waits."""
        now = time.monotonic() if now is None else now
        failing = frozenset(failing)
        due = now - self._started >= self.refresh or not failing <= self._failing
        busy = self._thread is not None and self._thread.is_alive()
        if not due or busy:
            return
        self._started = now
        self._failing = failing
        self._thread = threading.Thread(
            target=self._refresh, args=(failing,), name="journal-summary", daemon=True
        )
        self._thread.start()

    def _refresh(self, failing: frozenset[str]) -> None:
        counts, error = problem_counts(self.settings)
        errors = {}
        for vm in sorted(failing):
            line = last_error(self.settings, vm)
            if line is not None:
                errors[vm] = line
        with self._lock:
            self.counts, self.error, self.last_errors = counts, error, errors
            self.refreshes += 1

    def snapshot(self) -> tuple[dict[str, ProblemCounts], dict[str, LogLine], str | None]:
        with self._lock:
            return dict(self.counts), dict(self.last_errors), self.error
