"""The fleet view's actions and jobs (``--all-hosts``): ``FleetJobs``, shaped like a
``JobRunner`` for the actions controller, routes each job to its VM's host.

A fleet VM's key is ``HOST/NAME``. An action on it goes to HOST's runner under NAME: this
host's ``JobRunner`` (systemd units), a remote host's ``RemoteJobs`` (its agent). The dialogs'
facts come from that host too (``plan_for``). What the runners report comes back under fleet
ids (each host's runner counts its own) and fleet keys (``far/web``, ``here/web``: every job's
title names its host), so the jobs panel lists every host's jobs in one list.

Each host says no for itself: this host when the app is not root, a remote one when its
config says ``read_only = true`` or its agent is read-only (a non-root login); the refusal is
one line naming the host (``refusal``). ``--read-only`` keeps the whole app read-only (the
controller's own rule). Create is refused here in one line (which host?).

Marked VMs (bulk) across hosts: the parent job runs here, in the app (``bulk.run_bulk``, the
same limits, cancel and summary as on one host); each child goes through ``submit`` to its
VM's host like any action.
"""

from __future__ import annotations

import dataclasses
import itertools
import threading
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from tui.feed.fleet import SEPARATOR, FleetSource, fleet_key
from tui.host.actions.bulk import BulkPlan, run_bulk
from tui.host.actions.cancel import CancelToken
from tui.host.actions.errors import Cancelled
from tui.host.actions.jobs import Job, JobRunner, JobState
from tui.host.actions.operations import Reporter
from tui.host.actions.plan import ActionPlan, plan, read_only_reason
from tui.host.model import VM

if TYPE_CHECKING:
    from tui.config import Settings

CREATE_REFUSED = (
    "Create is not in the fleet view (which host?): open one host for it "
    "(microvm-tui --host NAME, or microvm-tui for this one)."
)


class Runner(Protocol):
    """What FleetJobs needs of a host's runner (JobRunner, RemoteJobs)."""

    listener: Callable[[Job], None] | None

    def jobs(self) -> list[Job]: ...
    def get(self, job_id: int) -> Job | None: ...
    def active_on(self, vm: str) -> Job | None: ...
    def adopt(self) -> list[str]: ...
    def submit(self, action: str, vm: str, **options: Any) -> Job: ...
    def cancel(self, job_id: int) -> bool: ...
    def shutdown(self, timeout: float | None = None) -> None: ...


class FleetJobs:
    """RUNNERS by host (LOCAL: this host's); READ_ONLY(host) says why a host changes nothing
    (None: it may); HOST_SETTINGS: this host's, for its VMs' dialog facts."""

    units = None

    def __init__(
        self,
        runners: Mapping[str, Runner],
        *,
        local: str | None,
        read_only: Callable[[str], str | None],
        host_settings: Any,
        why_not: Mapping[str, str] | None = None,
    ) -> None:
        self.runners = dict(runners)
        self.local = local
        self.read_only = read_only
        self.host_settings = host_settings
        self.why_not = dict(why_not or {})  # hosts without a runner: why (one line)
        self.listener: Callable[[Job], None] | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._fleet_ids: dict[tuple[str, int], int] = {}
        self._inner: dict[int, tuple[str, int]] = {}
        self._own: dict[int, Job] = {}  # refused here (never reached a host), bulk parents
        self._tokens: dict[int, CancelToken] = {}  # the bulk parents (they run here)
        self._parents: dict[int, int] = {}  # a bulk child's fleet id -> its parent's
        # A bulk child being submitted: (host, VM) -> (its parent, when the submit began). Its
        # runner may report it (even finished) before submit returns its id: the first job of
        # that VM made since then is that child.
        self._coming: dict[tuple[str, str], tuple[int, float]] = {}
        self._heard_any = threading.Condition()  # a host's runner reported a change
        for host, runner in self.runners.items():
            runner.listener = self._heard(host)

    @property
    def detaches(self) -> bool:
        return all(getattr(r, "detaches", False) for r in self.runners.values())

    # --- routing --------------------------------------------------------------------------

    def where(self, key: str) -> tuple[str, str] | str:
        """(host, the VM's own name) of fleet key KEY, or why no runner takes it (one line)."""
        host, sep, name = key.partition(SEPARATOR)
        if not sep or not name:
            return f"{key} is not a fleet VM (HOST/NAME)."
        if host not in self.runners:
            return self.why_not.get(host) or f"{host} is not a host of the fleet."
        return host, name

    def own_vm(self, vm: VM) -> VM:
        """Fleet VM as its host names it (for the checks before a dialog)."""
        where = self.where(vm.name)
        return vm if isinstance(where, str) else dataclasses.replace(vm, name=where[1])

    create_refusal = CREATE_REFUSED

    def refusal(self, key: str) -> str | None:
        """Why an action that changes a host is not done on fleet VM KEY, in one line naming
        the host (None: its host takes it)."""
        where = self.where(key)
        if isinstance(where, str):
            return where
        why = self.read_only(where[0])
        return f"read-only: {where[0]}: {why}." if why else None

    def _heard(self, host: str) -> Callable[[Job], None]:
        def heard(job: Job) -> None:
            listener = self.listener
            if listener is not None:
                listener(self._out(host, job))
            with self._heard_any:
                self._heard_any.notify_all()

        return heard

    def _fleet_id(self, host: str, job_id: int) -> int:
        with self._lock:
            fid = self._fleet_ids.get((host, job_id))
            if fid is None:
                fid = self._fleet_ids[(host, job_id)] = next(self._ids)
                self._inner[fid] = (host, job_id)
            return fid

    def _out(self, host: str, job: Job) -> Job:
        """JOB of HOST's runner as the fleet shows it: a fleet id, the VM's fleet key (the
        title names the host), its parent's fleet id."""
        fid = self._fleet_id(host, job.id)
        with self._lock:
            parent = self._parents.get(fid)  # a fleet bulk's child
            coming = self._coming.get((host, job.vm)) if parent is None else None
            if coming is not None and job.created >= coming[1]:
                parent = self._parents[fid] = coming[0]
                del self._coming[(host, job.vm)]
        if parent is None and job.parent is not None:
            parent = self._fleet_id(host, job.parent)
        return dataclasses.replace(
            job,
            id=fid,
            vm=fleet_key(host, job.vm) if job.vm else job.vm,
            parent=parent,
            host=None,
        )

    def _refused(self, action: str, key: str, why: str, parent: int | None = None) -> Job:
        with self._lock:
            job = Job(id=next(self._ids), action=action, vm=key, parent=parent)
            job.created = job.started = job.ended = time.time()
            job.state, job.result, job.version = JobState.FAILED, why, 1
            self._own[job.id] = job
        return job.snapshot()

    # --- what the controller calls ----------------------------------------------------------

    def jobs(self) -> list[Job]:
        out = [self._out(h, j) for h, r in self.runners.items() for j in r.jobs()]
        with self._lock:
            out += [j.snapshot() for j in self._own.values()]
        return sorted(out, key=lambda j: j.id)

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            inner = self._inner.get(job_id)
            own = self._own.get(job_id)
        if own is not None:
            return own.snapshot()
        if inner is None:
            return None
        job = self.runners[inner[0]].get(inner[1])
        return self._out(inner[0], job) if job is not None else None

    def active_on(self, key: str) -> Job | None:
        where = self.where(key)
        if isinstance(where, str):
            return None
        job = self.runners[where[0]].active_on(where[1])
        return self._out(where[0], job) if job is not None else None

    def adopt(self) -> list[str]:
        return [p for r in self.runners.values() for p in r.adopt()]

    def submit(self, action: str, key: str, *, parent: int | None = None, **options: Any) -> Job:
        # The request was refused already; this holds for every other way in (a restart
        # offered after an update, a script).
        why = self.refusal(key)
        where = self.where(key)
        if why is not None or isinstance(where, str):
            return self._refused(action, key, why or str(where), parent)
        host, name = where
        if parent is not None:
            with self._lock:
                self._coming[(host, name)] = (parent, time.time())
        try:
            job = self._out(host, self.runners[host].submit(action, name, **options))
        finally:
            if parent is not None:
                with self._lock:
                    self._coming.pop((host, name), None)
        if parent is not None and job.parent != parent:  # a runner whose jobs have no time
            with self._lock:
                self._parents[job.id] = parent
            job = dataclasses.replace(job, parent=parent)
        return job

    def submit_bulk(self, plan: BulkPlan, *, builds: int, restarts: int) -> Job:
        """Start PLAN (fleet keys) as one parent job here; each child goes to its host."""
        action, label, options = plan.parent(builds, restarts)
        token = CancelToken()
        with self._lock:
            job = Job(id=next(self._ids), action=action, vm=label, options=options)
            job.created = time.time()
            self._own[job.id] = job
            self._tokens[job.id] = token
        self._change(job.id, lambda j: None)
        threading.Thread(
            target=self._work_bulk,
            args=(job.id, plan, token, builds, restarts),
            name=f"fleet-bulk-{job.id}",
            daemon=True,  # quitting ends the queue; the children started go on
        ).start()
        return self.get(job.id) or job

    def _work_bulk(
        self, job_id: int, plan: BulkPlan, token: CancelToken, builds: int, restarts: int
    ) -> None:
        def started(j: Job) -> None:
            j.state, j.started = JobState.RUNNING, time.time()

        def line(text: str) -> None:
            self._change(job_id, lambda j: j.log.append(text))

        def end(state: JobState, result: str) -> None:
            def change(j: Job) -> None:
                j.state, j.result, j.ended = state, result, time.time()

            self._change(job_id, change)

        self._change(job_id, started)
        try:
            summary = run_bulk(
                self, job_id, plan, Reporter(log=line), token, builds=builds, restarts=restarts
            )
        except Cancelled as exc:
            end(JobState.CANCELLED, str(exc))
        except Exception as exc:
            end(JobState.FAILED, f"internal error: {exc!r}")
        else:
            end(JobState.FAILED if " failed (" in summary else JobState.SUCCEEDED, summary)

    def _change(self, job_id: int, change: Callable[[Job], None]) -> None:
        """Change one of our own jobs (a bulk parent) and tell the listener."""
        with self._lock:
            job = self._own[job_id]
            change(job)
            job.version += 1
            snapshot = job.snapshot()
        listener = self.listener
        if listener is not None:
            listener(snapshot)
        with self._heard_any:
            self._heard_any.notify_all()

    def wait_any(self, job_ids: list[int], timeout: float | None = None) -> list[int]:
        """Wait until one of JOB_IDS has finished (or TIMEOUT); the finished ones."""

        def done() -> list[int]:
            return [i for i in job_ids if (j := self.get(i)) is None or j.state.finished]

        with self._heard_any:
            self._heard_any.wait_for(done, timeout)
        return done()

    def cancel(self, job_id: int) -> bool:
        with self._lock:
            inner = self._inner.get(job_id)
            token = self._tokens.get(job_id)
            own = self._own.get(job_id)
        if token is not None and own is not None and not own.state.finished:
            self._change(job_id, lambda j: setattr(j, "cancel_requested", True))
            token.cancel()  # the parent cancels its children
            return True
        return inner is not None and self.runners[inner[0]].cancel(inner[1])

    def shutdown(self, timeout: float | None = None) -> None:
        for runner in self.runners.values():
            runner.shutdown(timeout)

    def plan_for(self, vm: VM) -> ActionPlan | str:
        """The facts of fleet VM's dialogs, from its host (a line when it does not answer)."""
        where = self.where(vm.name)
        if isinstance(where, str):
            return where
        host, name = where
        if host == self.local:
            return plan(dataclasses.replace(vm, name=name), self.host_settings)
        remote_plan = getattr(self.runners[host], "plan", None)
        if remote_plan is None:
            return f"{host} gives no facts for a dialog."
        answer: ActionPlan | str = remote_plan(name)
        return answer


def fleet_jobs(settings: Settings, source: FleetSource) -> tuple[FleetJobs, str | None]:
    """The fleet's runners: this host's JobRunner (as systemd units when a manager is
    reachable and the app may change this host), each remote host's agent. Also the reason
    this host's jobs are not units (the quit question says it), or None."""
    from tui.agent.views import remote_view_only
    from tui.host.actions.jobunits import job_units

    runners: dict[str, Runner] = {}
    why_not: dict[str, str] = {}
    local: str | None = None
    sources: dict[str, Any] = {}
    note = None
    here_read_only = read_only_reason(settings.read_only)
    for name, member in source.members.items():
        sources[name] = member.source
        if member.status.local:
            local = name
            units = None
            if here_read_only is None:
                units, note = job_units(settings.host)
            runners[name] = JobRunner(settings.host, units=units)
        elif getattr(member.source, "jobs", None) is not None:  # a RemoteSource
            runners[name] = member.source.jobs  # type: ignore[attr-defined]
        else:
            why_not[name] = (
                f"{name}'s VMs take no actions here: no [hosts.{name}] agent carries them."
            )

    def read_only(host: str) -> str | None:
        if host == local:
            return here_read_only
        why = remote_view_only(settings, host)  # --read-only, else its read_only = true
        agent = getattr(sources.get(host), "read_only", None)  # else its agent's reason
        return why or (agent if isinstance(agent, str) else None)

    jobs = FleetJobs(
        runners, local=local, read_only=read_only, host_settings=settings.host, why_not=why_not
    )
    return jobs, note
