"""What the monitor remembers across polls: each VM's recent figures (for sparklines and the
History tab) and which VMs are crash-looping.

One ``Timeline`` per source: the live one is fed by the ``Sampler`` (samples and unit states
every poll); a replay feeds it the recorded frames' samples, so both build the history the
same way.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass

from tui.host.crashloop import LOOP_WINDOW_S, CrashLoopTracker
from tui.host.model import VM
from tui.host.sampling.samples import VMSample


@dataclass(frozen=True)
class Point:
    t: float  # time.monotonic() of the sample
    cpu_pct: float | None  # % of the VM's vCPUs
    mem_bytes: int | None  # host footprint


class Timeline:
    """The last HISTORY_LEN points per VM (oldest first; ``None`` figures mark a gap), and the
    crash-looping VMs as of the last ``track_units``."""

    def __init__(self, history_len: int = 300, crash_window_s: float = LOOP_WINDOW_S) -> None:
        self.history_len = history_len
        self.history: dict[str, deque[Point]] = {}
        self.crash_looping: set[str] = set()
        self._loops = CrashLoopTracker(crash_window_s)

    def track_units(self, vms: Iterable[VM], now: float) -> set[str]:
        """Feed one poll's unit states (NOW: monotonic); returns the crash-looping VMs."""
        units = {vm.name: vm.unit for vm in vms}
        self.crash_looping = self._loops.update(units, now, time.time_ns() // 1000)
        return self.crash_looping

    def record(self, names: Collection[str], samples: Mapping[str, VMSample]) -> None:
        """One poll: NAMES are the VMs that exist now (the others are forgotten), SAMPLES the
        figures of those that run, by name."""
        for gone in set(self.history) - set(names):
            del self.history[gone]
        for name, s in samples.items():
            points = self.history.get(name)
            if points is None:
                points = self.history[name] = deque(maxlen=self.history_len)
            points.append(Point(s.t, s.cpu_pct_of_vcpus, s.mem_host_bytes))

    def replace(self, history: dict[str, list[Point]]) -> None:
        """Take over a history recorded whole (a replayed frame that carries one)."""
        self.history = {
            name: deque(points, maxlen=self.history_len) for name, points in history.items()
        }

    def points(self) -> dict[str, list[Point]]:
        """A copy of every VM's history, oldest first (plain lists, for a ``Snapshot``)."""
        return {name: list(points) for name, points in self.history.items()}
