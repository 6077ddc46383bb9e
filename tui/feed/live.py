"""The live source: this host's state dirs, systemd and links (one listing) and a ``Sampler``
kept between polls, joined into one ``Snapshot`` per poll."""

from __future__ import annotations

import contextlib
import socket
import time

from tui.feed.snapshot import Snapshot
from tui.host import parsecache
from tui.host.checks.refresher import HostChecks
from tui.host.inventory import (
    Listing,
    finish_listing,
    pending_view,
    start_listing,
    vm_dirs,
)
from tui.host.links import LinkReader, LinkTable
from tui.host.logs.summary import JournalSummary
from tui.host.model import Inventory
from tui.host.sampling import Sampler, VMSample
from tui.host.settings import HostSettings
from tui.host.statedir import RunnerCache
from tui.host.systemd_bus import systemd_client

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
        self.checks = HostChecks(settings)  # once a minute, in a thread of its own
        self._started: Listing | None = None  # the first look's, finished by the next poll
        # `list`'s parses on disk make the first poll quicker; that poll's are written back.
        self._persist = settings.cache_dir is not None
        if settings.cache_dir is not None:
            parsecache.load(self.runners, settings.cache_dir)

    def poll(self, focus: str | None = None) -> Snapshot:
        t0 = time.perf_counter()
        inv, links = self.listing()
        samples = self.sample(inv, links, focus)
        history = self.sampler.timeline.points()
        looping = sorted(self.sampler.timeline.crash_looping)
        failing = {vm.name for vm in inv.vms if vm.unit and vm.unit.active == "failed"}
        self.journal.poll(failing | set(looping))  # starts a refresh when due; never waits
        counts, last_errors, journal_error = self.journal.snapshot()
        if inv.error is None:
            self.checks.poll(inv)  # starts a run when due; never waits
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
            checks=self.checks.latest(),
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

    def listing(self) -> tuple[Inventory, LinkTable | None]:
        """The state dir with unit and link states (one ``list_vms``), and the links read for
        it (for the sampler's network rates; None: the listing read none)."""
        started, self._started = self._started, None
        if started is None:
            started = start_listing(self.settings, runners=self.runners, client=self.systemd)
        inv, links = finish_listing(self.settings, started, link_reader=self.links)
        if self._persist and inv.error is None and self.settings.cache_dir is not None:
            self._persist = False
            parsecache.save(self.runners, self.settings.cache_dir)
        return inv, links

    def sample(
        self, inv: Inventory, links: LinkTable | None, focus: str | None = None
    ) -> dict[str, VMSample]:
        """The sampler's poll of INV (the listing just made), with that listing's LINKS."""
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
