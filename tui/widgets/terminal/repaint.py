"""Which rows of the terminal need a repaint, and the row versions that key its line cache.

The emulator marks rows dirty and counts whole-screen scrolls; this folds both into a version
per live row (a row's version follows its text up the screen when it scrolls, so a flood
re-renders only rows that really changed) and into the set of rows to repaint next frame.
"""

from __future__ import annotations

from typing import Literal

from tui.vt import TerminalScreen

FLOOD_REPAINT_INTERVAL = 0.1  # while whole screens scroll by, 10 repaints/s are plenty

# What a frame repaints: everything, or bands of rows as (first y, height); [] for nothing.
Repaint = Literal["all"] | list[tuple[int, int]]


class RepaintTracker:
    """Row versions of the live screen and the rows waiting for a repaint."""

    def __init__(self, rows: int) -> None:
        self._version = 0
        self.versions = self._new_versions(rows)
        self._pending_rows: set[int] = set()
        self._pending_full = False
        self._scrolled_since_paint = 0
        self._last_full_paint = 0.0
        self._last_cursor = (-1, -1, False)
        self._last_total = 0

    def resized(self, rows: int) -> None:
        """The screen changed size: every row is new."""
        self.versions = self._new_versions(rows)
        self._pending_full = True

    def repaint_all(self) -> None:
        self._pending_full = True

    def sync(self, screen: TerminalScreen, scroll: int) -> int:
        """Fold the screen's dirty rows into row versions and pending rows; returns the
        scrollback offset that keeps a scrolled-back view on the same text."""
        versions = self.versions
        if screen.scrolled:
            # Rows moved up: their versions move with them; the new rows are dirty anyway.
            shift = min(screen.scrolled, len(versions))
            screen.scrolled = 0
            del versions[:shift]
            versions.extend(self._new_versions(shift))
            self._scrolled_since_paint += shift
            self._pending_full = True
        if screen.dirty:
            for row in screen.dirty:
                if 0 <= row < len(versions):
                    self._version += 1
                    versions[row] = self._version
            self._pending_rows.update(screen.dirty)
            screen.dirty.clear()
        cursor = screen.cursor
        position = (cursor.x, cursor.y, cursor.hidden)
        if position != self._last_cursor:
            self._pending_rows.update((self._last_cursor[1], cursor.y))
            self._last_cursor = position
        total = screen.history_total
        if total != self._last_total:
            grew = total - self._last_total
            self._last_total = total
            if scroll:
                # Keep the scrolled-back view on the same text while output continues.
                scroll = min(scroll + grew, len(screen.history))
                self._pending_full = True
        if scroll > len(screen.history):
            scroll = len(screen.history)  # the guest cleared the scrollback (CSI 3 J)
            self._pending_full = True
        return scroll

    def take(self, rows: int, scroll: int, now: float) -> Repaint:
        """What to repaint this frame (call after :meth:`sync`); forgets what it returns."""
        if self._pending_full:
            if (
                self._scrolled_since_paint >= rows
                and now - self._last_full_paint < FLOOD_REPAINT_INTERVAL
            ):
                return []  # a flood: every line on screen is new each frame, paint less often
            self._scrolled_since_paint = 0
            self._last_full_paint = now
            self._pending_full = False
            self._pending_rows.clear()
            return "all"
        if not self._pending_rows:
            return []
        ys = sorted(r + scroll for r in self._pending_rows if 0 <= r + scroll < rows)
        self._pending_rows.clear()
        if len(ys) > rows // 2:
            return "all"
        bands: list[tuple[int, int]] = []
        start = previous = None
        for y in ys:
            if start is None or previous is None:
                start = previous = y
            elif y == previous + 1:
                previous = y
            else:
                bands.append((start, previous - start + 1))
                start = previous = y
        if start is not None and previous is not None:
            bands.append((start, previous - start + 1))
        return bands

    def _new_versions(self, count: int) -> list[int]:
        """Fresh, unique row versions (two rows never share one: it keys the line cache)."""
        first = self._version + 1
        self._version += count
        return list(range(first, first + count))
