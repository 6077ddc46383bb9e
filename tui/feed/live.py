"""The live source: this host's state dirs, systemd and links (one listing) and a ``Sampler``
kept between polls, joined into one ``Snapshot`` per poll."""

from __future__ import annotations

import contextlib
import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tui.feed.snapshot import Snapshot
from tui.host import parsecache
from tui.host.checks.refresher import HostChecks
from tui.host.inventory import (
    Listing,
    ask_listing_units,
    finish_links,
    finish_listing,
    pending_view,
    read_rest,
    start_listing,
)
from tui.host.links import LinkReader, LinkTable
from tui.host.logs.summary import JournalSummary
from tui.host.model import Inventory
from tui.host.sampling import VMSample
from tui.host.settings import HostSettings
from tui.host.statedir import RunnerCache
from tui.host.systemd import SystemdClient
from tui.host.systemd_bus import systemd_client

if TYPE_CHECKING:
    from tui.host.sampling.sampler import Sampler

# The control socket (QMP...) of a VM not on screen is asked every third poll: of its answers
# only the run state reaches the table, and a QMP session costs as much CPU as all of the
# VM's local reads. The VM on screen is asked every poll (its detail shows all of them).
REMOTE_EVERY = 3
# The first look at a host with more VMs than this reads this many state dirs, the first
# screenful in the table's order (a tall terminal shows ~60 rows), and the rest at the next
# poll: 2000 state dirs take about 0.6 s of CPU, 64 about 20 ms.
FIRST_LOOK_VMS = 64


@dataclass(frozen=True)
class FirstScreen:
    """Which VMs the first look reads when the state dir holds more than COUNT: the first
    COUNT names in the table's order by name, or the last ones (FROM_END: the table sorted
    in reverse). Before systemd answered and a sample came in, every column but a few (those
    read from the state dirs: no ``FirstScreen`` then, every VM is read) sorts by name."""

    count: int = FIRST_LOOK_VMS
    from_end: bool = False


class LiveSource:
    """The real host: a state dir listing and a ``Sampler`` kept between polls.

    Kept for the app's lifetime too: the parses of runner packages (store paths never change),
    and the links reader (one netlink socket in the VMs' namespace), read once per poll for
    both the listing and the sampler.
    """

    def __init__(
        self,
        settings: HostSettings,
        *,
        sample_timeout: float = 1.0,
        first_screen: FirstScreen | None = FirstScreen(),  # frozen: one shared default is fine
    ) -> None:
        self.settings = settings
        self.first_screen = first_screen
        self._sample_timeout = sample_timeout
        self._sampler: Sampler | None = None  # made at the first sampling poll
        self.runners = RunnerCache()
        with contextlib.suppress(OSError):  # room for the parses on disk (read below)
            # The names only (at most the VMs): the first look lists the state dir itself.
            self.runners.room_for(len(os.listdir(settings.state_dir)))
        self.links = LinkReader(settings.netns, timeout=settings.timeout)
        # Follows the units; a poll reads its table. Made when systemd is first asked (its
        # first read costs CPU by the unit: a big host's is put off until the first screenful
        # is on screen).
        self._systemd: SystemdClient | None = None
        self.hostname = socket.gethostname()
        self.journal = JournalSummary(settings)
        self.checks = HostChecks(settings)  # once a minute, in a thread of its own
        self._started: Listing | None = None  # the first look's, finished by the next poll
        # The first look's listing with systemd's answer, shown before its links and samples
        # (the first table needs neither); the next poll reads them.
        self._unsampled: Inventory | None = None
        # `list`'s parses on disk make the first poll quicker; that poll's are written back.
        self._persist = settings.cache_dir is not None
        if settings.cache_dir is not None:
            parsecache.load(self.runners, settings.cache_dir)

    def poll(self, focus: str | None = None) -> Snapshot:
        started = self._started
        if started is not None and started.unread:
            rest = self._rest_of_first_look(started)
            if rest is not None:
                return rest
        if self._started is not None:
            return self._units_of_first_look()
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

    @property
    def sampler(self) -> Sampler:
        """Made (and the sampler, psutil and qemu.qmp imported) at the first sampling poll:
        the first table needs none of them."""
        if self._sampler is None:
            from tui.host.sampling.sampler import Sampler

            self._sampler = Sampler(timeout=self._sample_timeout, remote_every=REMOTE_EVERY)
        return self._sampler

    @property
    def systemd(self) -> SystemdClient:
        if self._systemd is None:
            self._systemd = systemd_client(self.settings)
        return self._systemd

    def first_look(self) -> Snapshot:
        """What the state dirs say, before systemd answers (a slow manager, thousands of
        units): a ``partial`` snapshot. The next ``poll`` finishes this listing instead of
        reading the state dirs again.

        A host with more VMs than ``first_screen.count``: only that many are read (the
        inventory's ``unread`` counts the others) and systemd is not asked yet; the next
        ``poll`` asks it, reads the rest and, while systemd has not answered, gives them as
        another ``partial`` snapshot. A smaller host: every VM is read, then systemd is asked;
        the next ``poll`` waits for its answer."""
        t0 = time.perf_counter()
        first = self.first_screen
        started = start_listing(
            self.settings,
            units=False,
            runners=self.runners,
            first=first.count if first is not None else None,
            from_end=first.from_end if first is not None else False,
        )
        if not started.unread:  # every VM read (a few ms for a screenful): systemd now
            ask_listing_units(self.settings, started, self.systemd)
        self._started = started
        return self._partial(pending_view(started.inv), t0)

    def _rest_of_first_look(self, started: Listing) -> Snapshot | None:
        """The first look's unread VMs read, systemd asked meanwhile: a ``partial`` snapshot
        of them all while systemd has not answered; None when it has (the poll goes on)."""
        t0 = time.perf_counter()
        ask_listing_units(self.settings, started, self.systemd)
        read_rest(started)
        if started.asked is None or started.asked.done():
            return None
        return self._partial(pending_view(started.inv), t0)

    def _units_of_first_look(self) -> Snapshot:
        """The first look's listing with systemd's answer: shown at once as a ``partial``
        snapshot (the table's states), its links and first samples by the next poll."""
        t0 = time.perf_counter()
        started, self._started = self._started, None
        assert started is not None
        inv, _ = finish_listing(self.settings, started, links=False)
        self._keep_parses(inv)
        self._unsampled = inv if inv.error is None else None
        self.links.warm_up()  # for the next poll's links, while the app shows these
        return self._partial(inv, t0)

    def _partial(self, inv: Inventory, t0: float) -> Snapshot:
        """A ``partial`` snapshot of INV (the app polls again at once), made since T0."""
        return Snapshot(
            inventory=inv,
            poll_ms=(time.perf_counter() - t0) * 1000,
            hostname=self.hostname,
            partial=True,
        )

    def _keep_parses(self, inv: Inventory) -> None:
        if self._persist and inv.error is None and self.settings.cache_dir is not None:
            self._persist = False
            parsecache.save(self.runners, self.settings.cache_dir)

    def listing(self) -> tuple[Inventory, LinkTable | None]:
        """The state dir with unit and link states (one ``list_vms``), and the links read for
        it (for the sampler's network rates; None: the listing read none)."""
        unsampled, self._unsampled = self._unsampled, None
        if unsampled is not None:
            return unsampled, finish_links(self.settings, unsampled, self.links)
        started, self._started = self._started, None
        if started is None:
            started = start_listing(self.settings, runners=self.runners, client=self.systemd)
        inv, links = finish_listing(self.settings, started, link_reader=self.links)
        self._keep_parses(inv)
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
        if self._sampler is not None:
            self._sampler.close()
        self.links.close()
        close_systemd = getattr(self._systemd, "close", None)
        if close_systemd is not None:
            close_systemd()
