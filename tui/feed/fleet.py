"""Many hosts as one source (``FleetSource``): this host's ``LiveSource`` and each configured
host's ``RemoteSource``, each polled in a thread of its own, joined into one ``FleetSnapshot``.

No host waits for another: a member's thread polls it on its own cadence and keeps its latest
snapshot or its error; the fleet's ``poll`` only joins what the members have now (the first
poll waits, bounded, until each member has answered once, so a launch shows every host that
answers quickly; a poll with a new VM in focus wakes that VM's host and waits, bounded, for
its poll with that focus, as the app's own poll of a single host would). A remote member
retries by itself (``RemoteSource``'s backoff); a member whose poll raises keeps its last
snapshot (its VMs stay listed) and says why in one line.

VM keys become host-qualified (``"HOST/NAME"``), so two hosts may each have a VM ``web``:
the VMs' ``name``, the samples', history's, journal figures' and crash-loop keys all carry
the host. ``FleetSnapshot.members`` says which host and which name each key stands for, and
``hosts`` has one ``HostStatus`` per host (reachability, round-trip time, its snapshot).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tui.feed.snapshot import Snapshot, Source
from tui.host.model import Inventory
from tui.host.text import sanitise

if TYPE_CHECKING:
    from tui.agent.hosts import RemoteHost
    from tui.config import Settings

FIRST_WAIT_S = 8.0  # the fleet's first poll waits this long at most for every host's first answer
# A fleet poll with a new VM in focus waits this long at most for its host's poll with it (the
# VM's detail needs what only the VM in focus is asked).
FOCUS_WAIT_S = 2.0
SEPARATOR = "/"  # between the host and the VM's own name in a fleet key
# Consoles and logs go to each VM's own host (tui/agent/views.py: StreamRoutes), and so do
# actions (tui/agent/fleet_jobs.py: FleetJobs), each host with its own read-only rule.
FLEET_REMOTE = "the fleet"  # the app's ``remote`` for --all-hosts ("... the fleet's VMs")
# A fleet of sources that are not FleetSource's members (nothing to route to): no actions.
FLEET_READ_ONLY = "all hosts: read-only (no host's runner to send actions to)"


def fleet_key(host: str, name: str) -> str:
    return f"{host}{SEPARATOR}{name}"


@dataclass
class HostStatus:
    """One host of the fleet, as its member thread last saw it."""

    name: str
    local: bool = False
    snapshot: Snapshot | None = None  # its latest (its own VM names); kept across errors
    error: str | None = None  # why its last poll failed (one line); None: it answered
    rtt_ms: float | None = None  # ssh start to the agent's hello (remote hosts)
    read_only: str | None = None  # the agent's reason (a non-root login)
    polls: int = 0  # answers so far
    answered: bool = False  # its first poll ended (answer or error)

    @property
    def reachable(self) -> bool:
        return self.error is None and self.snapshot is not None


@dataclass
class FleetSnapshot(Snapshot):
    """A ``Snapshot`` of every host's VMs under fleet keys, with each host's status."""

    hosts: list[HostStatus] = field(default_factory=list)
    members: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (host, name)


class _Member:
    """One host's source and the thread that polls it."""

    def __init__(self, name: str, source: Source, *, local: bool, interval: float) -> None:
        self.name = name
        self.source = source
        self.interval = interval
        self.status = HostStatus(name=name, local=local)
        self.focus: str | None = None
        self.focus_changes = 0  # counted, so a poll can be known to have had the latest
        self.focus_answered = 0  # the count as of the start of the last poll that ended
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.stop = threading.Event()
        self.wake = threading.Event()  # poll now (a new focus, or the end)
        self.thread = threading.Thread(target=self._run, name=f"fleet-{name}", daemon=True)

    def _run(self) -> None:
        while not self.stop.is_set():
            started = time.monotonic()
            self.wake.clear()
            snapshot: Snapshot | None = None
            error: str | None = None
            with self.lock:
                focus, changes = self.focus, self.focus_changes
            try:
                snapshot = self.source.poll(focus)
            except Exception as exc:  # one host's failure is that host's line, never the fleet's
                # A remote host's reason without its name (the host row names it).
                why = getattr(exc, "reason", None)
                why = why if isinstance(why, str) else str(exc) or type(exc).__name__
                error = sanitise(why, 400)
            with self.changed:
                status = self.status
                if snapshot is not None:
                    status.snapshot = snapshot
                    status.error = None
                    status.polls += 1
                else:
                    status.error = error
                status.answered = True
                self.focus_answered = changes
                rtt = getattr(self.source, "rtt_s", None)
                status.rtt_ms = rtt * 1000 if isinstance(rtt, int | float) else None
                ro = getattr(self.source, "read_only", None)
                status.read_only = ro if isinstance(ro, str) else None
                self.changed.notify_all()
            if snapshot is not None and snapshot.partial:
                continue  # the state dirs only: the full poll at once
            # A remote poll already waits for the agent's next snapshot; a local one (or a
            # failed one) waits out the rest of the interval.
            self.wake.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def set_focus(self, focus: str | None) -> bool:
        """The VM of this host in the app's focus (None: none of its VMs); True if it changed.
        A change is polled at once, as the app polls its own source: this thread stops
        waiting, and a remote host's agent is told now (it polls at once), not when this
        thread next asks it."""
        with self.lock:
            if focus == self.focus:
                return False
            self.focus = focus
            self.focus_changes += 1
        tell = getattr(self.source, "set_focus", None)
        if callable(tell):
            tell(focus)
        self.wake.set()
        return True

    def wait_focus_polled(self, deadline: float) -> None:
        """Until a poll that started with the latest focus has ended (or DEADLINE)."""
        with self.changed:
            while self.focus_answered < self.focus_changes:
                left = deadline - time.monotonic()
                if left <= 0 or self.stop.is_set():
                    return
                self.changed.wait(left)

    def copy(self) -> HostStatus:
        with self.lock:
            return dataclasses.replace(self.status)


class FleetSource:
    """SOURCES (host name -> source, this host's first) polled side by side."""

    def __init__(
        self,
        sources: Mapping[str, Source],
        *,
        local: str | None = None,
        interval: float = 1.0,
        first_wait: float = FIRST_WAIT_S,
    ) -> None:
        self.interval = interval
        self.first_wait = first_wait
        self.members = {
            name: _Member(name, src, local=name == local, interval=interval)
            for name, src in sources.items()
        }
        self._polled = False
        for member in self.members.values():
            member.thread.start()

    @property
    def host_names(self) -> list[str]:
        return list(self.members)

    def poll(self, focus: str | None = None) -> FleetSnapshot:
        t0 = time.perf_counter()
        host, _, name = (focus or "").partition(SEPARATOR)
        refocused = [
            member
            for member in self.members.values()
            if member.set_focus(name if focus and host == member.name else None)
            and member.focus is not None
        ]
        if not self._polled:  # later polls wait for nothing but a new focus's host
            self._polled = True
            self._wait_first()
        deadline = time.monotonic() + FOCUS_WAIT_S
        for member in refocused:  # (one host at most: the app has one VM in focus)
            member.wait_focus_polled(deadline)
        statuses = [m.copy() for m in self.members.values()]
        return join(statuses, poll_ms=(time.perf_counter() - t0) * 1000)

    def _wait_first(self) -> None:
        deadline = time.monotonic() + self.first_wait
        for member in self.members.values():
            with member.changed:
                while not member.status.answered:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return
                    member.changed.wait(left)

    def close(self) -> None:
        for member in self.members.values():
            member.stop.set()
            member.wake.set()
        for member in self.members.values():
            member.source.close()


def join(statuses: list[HostStatus], poll_ms: float | None = None) -> FleetSnapshot:
    """One snapshot of every host's VMs under fleet keys (hosts in the given order)."""
    vms = []
    samples = {}
    history = {}
    crash_looping: list[str] = []
    log_counts: dict = {}
    counts_known = False
    last_errors = {}
    members: dict[str, tuple[str, str]] = {}
    local_host = None
    state_dir = None
    for status in statuses:
        snap = status.snapshot
        if snap is None:
            continue
        if status.local:
            local_host = snap.host
            state_dir = snap.inventory.state_dir
        state_dir = state_dir or snap.inventory.state_dir
        h = status.name
        for vm in snap.inventory.vms:
            key = fleet_key(h, vm.name)
            members[key] = (h, vm.name)
            vms.append(dataclasses.replace(vm, name=key))
            sample = snap.samples.get(vm.name)
            if sample is not None:
                samples[key] = dataclasses.replace(sample, name=key)
            if vm.name in snap.history:
                history[key] = snap.history[vm.name]
            if vm.name in snap.last_errors:
                last_errors[key] = snap.last_errors[vm.name]
            if snap.log_counts is not None and vm.name in snap.log_counts:
                log_counts[key] = snap.log_counts[vm.name]
        crash_looping += [fleet_key(h, n) for n in snap.crash_looping]
        counts_known = counts_known or snap.log_counts is not None
    reachable = sum(1 for s in statuses if s.reachable)
    return FleetSnapshot(
        inventory=Inventory(state_dir=state_dir or Path("/"), vms=vms),
        samples=samples,
        host=local_host,
        history=history,
        crash_looping=crash_looping,
        log_counts=log_counts if counts_known else None,
        last_errors=last_errors,
        poll_ms=poll_ms,
        hostname=f"{len(statuses)} hosts, {reachable} reachable",
        hosts=statuses,
        members=members,
    )


def fleet_source(settings: Settings, hosts: Sequence[RemoteHost], local: str) -> FleetSource:
    """This host (as LOCAL) and every one of HOSTS, each connecting at once."""
    from tui.agent.client import RemoteSource
    from tui.feed.live import LiveSource

    sources: dict[str, Source] = {local: LiveSource(settings.host)}
    for host in hosts:
        if host.name != local:
            sources[host.name] = RemoteSource(host, interval=host.interval or settings.interval)
    return FleetSource(sources, local=local, interval=settings.interval)
