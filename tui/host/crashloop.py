"""When is a VM crash-looping? Its unit's ``NRestarts`` (systemd's count of automatic restarts
since the last start by hand) grew by at least ``LOOP_RESTARTS`` within the last
``LOOP_WINDOW_S`` seconds.

Two readers: ``CrashLoopTracker`` for the monitor, which sees NRestarts poll after poll and
counts the growth inside the window; ``looks_crash_looping`` for `list`, which sees one moment
and can only say that the unit restarted that often and (re)started within the window. The
monitor uses the second too while it has watched a VM for less than a window.

A unit in a crash loop passes through ``inactive/dead`` for a moment each time systemd's
restart job stops it before starting it again; a poll can land there. The monitor therefore
lets a loop end only when the unit is seen stopped (inactive, failed) on two polls in a row:
one such poll is the loop's own restart, two are a stop.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from tui.host.model import UnitState

LOOP_RESTARTS = 3  # restarts ...
LOOP_WINDOW_S = 300.0  # ... within this many seconds
STOPPED = ("inactive", "failed")
MAX_KEPT = 256  # restart times kept per VM (more than any window needs)


@dataclass
class _Seen:
    last: int  # NRestarts at the previous poll
    restarts: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_KEPT))
    stopped_polls: int = 0  # polls in a row that saw the unit stopped
    first_seen: float = 0.0
    looping: bool = False


class CrashLoopTracker:
    """Feed it every poll's units (``update``); it answers which VMs are crash-looping."""

    def __init__(self, window_s: float = LOOP_WINDOW_S, restarts: int = LOOP_RESTARTS) -> None:
        self.window_s = window_s
        self.restarts = restarts
        self._seen: dict[str, _Seen] = {}

    def update(
        self, units: dict[str, UnitState | None], now: float, now_usec: int | None = None
    ) -> set[str]:
        """UNITS: each VM's main unit at this poll (None or no NRestarts: unknown, forgotten).
        NOW: a monotonic clock. NOW_USEC (wall clock, µs): while a VM has been watched for
        less than the window, what `list` would say (``looks_crash_looping``) counts too, so a
        loop that was going on before the first look shows at once. Returns the names of the
        VMs crash-looping now."""
        looping: set[str] = set()
        window_start = now - self.window_s
        for name, unit in units.items():
            if unit is None or unit.restarts is None:
                self._seen.pop(name, None)
                continue
            n = unit.restarts
            seen = self._seen.get(name)
            if seen is None:
                # What happened before the first look is unknown: count from here.
                seen = self._seen[name] = _Seen(last=n, first_seen=now)
            elif n < seen.last:
                # NRestarts went down: started by hand since (a new count), or a new manager.
                seen.restarts.clear()
                seen.looping = False
            else:
                for _ in range(min(n - seen.last, MAX_KEPT)):
                    seen.restarts.append(now)
            seen.last = n
            while seen.restarts and seen.restarts[0] < window_start:
                seen.restarts.popleft()
            stopped = unit.active in STOPPED
            seen.stopped_polls = seen.stopped_polls + 1 if stopped else 0
            climbing = len(seen.restarts) >= self.restarts or (
                now_usec is not None
                and now - seen.first_seen < self.window_s
                and looks_crash_looping(unit, now_usec)
            )
            if not climbing or seen.stopped_polls >= 2:
                seen.looping = False
            elif not stopped or seen.looping:
                # A stopped unit does not start a loop, but one poll of it does not end one.
                seen.looping = True
            if seen.looping:
                looping.add(name)
        for gone in set(self._seen) - set(units):
            del self._seen[gone]
        return looping


def looks_crash_looping(unit: UnitState | None, now_usec: int) -> bool:
    """One look (`list`): at least LOOP_RESTARTS automatic restarts, not stopped, and the last
    (re)start within the window. It cannot tell how the restarts were spread over time."""
    if unit is None or unit.restarts is None or unit.restarts < LOOP_RESTARTS:
        return False
    if unit.active in (*STOPPED, None, "unknown"):
        return False
    started = unit.active_enter_usec
    if started is None:
        return unit.sub == "auto-restart"
    return now_usec - started <= LOOP_WINDOW_S * 1_000_000


def crash_loop_problem(unit: UnitState) -> str:
    return (
        f"crash-looping: {unit.restarts} automatic restarts of {unit.name}, "
        f"the last within {LOOP_WINDOW_S / 60:.0f} min"
    )
