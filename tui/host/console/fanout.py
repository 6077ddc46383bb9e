"""One console connection's recent output and subscribers: bytes and status changes go to
every subscriber (on the connection's thread); a subscriber whose backlog is full holds the
reading. No Textual here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from tui.host.console.status import (
    ConsoleStatus,
    DataCallback,
    StatusCallback,
    Subscription,
)

log = logging.getLogger(__name__)

TRIM_SLACK = 64 * 1024  # the buffer may exceed its limit by this much between trims


class Fanout:
    """The last ``buffer_limit`` bytes, the status, and who gets them."""

    def __init__(self, name: str, buffer_limit: int, status: ConsoleStatus) -> None:
        self.name = name
        self.buffer_limit = buffer_limit
        self._lock = threading.Lock()  # buffer, subscribers, status
        self._buffer = bytearray()
        self._subscribers: dict[int, tuple[DataCallback, StatusCallback | None]] = {}
        self._holds: dict[int, Callable[[], bool]] = {}  # token -> "my backlog is full"
        self._tokens = 0
        self._status = status
        self.last_used = time.monotonic()  # the pool closes the least recently used

    @property
    def status(self) -> ConsoleStatus:
        with self._lock:
            return self._status

    def buffer(self) -> bytes:
        """The recent output (at most about ``buffer_limit`` bytes)."""
        with self._lock:
            return self._recent()

    def _recent(self) -> bytes:
        """The buffer's last ``buffer_limit`` bytes, from a line start when one is near."""
        buf = self._buffer
        excess = len(buf) - self.buffer_limit
        if excess <= 0:
            return bytes(buf)
        newline = buf.find(b"\n", excess, excess + 4096)
        return bytes(buf[newline + 1 if newline >= 0 else excess :])

    def attach(
        self,
        on_data: DataCallback,
        on_status: StatusCallback | None = None,
        full: Callable[[], bool] | None = None,
    ) -> Subscription:
        """A new subscriber, with the history and status it starts from."""
        with self._lock:
            self._tokens += 1
            token = self._tokens
            self._subscribers[token] = (on_data, on_status)
            if full is not None:
                self._holds[token] = full
            self.last_used = time.monotonic()
            return Subscription(token, self._recent(), self._status)

    def detach(self, token: int) -> None:
        with self._lock:
            self._subscribers.pop(token, None)
            self._holds.pop(token, None)
            self.last_used = time.monotonic()

    @property
    def attached(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def clear(self) -> None:
        """Drop every subscriber (the connection closed)."""
        with self._lock:
            self._subscribers.clear()
            self._holds.clear()

    def deliver(self, data: bytes) -> None:
        """Keep ``data`` in the buffer and give it to every subscriber."""
        if not data:
            return
        with self._lock:
            buf = self._buffer
            buf += data
            excess = len(buf) - self.buffer_limit
            # Trim once per TRIM_SLACK bytes, not on every (often tiny) read.
            if excess > min(TRIM_SLACK, self.buffer_limit // 4):
                # Cut at a line start when one is near, so history starts cleanly.
                newline = buf.find(b"\n", excess, excess + 4096)
                del buf[: newline + 1 if newline >= 0 else excess]
            subscribers = [cb for cb, _ in self._subscribers.values()]
        for callback in subscribers:
            try:
                callback(data)
            except Exception:  # a subscriber's bug must not end the connection
                log.exception("console %s: data callback failed", self.name)

    def held(self) -> bool:
        """A subscriber asked to pause reading (its backlog is full)."""
        with self._lock:
            holds = list(self._holds.values())
        for full in holds:
            try:
                if full():
                    return True
            except Exception:
                log.exception("console %s: hold callback failed", self.name)
        return False

    def set_status(self, status: ConsoleStatus) -> None:
        """The new status, told to every subscriber that asked for it (once per change)."""
        with self._lock:
            if status == self._status:
                return
            self._status = status
            subscribers = [cb for _, cb in self._subscribers.values() if cb is not None]
        for callback in subscribers:
            try:
                callback(status)
            except Exception:
                log.exception("console %s: status callback failed", self.name)
