"""The first polls of a source, started before the UI is up (``Prefetched``)."""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from tui.feed.snapshot import Snapshot, Source


class Prefetched:
    """A source whose first answer is worked out at once, in a thread, while the UI is still
    loading (importing Textual and composing the screen take about as long as a first poll).

    When the source can take a ``first_look`` (the state dirs only; on a big host only a
    screenful of them), that is the first answer (the app shows the VMs while systemd
    answers), and the next poll runs when the app asks for it, once it has shown the first
    look: run beside the UI's start it slowed the first table down (both are Python: one
    thread runs at a time). On a small host systemd was asked by the first look already, so
    its answer is not put off; on a big one it is asked once the first screenful is shown.
    """

    def __init__(self, source: Source) -> None:
        self.source = source
        first_look: Callable[[], Snapshot] | None = getattr(source, "first_look", None)
        step = first_look if first_look is not None else (lambda: source.poll(None))
        self._waiting = True  # the thread's answer is not taken yet
        self._answers: queue.SimpleQueue[Snapshot | BaseException] = queue.SimpleQueue()
        threading.Thread(target=self._run, args=(step,), name="first-poll", daemon=True).start()

    def _run(self, step: Callable[[], Snapshot]) -> None:
        try:
            self._answers.put(step())
        except BaseException as exc:  # handed to the app's poll worker, which reports it
            self._answers.put(exc)

    def ready(self) -> Snapshot | None:
        """The first answer when it is in already (never waits; taken), else None: the app
        shows it in its first frame instead of painting an empty table first."""
        if not self._waiting:
            return None
        try:
            answer = self._answers.get_nowait()
        except queue.Empty:
            return None
        if isinstance(answer, BaseException):
            self._answers.put(answer)  # the poll raises it, and the app reports it
            return None
        self._waiting = False
        return answer

    def poll(self, focus: str | None = None) -> Snapshot:
        if self._waiting:
            self._waiting = False
            answer = self._answers.get()
            if isinstance(answer, BaseException):
                raise answer
            return answer
        return self.source.poll(focus)

    def close(self) -> None:
        self.source.close()
