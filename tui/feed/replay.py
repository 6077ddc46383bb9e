"""A recorded host played back (``ReplaySource``): snapshot tests and screenshots that do not
depend on the machine. Recordings are read by ``tui.feed.recording.load_frames``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from tui.feed.snapshot import Snapshot
from tui.host.sampling import Timeline


class ReplaySource:
    """Recorded snapshots, one per poll; the last one repeats forever.

    The per-VM history is rebuilt from the frames' samples as they are played (recordings
    need not store it). ``start_at_last``: the first poll already returns the last frame, with
    the history of the whole recording, which is what a snapshot test wants.
    """

    def __init__(
        self, frames: Sequence[Snapshot], *, start_at_last: bool = False, history_len: int = 300
    ) -> None:
        if not frames:
            raise ValueError("a replay needs at least one frame")
        self.frames = list(frames)
        self.timeline = Timeline(history_len)  # as the live sampler builds it
        self.index = 0
        self._last: Snapshot | None = None
        if start_at_last:
            for frame in self.frames[:-1]:
                self._play(frame)
            self.index = len(self.frames) - 1

    def _play(self, frame: Snapshot) -> Snapshot:
        if frame.history:
            self.timeline.replace(frame.history)
        else:
            names = [vm.name for vm in frame.inventory.vms]
            self.timeline.record(names, frame.samples)
        return dataclasses.replace(frame, history=self.timeline.points())

    def poll(self, focus: str | None = None) -> Snapshot:
        if self.index >= len(self.frames) and self._last is not None:
            return self._last  # the end of the recording: nothing new, the history stays
        frame = self.frames[min(self.index, len(self.frames) - 1)]
        self.index += 1
        self._last = self._play(frame)
        return self._last

    def close(self) -> None:
        pass
