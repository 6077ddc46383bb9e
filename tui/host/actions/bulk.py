"""One action on many VMs: a plan that says what will happen to each (and which are refused,
and why), then a queue run as one parent job with a child job per VM.

Builds (update, deploy) run ``builds`` at a time, restarts and the other unit actions
``restarts`` at a time; a build that leaves the VM needing a restart is followed by a restart
child when the admin asked for restarts. Cancelling the parent cancels every child that has
not finished and starts no more. Per-VM locks still apply (each child is an ordinary job). The
parent's result is the summary: done, failed, skipped, with reasons.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from tui.host.actions.errors import Cancelled
from tui.host.model import VM

if TYPE_CHECKING:
    from tui.host.actions.cancel import CancelToken
    from tui.host.actions.jobs import Job
    from tui.host.actions.operations import Reporter

BUILDS = frozenset({"update", "deploy"})
BULK_ACTIONS = ("start", "stop", "restart", "update", "rollback", "deploy")
_RUNNING = frozenset({"active", "activating", "reloading"})


class BulkRunner(Protocol):
    """What a parent job needs of the runner its children run in: this host's ``JobRunner``
    (threads or systemd units) or a remote host's ``RemoteJobs`` (its agent)."""

    def submit(self, action: str, vm: str, *, parent: int | None = None, **options: Any) -> Job: ...

    def wait_any(self, job_ids: list[int], timeout: float | None = None) -> list[int]: ...

    def get(self, job_id: int) -> Job | None: ...

    def cancel(self, job_id: int) -> bool: ...


@dataclass(frozen=True)
class BulkItem:
    vm: str
    will: str  # what will happen, in words ("restart", "build from its flake, then restart")
    refused: str | None = None  # why it is skipped (None: it runs)


@dataclass(frozen=True)
class BulkPlan:
    action: str
    items: tuple[BulkItem, ...]
    restart: bool = False  # builds: restart the VMs that need it afterwards
    options: dict[str, object] = field(default_factory=dict)  # e.g. deploy's source

    @property
    def runs(self) -> list[str]:
        return [i.vm for i in self.items if i.refused is None]

    @property
    def skipped(self) -> list[BulkItem]:
        return [i for i in self.items if i.refused is not None]

    def parent(self, builds: int, restarts: int) -> tuple[str, str, dict[str, Any]]:
        """The parent job's action, VM label and options, as every runner makes it."""
        label = f"{len(self.runs)} VMs" if len(self.runs) != 1 else "1 VM"
        return f"bulk {self.action}", label, {"bulk": self, "builds": builds, "restarts": restarts}


def _refusal(action: str, vm: VM) -> str | None:
    state = vm.unit.active if vm.unit else None
    if action in ("update", "rollback", "deploy") and vm.declarative:
        return "declarative: change it in the host's configuration"
    if action == "update" and not vm.flake:
        return "no flake file to rebuild from"
    if action == "rollback" and not vm.old:
        return "no 'old' runner to roll back to"
    if action == "start" and state in _RUNNING:
        return "already running"
    if action == "stop" and state not in _RUNNING and state is not None:
        return "not running"
    return None


def _will(action: str, restart: bool) -> str:
    after = ", then restart it if it runs" if restart else ""
    return {
        "update": f"build from its flake and switch current{after}",
        "deploy": f"copy the prebuilt runner from the cache and switch current{after}",
        "rollback": f"switch current back to old{after}",
    }.get(action, action)


def plan_bulk(
    action: str, vms: list[VM], *, restart: bool = False, options: dict[str, object] | None = None
) -> BulkPlan:
    if action not in BULK_ACTIONS:
        raise ValueError(f"{action} cannot be applied to several VMs")
    items = tuple(
        BulkItem(vm.name, _will(action, restart), _refusal(action, vm))
        for vm in sorted(vms, key=lambda v: v.name)
    )
    return BulkPlan(action, items, restart, dict(options or {}))


@dataclass
class _Tally:
    done: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def summary(self, skipped: list[BulkItem]) -> str:
        parts = [f"{len(self.done)} done"]
        if self.failed:
            parts.append(
                f"{len(self.failed)} failed ("
                + "; ".join(f"{vm}: {why}" for vm, why in self.failed)
                + ")"
            )
        if self.cancelled:
            parts.append(f"{len(self.cancelled)} cancelled ({', '.join(self.cancelled)})")
        if skipped:
            parts.append(
                f"{len(skipped)} skipped ("
                + "; ".join(f"{i.vm}: {i.refused}" for i in skipped)
                + ")"
            )
        return ", ".join(parts)


def _stage(
    runner: BulkRunner,
    parent: int,
    action: str,
    vms: list[str],
    limit: int,
    cancel: CancelToken,
    reporter: Reporter,
    options: dict[str, object],
) -> list[Job]:
    """Run ACTION on VMS as child jobs of PARENT, at most LIMIT at once; their last
    snapshots, in the order they finished."""
    finished: list[Job] = []
    running: dict[int, str] = {}
    queue = list(vms)
    while queue or running:
        if cancel.cancelled:
            for job_id in running:
                runner.cancel(job_id)
            queue.clear()
        while queue and len(running) < limit:
            vm = queue.pop(0)
            job = runner.submit(action, vm, parent=parent, **options)
            reporter.log(f"{action} {vm}: job {job.id}")
            running[job.id] = vm
        # A child finishing wakes us; the bound only re-checks a cancel of the parent.
        for job_id in runner.wait_any(list(running), timeout=0.5):
            del running[job_id]
            job = runner.get(job_id)
            assert job is not None
            finished.append(job)
            reporter.log(f"{action} {job.vm}: {job.state.value}: {job.result}")
    return finished


def run_bulk(
    runner: BulkRunner,
    parent: int,
    plan: BulkPlan,
    reporter: Reporter,
    cancel: CancelToken,
    *,
    builds: int,
    restarts: int,
) -> str:
    """The parent job's work: the plan's queue; returns the summary."""
    from tui.host.actions.jobs import JobState

    tally = _Tally()
    build = plan.action in BUILDS
    first = _stage(
        runner,
        parent,
        plan.action,
        plan.runs,
        builds if build else restarts,
        cancel,
        reporter,
        plan.options,
    )
    to_restart: list[str] = []
    for job in first:
        if job.state is JobState.SUCCEEDED:
            tally.done.append(job.vm)
            outcome = job.outcome
            if plan.restart and outcome is not None and outcome.restart_needed:
                to_restart.append(job.vm)
        elif job.state is JobState.CANCELLED:
            tally.cancelled.append(job.vm)
        else:
            tally.failed.append((job.vm, job.result or "failed"))
    unstarted = [vm for vm in plan.runs if vm not in {j.vm for j in first}]
    tally.cancelled += unstarted
    if to_restart and not cancel.cancelled:
        for job in _stage(runner, parent, "restart", to_restart, restarts, cancel, reporter, {}):
            if job.state is JobState.FAILED:
                tally.failed.append((job.vm, f"restart: {job.result}"))
            elif job.state is JobState.CANCELLED:
                tally.cancelled.append(f"{job.vm} (restart)")
    summary = tally.summary(plan.skipped)
    if cancel.cancelled:
        raise Cancelled(f"bulk {plan.action} cancelled: {summary}")
    return summary
