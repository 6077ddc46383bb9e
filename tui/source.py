"""Where the monitor's data comes from: one ``Snapshot`` per poll.

``LiveSource`` reads the host (``list_vms`` + ``Sampler.sample``); ``ReplaySource`` plays back
snapshots recorded to JSON (``tui.recording``), so snapshot tests and screenshots are
deterministic. The app only knows the ``Source`` protocol: ``poll(focus) -> Snapshot``, called
from a worker thread, never two at once. A ``partial`` snapshot (the state dirs before systemd
answered: ``LiveSource.first_look``, handed over first by ``Prefetched``) is followed by a poll
at once.
"""

from __future__ import annotations

import contextlib
import dataclasses
import queue
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tui.host import parsecache
from tui.host.inventory import (
    Listing,
    finish_listing,
    pending_view,
    start_listing,
    vm_dirs,
)
from tui.host.links import LinkReader, LinkTable
from tui.host.logs.entry import LogLine
from tui.host.logs.summary import JournalSummary, ProblemCounts
from tui.host.model import Inventory
from tui.host.sampling import HostSample, Point, Sampler, VMSample
from tui.host.settings import HostSettings
from tui.host.statedir import RunnerCache
from tui.host.systemd_bus import systemd_client


@dataclass
class Snapshot:
    """Everything one poll knows. Plain data, owned by the UI thread once handed over."""

    inventory: Inventory
    samples: dict[str, VMSample] = field(default_factory=dict)  # running VMs only
    host: HostSample | None = None
    history: dict[str, list[Point]] = field(default_factory=dict)  # oldest first
    crash_looping: list[str] = field(default_factory=list)  # VM names
    # From the journal, refreshed once a minute off the poll (``JournalSummary``): err and
    # warning lines in the last hour per VM (None: not known yet), the last error line of
    # each failed or crash-looping VM, and why the journal could not be read.
    log_counts: dict[str, ProblemCounts] | None = None
    last_errors: dict[str, LogLine] = field(default_factory=dict)
    journal_error: str | None = None
    poll_ms: float | None = None  # how long the poll took (None: replayed)
    hostname: str | None = None
    # The state dirs only: units not asked yet, nothing sampled (``LiveSource.first_look``);
    # the app polls again at once.
    partial: bool = False


class Source(Protocol):
    def poll(self, focus: str | None = None) -> Snapshot:
        """One poll. FOCUS: the VM on screen (costlier checks, e.g. open volume files)."""
        ...

    def close(self) -> None: ...


# The control socket (QMP...) of a VM not on screen is asked every third poll: of its answers
# only the run state reaches the table, and a QMP session costs as much CPU as all of the
# VM's local reads. The VM on screen is asked every poll (its detail shows all of them).
REMOTE_EVERY = 3


class LiveSource:
    """The real host: a state dir listing and a ``Sampler`` kept between polls.

    Kept for the app's lifetime too: the parses of runner packages (store paths never change),
    and the links reader (one netlink socket in the VMs' namespace), read once per poll for
    both the listing and the sampler.
    """

    def __init__(self, settings: HostSettings, *, sample_timeout: float = 1.0) -> None:
        self.settings = settings
        self.sampler = Sampler(timeout=sample_timeout, remote_every=REMOTE_EVERY)
        self.runners = RunnerCache()
        with contextlib.suppress(OSError):  # room for the parses on disk (read below)
            self.runners.room_for(len(vm_dirs(settings.state_dir)))
        self.links = LinkReader(settings.netns, timeout=settings.timeout)
        self.systemd = systemd_client(settings)  # follows the units; a poll reads its table
        self.hostname = socket.gethostname()
        self.journal = JournalSummary(settings)
        self._links: LinkTable | None = None  # the last listing's read, for its sampling
        self._started: Listing | None = None  # the first look's, finished by the next poll
        # `list`'s parses on disk make the first poll quicker; that poll's are written back.
        self._persist = settings.cache_dir is not None
        if settings.cache_dir is not None:
            parsecache.load(self.runners, settings.cache_dir)

    def poll(self, focus: str | None = None) -> Snapshot:
        t0 = time.perf_counter()
        inv = self.listing()
        samples = self.sample(inv, focus)
        history = {name: h.points() for name, h in self.sampler.history.items()}
        looping = sorted(self.sampler.crash_looping)
        failing = {vm.name for vm in inv.vms if vm.unit and vm.unit.active == "failed"}
        self.journal.poll(failing | set(looping))  # starts a refresh when due; never waits
        counts, last_errors, journal_error = self.journal.snapshot()
        return Snapshot(
            inventory=inv,
            samples=samples,
            host=self.sampler.host,
            history=history,
            crash_looping=looping,
            poll_ms=(time.perf_counter() - t0) * 1000,
            hostname=self.hostname,
            log_counts=counts if self.journal.refreshes else None,
            last_errors=last_errors,
            journal_error=journal_error,
        )

    def first_look(self) -> Snapshot:
        """What the state dirs say, before systemd answers (a slow manager, thousands of
        units): a ``partial`` snapshot. systemd is asked meanwhile; the next ``poll`` waits
        for that answer and finishes this listing instead of reading the state dirs again."""
        t0 = time.perf_counter()
        self._started = start_listing(self.settings, runners=self.runners, client=self.systemd)
        return Snapshot(
            inventory=pending_view(self._started.inv),
            poll_ms=(time.perf_counter() - t0) * 1000,
            hostname=self.hostname,
            partial=True,
        )

    def listing(self) -> Inventory:
        """The state dir with unit and link states (one ``list_vms``)."""
        started, self._started = self._started, None
        if started is None:
            started = start_listing(self.settings, runners=self.runners, client=self.systemd)
        inv, self._links = finish_listing(self.settings, started, link_reader=self.links)
        if self._persist and inv.error is None and self.settings.cache_dir is not None:
            self._persist = False
            parsecache.save(self.runners, self.settings.cache_dir)
        return inv

    def sample(self, inv: Inventory, focus: str | None = None) -> dict[str, VMSample]:
        """The sampler's poll of INV (the listing just made), with that listing's links."""
        links, self._links = self._links, None
        # Without a readable state dir there are no VMs to sample, but the host totals are
        # still worth showing.
        on_screen = (focus,) if focus else ()
        return self.sampler.sample(
            inv.vms if inv.error is None else [],
            self.settings,
            open_files_for=on_screen,
            links=links,
            focus=on_screen,
        )

    def close(self) -> None:
        self.sampler.close()
        self.links.close()
        close_systemd = getattr(self.systemd, "close", None)
        if close_systemd is not None:
            close_systemd()


class Prefetched:
    """A source whose first answer is worked out at once, in a thread, while the UI is still
    loading (importing Textual and composing the screen take about as long as a first poll).

    When the source can take a ``first_look`` (the state dirs only), that is the first answer
    (the app shows the VMs while systemd answers), and the full poll runs when the app asks for
    it, once it has drawn the first look: run beside the UI's start it slowed the first table
    down (both are Python: one thread runs at a time). systemd was asked by the first look
    already, so its answer is not put off.
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
        self.history_len = history_len
        self.history: dict[str, list[Point]] = {}
        self.index = 0
        self.polls = 0
        self._last: Snapshot | None = None
        if start_at_last:
            for frame in self.frames[:-1]:
                self._play(frame)
            self.index = len(self.frames) - 1

    @classmethod
    def from_file(cls, path: str | Path, *, start_at_last: bool = True) -> ReplaySource:
        from tui.recording import load_frames

        return cls(load_frames(path), start_at_last=start_at_last)

    def _play(self, frame: Snapshot) -> Snapshot:
        if frame.history:
            self.history = {k: list(v) for k, v in frame.history.items()}
        else:
            names = {vm.name for vm in frame.inventory.vms}
            for gone in set(self.history) - names:
                del self.history[gone]
            for name, s in frame.samples.items():
                points = self.history.setdefault(name, [])
                points.append(Point(s.t, s.cpu_pct_of_vcpus, s.mem_host_bytes))
                del points[: -self.history_len]
        return dataclasses.replace(frame, history={k: list(v) for k, v in self.history.items()})

    def poll(self, focus: str | None = None) -> Snapshot:
        self.polls += 1
        if self.index >= len(self.frames) and self._last is not None:
            return self._last  # the end of the recording: nothing new, the history stays
        frame = self.frames[min(self.index, len(self.frames) - 1)]
        self.index += 1
        self._last = self._play(frame)
        return self._last

    def close(self) -> None:
        pass
