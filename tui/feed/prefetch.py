"""The first polls of a source, started before the UI is up (``Prefetched``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from tui.feed.snapshot import Snapshot, Source


class Prefetched:
    """A source whose first polls start at once, in a thread, while the UI is still loading
    (importing Textual and composing the screen take about as long as a first poll).

    When the source can take a ``first_look`` (the state dirs only), that comes first and
    the full poll follows in the same thread: the app shows the VMs while systemd answers.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        first_look: Callable[[], Snapshot] | None = getattr(source, "first_look", None)
        steps = [lambda: source.poll(None)]
        if first_look is not None:
            steps.insert(0, first_look)
        self._waiting = len(steps)  # answers the thread will hand over, in order
        self._answers: queue.SimpleQueue[Snapshot | BaseException] = queue.SimpleQueue()
        threading.Thread(target=self._run, args=(steps,), name="first-poll", daemon=True).start()

    def _run(self, steps: list[Callable[[], Snapshot]]) -> None:
        for step in steps:
            try:
                self._answers.put(step())
            except BaseException as exc:  # handed to the app's poll worker, which reports it
                self._answers.put(exc)
                return

    def poll(self, focus: str | None = None) -> Snapshot:
        if self._waiting:
            self._waiting -= 1
            answer = self._answers.get()
            if isinstance(answer, BaseException):
                self._waiting = 0  # the thread stopped: later polls go to the source
                raise answer
            return answer
        return self.source.poll(focus)

    def close(self) -> None:
        self.source.close()
