"""Host totals: CPU busy % (from /proc/stat deltas, via psutil.cpu_times) and memory."""

from __future__ import annotations

import os
import time

import psutil

from tui.host.sampling.samples import HostSample


def host_ncpu() -> int:
    """All CPUs of the host (what cgroup and /proc/stat totals are spread over)."""
    return os.cpu_count() or 1


class HostCPU:
    """Busy % between calls. Keeps its own previous totals, so it does not disturb (or get
    disturbed by) other psutil.cpu_percent() callers in the same process."""

    def __init__(self) -> None:
        self._prev: tuple[float, float] | None = None
        self._last: float | None = None

    def sample(self) -> float | None:
        times = psutil.cpu_times()
        idle = times.idle + getattr(times, "iowait", 0.0)
        total = sum(times)
        # guest/guest_nice are already inside user/nice on Linux.
        total -= getattr(times, "guest", 0.0) + getattr(times, "guest_nice", 0.0)
        prev = self._prev
        if prev is not None and total <= prev[0]:
            return self._last  # no clock tick since the last call: nothing new to say
        self._prev = (total, idle)
        if prev is None:
            return None
        busy = (total - prev[0]) - (idle - prev[1])
        self._last = max(0.0, min(100.0, 100.0 * busy / (total - prev[0])))
        return self._last


def sample_host(cpu: HostCPU, ncpu: int | None = None) -> HostSample:
    mem = psutil.virtual_memory()
    try:
        load1: float | None = os.getloadavg()[0]
    except OSError:
        load1 = None
    return HostSample(
        ncpu=ncpu or host_ncpu(),
        cpu_pct=cpu.sample(),
        mem_total_bytes=mem.total,
        mem_used_bytes=mem.total - mem.available,
        mem_available_bytes=mem.available,
        load1=load1,
        t=time.monotonic(),
    )
