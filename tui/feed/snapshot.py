"""What one poll knows (``Snapshot``), where polls come from (``Source``), and each VM's share
of a snapshot joined once (``VMView``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from tui.host.checks.findings import CheckReport, Finding
from tui.host.logs.entry import LogLine
from tui.host.logs.summary import ProblemCounts
from tui.host.model import VM, Inventory
from tui.host.sampling import HostSample, Point, VMSample

NO_PROBLEMS = ProblemCounts()  # a VM the journal summary has no err/warning lines for


@dataclass
class Snapshot:
    """Everything one poll knows. Owned by the UI thread once handed over.

    Plain data only (dataclasses, lists, dicts, str, numbers, enums, paths: no sockets,
    locks or callables), so a snapshot can be written to JSON and read back
    (``tui.feed.recording``), and a remote source can send one over the wire.
    """

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
    # The host checks (``tui.host.checks``), run once a minute off the poll (None: not yet).
    checks: CheckReport | None = None
    # Not every answer in yet, the app polls again at once: the state dirs only, before
    # systemd's answer (``LiveSource.first_look``), or the first look with its units, before
    # its links and first samples.
    partial: bool = False


class Source(Protocol):
    def poll(self, focus: str | None = None) -> Snapshot:
        """One poll. FOCUS: the VM on screen (costlier checks, e.g. open volume files)."""
        ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class VMView:
    """One VM and what a snapshot knows about it, for the table's row and the detail pane."""

    vm: VM
    sample: VMSample | None = None  # None: not running (or not sampled yet)
    history: list[Point] = field(default_factory=list)  # oldest first
    crash_looping: bool = False
    log: ProblemCounts | None = None  # err/warning lines in the last hour; None: not read yet
    last_error: LogLine | None = None  # a failed or crash-looping VM's last error line
    findings: tuple[Finding, ...] = ()  # the host checks' problems of this VM


def per_vm(snapshot: Snapshot) -> dict[str, VMView]:
    """Each VM of SNAPSHOT with its sample, history, crash loop and journal figures, in the
    inventory's order."""
    looping = set(snapshot.crash_looping)
    counts = snapshot.log_counts
    return {
        vm.name: VMView(
            vm=vm,
            sample=snapshot.samples.get(vm.name),
            history=snapshot.history.get(vm.name, []),
            crash_looping=vm.name in looping,
            log=None if counts is None else counts.get(vm.name, NO_PROBLEMS),
            last_error=snapshot.last_errors.get(vm.name),
            findings=tuple(snapshot.checks.for_vm(vm.name)) if snapshot.checks else (),
        )
        for vm in snapshot.inventory.vms
    }
