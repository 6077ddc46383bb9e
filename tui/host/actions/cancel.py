"""A cancel token: one per job, checked between steps and watched while commands run."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable

from tui.host.actions.errors import Cancelled


class CancelToken:
    def __init__(self) -> None:
        self._event = threading.Event()
        self._lock = threading.Lock()
        self._callbacks: list[Callable[[], None]] = []

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def cancel(self) -> None:
        with self._lock:
            if self._event.is_set():
                return
            self._event.set()
            callbacks = list(self._callbacks)
        for callback in callbacks:
            callback()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until cancelled (True) or TIMEOUT seconds passed (False)."""
        return self._event.wait(timeout)

    def check(self, what: str = "the job") -> None:
        if self._event.is_set():
            raise Cancelled(f"{what} was cancelled")

    def on_cancel(self, callback: Callable[[], None]) -> Callable[[], None]:
        """Call CALLBACK (from the cancelling thread) on cancel, at once if already cancelled.
        Returns a function that unregisters it."""
        with self._lock:
            already = self._event.is_set()
            if not already:
                self._callbacks.append(callback)
        if already:
            callback()

        def remove() -> None:
            with self._lock, contextlib.suppress(ValueError):
                self._callbacks.remove(callback)

        return remove
