"""The app's poll loop (dolphie's pattern): one daemon thread per poll runs ``source.poll()``
(the state dir listing, systemd, and the sampler, which bounds every VM's time); the next poll
is armed with ``set_timer`` only once the previous one has finished, for the interval after
the previous one *started* (polls keep their cadence), so polls never overlap and a slow host
stretches the interval instead of piling work up (at least a quarter interval between polls).
The UI thread only draws. Quitting never waits for a poll (``_poll_thread``). A partial
snapshot (the first look, its units) is followed by the next poll at once; the cursor resting
on another VM polls it at once (``focus_moved``)."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from textual.css.query import NoMatches

from tui.screens.main import MainScreen

if TYPE_CHECKING:
    from textual.timer import Timer

    from tui.feed import Snapshot

# The cursor rests this long on another VM before it is polled at once (the VM in focus is
# asked everything over QMP, the others only their state): holding an arrow key over 2000
# rows starts no poll per row.
FOCUS_SETTLE_S = 0.2


class PollingAppMixin:
    """The app's side of polling; the app provides ``source``, ``settings``, ``main_screen``,
    ``show_fleet`` and Textual's timers."""

    def init_polling(self) -> None:
        self.snapshot: Snapshot | None = None
        self.polls = 0  # finished polls (tests wait on this)
        self.poll_errors = 0
        self._polling = False
        self._poll_again = False
        self._poll_started = 0.0  # time.monotonic() at the start of the last poll
        self._next_poll: Timer | None = None
        self._polled_focus: str | None = None  # the focus the last poll started with
        self._focus_settle: Timer | None = None
        self._stopping = False

    def _first_poll(self) -> None:
        """Once the main screen is composed: the first answer in its first frame when the
        source has it already (the state dirs, read while Textual loaded), else a poll."""
        ready = getattr(self.source, "ready", None)
        snapshot = ready() if ready is not None else None
        if snapshot is None:
            self.poll()
            return
        self._polling, self._poll_started = True, time.monotonic()
        self._poll_done(snapshot, None)

    def poll(self) -> None:
        """Start a poll unless one runs; a request during a poll re-polls right after it."""
        if self._stopping:
            return
        if self._next_poll is not None:
            self._next_poll.stop()
            self._next_poll = None
        if self._polling:
            self._poll_again = True
            return
        self._polling = True
        self._poll_started = time.monotonic()
        focus = self.main_screen.selected_name if self.screen_stack else None
        self._polled_focus = focus
        threading.Thread(target=self._poll_thread, args=(focus,), name="poll", daemon=True).start()

    def focus_moved(self) -> None:
        """The cursor moved: once it rests (FOCUS_SETTLE_S), a VM in focus that the last
        poll did not have in focus is polled at once, not at the next tick (its detail needs
        what only the VM in focus is asked)."""
        if self._focus_settle is not None:
            self._focus_settle.stop()
        self._focus_settle = self.set_timer(FOCUS_SETTLE_S, self._focus_settled)

    def _focus_settled(self) -> None:
        self._focus_settle = None
        if self._stopping or not self.screen_stack:
            return
        focus = self.main_screen.selected_name
        if focus is not None and focus != self._polled_focus:
            self.poll()  # re-arms the poll timer when it is done

    def _poll_thread(self, focus: str | None) -> None:
        """One poll, off the UI thread, in a daemon thread of its own. Not a Textual thread
        worker: those run in the event loop's default executor, which ``asyncio.run`` joins
        on the way out, so one poll stuck in a read (a FIFO, a hung mount) would keep q from
        quitting. The result is handed over with ``call_later`` (thread-safe, never waits)."""
        try:
            snapshot, error = self.source.poll(focus), None
        except Exception as exc:  # shown, and polling goes on
            snapshot, error = None, exc
        self.call_later(self._poll_done, snapshot, error)

    def _poll_done(self, snapshot: Snapshot | None, error: BaseException | None) -> None:
        self._polling = False
        if self._stopping or not self.screen_stack:
            return  # shutting down
        if not isinstance(self.screen_stack[0], MainScreen):
            return
        try:
            if error is None:
                assert snapshot is not None
                self.snapshot = snapshot
                self.polls += 1
                if not self.show_fleet(self.snapshot):  # the fleet view alone is drawn
                    self.main_screen.show(self.snapshot)
                if self.snapshot.partial and not self._stopping:
                    # Not every answer in yet (the state dirs, then their units): on screen
                    # first, the next poll at once.
                    self._poll_again = False
                    self.call_after_refresh(self.poll)
                    return
            else:
                self.poll_errors += 1
                self.main_screen.show_error(f"poll failed: {error}")
        except NoMatches:
            return  # a poll that ended while the app tears its widgets down
        if self._poll_again:
            self._poll_again = False
            self.poll()
        else:
            interval = self.settings.interval
            took = time.monotonic() - self._poll_started
            self._next_poll = self.set_timer(max(interval / 4, interval - took), self.poll)
