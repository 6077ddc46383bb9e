"""A small ring buffer of per-VM figures for sparklines and graphs."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Point:
    t: float  # time.monotonic() of the sample
    cpu_pct: float | None  # % of the VM's vCPUs
    mem_bytes: int | None  # host footprint


class History:
    """The last MAXLEN points of one VM (oldest first). ``None`` marks a gap."""

    def __init__(self, maxlen: int = 300) -> None:
        self._points: deque[Point] = deque(maxlen=maxlen)

    @property
    def maxlen(self) -> int:
        return self._points.maxlen or 0

    def append(self, t: float, cpu_pct: float | None, mem_bytes: int | None) -> None:
        self._points.append(Point(t, cpu_pct, mem_bytes))

    def clear(self) -> None:
        self._points.clear()

    def __len__(self) -> int:
        return len(self._points)

    def __iter__(self) -> Iterator[Point]:
        return iter(self._points)

    def points(self) -> list[Point]:
        return list(self._points)

    def cpu(self, last: int | None = None) -> list[float | None]:
        pts = list(self._points)[-last:] if last else list(self._points)
        return [p.cpu_pct for p in pts]

    def mem(self, last: int | None = None) -> list[int | None]:
        pts = list(self._points)[-last:] if last else list(self._points)
        return [p.mem_bytes for p in pts]

    def latest(self) -> Point | None:
        return self._points[-1] if self._points else None
