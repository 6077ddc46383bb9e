"""A self-pipe that wakes a console connection's thread out of ``select``: typed bytes are
queued, a subscriber has room again, the connection closes. No Textual here."""

from __future__ import annotations

import contextlib
import os
import select
import threading


class WakePipe:
    """``wake()`` from any thread; the owner selects on :attr:`fd` or waits in :meth:`wait`."""

    def __init__(self) -> None:
        self.fd, self._write_fd = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._lock = threading.Lock()
        self._closed = False

    def wake(self) -> None:
        if self._closed:
            return
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._write_fd, b"x")

    def drain(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(self.fd, 512):
                pass

    def wait(self, seconds: float) -> None:
        """Until woken or ``seconds`` have passed; the wake-ups are drained."""
        with contextlib.suppress(InterruptedError, OSError):
            select.select([self.fd], [], [], max(0.0, seconds))
        self.drain()

    def close(self) -> None:
        """Close both ends (once; later wakes do nothing)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        for fd in (self.fd, self._write_fd):
            with contextlib.suppress(OSError):
                os.close(fd)
