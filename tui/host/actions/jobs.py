"""Actions as background jobs: each runs in its own thread; the UI only gets snapshots.

``JobRunner.submit("update", "web")`` returns at once with a queued ``Job``. Every change
(state, a log line, progress, a command run) reaches the listener as a snapshot of the job,
in order, from one notifier thread of the runner (never from a worker, and never while the
runner holds a lock): the UI marshals it onto its own thread. Each state change gets its own
snapshot; log lines, progress and commands that come faster than ``notify_interval`` are
folded into the next snapshot, so a chatty build cannot flood the UI. Snapshots are copies:
the UI can keep and read them while the job goes on.

One job per VM: a second job on a VM this runner is busy with fails at once; across app
instances the VM lock (``lock.vm_lock``) does the same.

With ``units`` (``jobunits.JobUnits``: a systemd manager is reachable) each action runs as a
transient systemd unit (``job-exec``) and the job's thread only follows its job file
(``jobfile``), turning its records into the same snapshots; the job outlives the app
(``shutdown`` detaches from it instead of cancelling it) and ``adopt`` shows, in a later
app, the jobs still running or finished meanwhile. Without it, or for actions given by the
caller (``actions=``, scripts and tests), the action runs in the thread itself.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandRecord
from tui.host.actions.errors import ActionError, Busy, Cancelled
from tui.host.actions.job import Job, JobState, Listener, started_now
from tui.host.actions.job_following import FollowsUnitJobs
from tui.host.actions.nixlog import Progress
from tui.host.actions.operations import ACTIONS, Outcome, Reporter

if TYPE_CHECKING:
    from tui.host.actions.bulk import BulkPlan
    from tui.host.actions.jobunits import JobUnits
from tui.host.safefs import describe
from tui.host.settings import HostSettings

MAX_LOG_LINES = 2000
NOTIFY_INTERVAL = 0.1  # seconds between snapshots of one job for log/progress changes


def default_actions() -> dict[str, Callable[..., Outcome]]:
    from tui.host.actions.deploy import deploy

    return {**ACTIONS, "deploy": deploy}


class JobRunner(FollowsUnitJobs):
    """Runs actions in threads. ``max_parallel`` (None = no limit) bounds how many run at
    once; the others wait in the queued state."""

    def __init__(
        self,
        settings: HostSettings,
        listener: Listener | None = None,
        *,
        max_parallel: int | None = None,
        actions: dict[str, Callable[..., Outcome]] | None = None,
        max_log_lines: int = MAX_LOG_LINES,
        notify_interval: float = NOTIFY_INTERVAL,
        units: JobUnits | None = None,
    ) -> None:
        self.settings = settings
        # Jobs as systemd units: only for the operations' own actions (not a caller's).
        self.units = units if actions is None else None
        self._names: dict[int, str] = {}  # job id -> its job file's name (unit jobs)
        self._detached = threading.Event()  # shutdown: stop following, leave units running
        self._quiet: set[int] = set()  # adopted jobs whose file is being read: one snapshot
        self.listener = listener
        self.max_parallel = max_parallel
        self.actions = dict(actions if actions is not None else default_actions())
        self.max_log_lines = max_log_lines
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._slots = threading.Condition(self._lock)
        self._running = 0
        self._jobs: dict[int, Job] = {}
        self._tokens: dict[int, CancelToken] = {}
        self._done: dict[int, threading.Event] = {}
        self._threads: dict[int, threading.Thread] = {}
        # The notifier: an ordered outbox of snapshots (state changes) and job ids (fold
        # into one fresh snapshot), drained by one thread.
        self.notify_interval = notify_interval
        self._wakeup = threading.Condition(self._lock)
        self._ended = threading.Condition(self._lock)  # a job finished (``wait_any``)
        self._outbox: deque[Job | int] = deque()
        self._pending: set[int] = set()
        self._urgent = False
        self._closed = False
        self._delivering = False
        self._delivered: dict[int, int] = {}
        self._notifier: threading.Thread | None = None

    # -- queries ------------------------------------------------------------------------

    def jobs(self) -> list[Job]:
        with self._lock:
            return [job.snapshot() for job in self._jobs.values()]

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.snapshot() if job else None

    def active_on(self, vm: str) -> Job | None:
        with self._lock:
            job = self._active_on(vm)
            return job.snapshot() if job else None

    def _active_on(self, vm: str) -> Job | None:
        return next(
            (
                j
                for j in self._jobs.values()
                if j.vm == vm and not j.state.finished and "bulk" not in j.options
            ),
            None,
        )

    # -- control ------------------------------------------------------------------------

    def submit(self, action: str, vm: str, *, parent: int | None = None, **options: Any) -> Job:
        """Start ACTION on VM in a new thread; return its first snapshot. PARENT: the bulk
        job it belongs to."""
        if action not in self.actions:
            raise ValueError(f"unknown action {action!r}")
        return self._start(action, vm, options, parent, self._work)

    def submit_bulk(self, plan: BulkPlan, *, builds: int, restarts: int) -> Job:
        """Start PLAN as one parent job whose children are ordinary jobs (``bulk``)."""
        action, label, options = plan.parent(builds, restarts)
        return self._start(action, label, options, None, self._work_bulk)

    def wait_any(self, job_ids: list[int], timeout: float | None = None) -> list[int]:
        """Wait until one of JOB_IDS has finished (or TIMEOUT); the finished ones."""
        with self._ended:

            def done() -> list[int]:
                return [i for i in job_ids if self._done[i].is_set()]

            self._ended.wait_for(done, timeout)
            return done()

    def _start(
        self,
        action: str,
        vm: str,
        options: dict[str, Any],
        parent: int | None,
        work: Callable[[Job, CancelToken], None],
    ) -> Job:
        token = CancelToken()
        thread: threading.Thread | None = None
        with self._lock:
            if self._closed:
                raise RuntimeError("the job runner has been shut down")
            self._start_notifier()
            job = Job(id=next(self._ids), action=action, vm=vm, options=options, parent=parent)
            job.created = time.time()
            busy = self._active_on(vm) if "bulk" not in options else None
            self._jobs[job.id] = job
            self._tokens[job.id] = token
            self._done[job.id] = threading.Event()
            if busy is not None:
                job.state = JobState.FAILED
                job.result = f"{Busy(vm, os.getpid())}: {busy.title} (job {busy.id})"
                job.ended = job.started = job.created
                self._done[job.id].set()
            else:
                thread = threading.Thread(
                    target=work, args=(job, token), name=f"job-{job.id}", daemon=True
                )
                self._threads[job.id] = thread
            self._post(job, state_change=True)
            snapshot = job.snapshot()
        if thread is not None:
            thread.start()
        return snapshot

    def cancel(self, job_id: int) -> bool:
        """Ask job JOB_ID to stop; False when it has already finished (or never existed)."""
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None or job.state.finished:
                return False
            if self._detached.is_set() and job.unit is not None:
                return False  # quitting: a unit job goes on without us
            job.cancel_requested = True
            self._post(job, state_change=True)
            token = self._tokens[job_id]
            self._slots.notify_all()
        token.cancel()
        return True

    def wait(self, job_id: int, timeout: float | None = None) -> Job:
        """Block until job JOB_ID has finished (or TIMEOUT passed); its snapshot."""
        self._done[job_id].wait(timeout)
        job = self.get(job_id)
        assert job is not None
        return job

    def shutdown(self, timeout: float | None = None) -> None:
        """Cancel every job run in a thread (unit jobs go on: we only stop following them),
        wait for their threads, deliver what is left, stop notifying."""
        self._detached.set()
        for job in self.jobs():
            self.cancel(job.id)
        with self._lock:
            threads = list(self._threads.values())
        deadline = None if timeout is None else time.monotonic() + timeout
        for thread in threads:  # TIMEOUT in all, not per thread
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        with self._lock:
            self._closed = True
            self._wakeup.notify_all()
            notifier = self._notifier
        if notifier is not None and notifier is not threading.current_thread():
            notifier.join(None if deadline is None else max(0.0, deadline - time.monotonic()))

    def drain(self, timeout: float | None = None) -> bool:
        """Wait until the listener has been given every change so far (tests, scripts)."""
        with self._wakeup:
            return self._wakeup.wait_for(lambda: not self._outbox and not self._delivering, timeout)

    def forget_finished(self) -> None:
        with self._lock:
            for job_id in [i for i, j in self._jobs.items() if j.state.finished]:
                for table in (self._jobs, self._tokens, self._done, self._threads, self._names):
                    table.pop(job_id, None)

    # -- the worker ---------------------------------------------------------------------

    def _start_notifier(self) -> None:
        if self.listener is not None and self._notifier is None:
            self._notifier = threading.Thread(target=self._deliver, name="jobs-notify", daemon=True)
            self._notifier.start()

    def _post(self, job: Job, state_change: bool = False) -> None:
        """Queue a notification for JOB's change. Call with ``self._lock`` held."""
        job.version += 1
        if self.listener is None or job.id in self._quiet:
            return
        if state_change:
            # A folded entry of this job still queued would be delivered as a fresh snapshot,
            # one that may already hold this and later states, and the states between would
            # be dropped as stale: this snapshot holds its changes, so it takes its place.
            if job.id in self._pending:
                self._pending.discard(job.id)
                self._outbox.remove(job.id)
            self._outbox.append(job.snapshot())
            self._urgent = True
        elif job.id not in self._pending:
            self._pending.add(job.id)
            self._outbox.append(job.id)
        self._wakeup.notify_all()

    def _deliver(self) -> None:
        """The notifier thread: hands snapshots to the listener in the order of changes."""
        last_round = 0.0
        while True:
            with self._wakeup:
                while not self._outbox:
                    if self._closed:
                        return
                    self._wakeup.wait()
                if not self._urgent:  # only folded changes: keep to notify_interval
                    remaining = last_round + self.notify_interval - time.monotonic()
                    if remaining > 0:
                        self._wakeup.wait(remaining)
                snapshots: list[Job] = []
                for entry in self._outbox:
                    if isinstance(entry, int):
                        self._pending.discard(entry)
                        job = self._jobs.get(entry)
                        if job is not None:
                            snapshots.append(job.snapshot())
                    else:
                        snapshots.append(entry)
                self._outbox.clear()
                self._urgent = False
                self._delivering = True
            last_round = time.monotonic()
            try:
                for snapshot in snapshots:
                    # A fresh snapshot may already hold a later queued one's change.
                    if snapshot.version <= self._delivered.get(snapshot.id, 0):
                        continue
                    self._delivered[snapshot.id] = snapshot.version
                    self._notify(snapshot)
            finally:
                with self._wakeup:
                    self._delivering = False
                    self._wakeup.notify_all()

    def _notify(self, snapshot: Job) -> None:
        assert self.listener is not None
        try:
            self.listener(snapshot)
        except Exception:  # a broken listener must not stop the notifications
            traceback.print_exc()

    def _update(self, job: Job, change: Callable[[Job], None], state_change: bool = False) -> None:
        with self._lock:
            change(job)
            self._post(job, state_change)

    def _add_line(self, job: Job, line: str) -> None:
        def change(j: Job) -> None:
            j.log.append(line)
            extra = len(j.log) - self.max_log_lines
            if extra > 0:
                del j.log[:extra]
                j.log_dropped += extra

        self._update(job, change)

    def _set_progress(self, job: Job, progress: Progress) -> None:
        self._update(job, lambda j: setattr(j, "progress", progress))

    def _add_command(self, job: Job, record: CommandRecord) -> None:
        self._update(job, lambda j: j.commands.append(record))

    def _take_slot(self, job: Job) -> bool:
        with self._slots:
            while self.max_parallel is not None and self._running >= self.max_parallel:
                if job.cancel_requested:
                    return False
                self._slots.wait()
            if job.cancel_requested:
                return False
            self._running += 1
            return True

    def _free_slot(self) -> None:
        with self._slots:
            self._running -= 1
            self._slots.notify_all()

    def _work(self, job: Job, token: CancelToken) -> None:
        try:
            if not self._take_slot(job):
                self._finish(job, JobState.CANCELLED, "cancelled before it started")
                return
            try:
                self._run(job, token)
            finally:
                self._free_slot()
        finally:
            self._mark_done(job)

    def _mark_done(self, job: Job) -> None:
        with self._ended:
            self._done[job.id].set()
            self._ended.notify_all()

    def _work_bulk(self, job: Job, token: CancelToken) -> None:
        """A parent job: takes no slot (its children do), runs the plan's queue."""
        from tui.host.actions.bulk import run_bulk

        try:
            self._update(job, started_now, state_change=True)
            plan = job.options["bulk"]
            try:
                summary = run_bulk(
                    self,
                    job.id,
                    plan,
                    self._reporter(job),
                    token,
                    builds=job.options["builds"],
                    restarts=job.options["restarts"],
                )
            except Cancelled as exc:
                self._finish(job, JobState.CANCELLED, str(exc))
            except Exception as exc:
                for line in traceback.format_exc().splitlines():
                    self._add_line(job, line)
                self._finish(job, JobState.FAILED, f"internal error: {exc!r}")
            else:
                failed = " failed (" in summary
                self._finish(job, JobState.FAILED if failed else JobState.SUCCEEDED, summary)
        finally:
            self._mark_done(job)

    def _reporter(self, job: Job) -> Reporter:
        return Reporter(
            log=lambda line: self._add_line(job, line),
            progress=lambda progress: self._set_progress(job, progress),
            command=lambda record: self._add_command(job, record),
        )

    def _run(self, job: Job, token: CancelToken) -> None:
        if self.units is not None:
            self._run_unit(job, token)
            return
        self._update(job, started_now, state_change=True)
        reporter = self._reporter(job)
        action = self.actions[job.action]
        try:
            outcome = action(self.settings, job.vm, reporter, token, **job.options)
        except Cancelled as exc:
            self._finish(job, JobState.CANCELLED, str(exc))
        except ActionError as exc:
            self._finish(job, JobState.FAILED, str(exc))
        except OSError as exc:  # a file the action could not read or write: say which
            self._finish(job, JobState.FAILED, f"{job.action} failed: {describe(exc)}")
        except Exception as exc:
            for line in traceback.format_exc().splitlines():
                self._add_line(job, line)
            self._finish(job, JobState.FAILED, f"internal error: {exc!r}")
        else:
            self._finish(job, JobState.SUCCEEDED, outcome.message, outcome)

    def _finish(
        self, job: Job, state: JobState, message: str, outcome: Outcome | None = None
    ) -> None:
        def change(j: Job) -> None:
            j.state = state
            j.result = message
            j.outcome = outcome
            j.ended = time.time()
            if j.started is None:
                j.started = j.ended

        self._update(job, change, state_change=True)

    def forget(self, job_id: int) -> None:
        with self._lock:
            for table in (self._jobs, self._tokens, self._done, self._threads, self._names):
                table.pop(job_id, None)
