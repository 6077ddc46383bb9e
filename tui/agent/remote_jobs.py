"""The app's side of jobs on a remote host: what the agent reports, shaped like a ``JobRunner``.

``RemoteJobs`` is what the actions controller drives for a remote host (``submit``,
``cancel``, ``active_on``, ``jobs``, ``listener``): a submit is one ``submit`` message to the
agent and a queued job here at once; every ``job`` message the agent sends (``jobwire``,
decoded strictly) becomes a snapshot of the job with the app's own id (kept per ``key``, so
a job adopted by a new agent after a reconnect is the same row), handed to ``listener``.
The facts a confirmation states come from the host (``plan``: asked, waited for briefly).
A message that does not decode is dropped and said in ``problem`` (one line).

Bulk actions (marked VMs): the parent job runs here, in the app, as on this host
(``bulk.run_bulk``, the same limits, cancel and summary); each child is an ordinary submit to
the agent. Quitting the app ends the parent: the children already started go on on the host,
the ones not yet started are not.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from tui.agent import jobwire
from tui.host.actions.bulk import BulkPlan, run_bulk
from tui.host.actions.cancel import CancelToken
from tui.host.actions.errors import Cancelled
from tui.host.actions.jobs import MAX_LOG_LINES, Job, JobState
from tui.host.actions.operations import Reporter
from tui.host.actions.plan import ActionPlan
from tui.host.text import sanitise

PLAN_TIMEOUT_S = 5.0
MAX_JOBS = 1000  # jobs kept per host (the oldest finished go first)


def _started(job: Job) -> None:
    job.state = JobState.RUNNING
    job.started = time.time()


def _add_line(job: Job, line: str) -> None:
    job.log.append(sanitise(line, 1000))
    if len(job.log) > MAX_LOG_LINES:
        del job.log[0]
        job.log_dropped += 1


class RemoteJobs:
    detaches = True  # jobs run on the host: quitting the app leaves them running
    units = None

    def __init__(self, host: str, send: Callable[[dict[str, Any]], bool]) -> None:
        self.host = host
        self._send = send  # False when there is no session to send it on
        self.listener: Callable[[Job], None] | None = None
        self.problem: str | None = None
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._jobs: dict[int, Job] = {}
        self._keys: dict[str, int] = {}  # the agent's key -> our id
        self._id_keys: dict[int, str] = {}
        self._plans: dict[int, tuple[threading.Event, list[Any]]] = {}
        self._tokens: dict[int, CancelToken] = {}  # the bulk parents (they run here)
        self._closed = False  # the app quits: a bulk parent starts no more children
        self._unacked_cancels: set[int] = set()  # cancelled before the host reported them
        self.changed = threading.Condition(self._lock)  # any job changed (tests, scripts)

    # --- what the controller calls (the app's thread) ----------------------------------------

    def jobs(self) -> list[Job]:
        with self._lock:
            return [j.snapshot() for j in self._jobs.values()]

    def get(self, job_id: int) -> Job | None:
        with self._lock:
            job = self._jobs.get(job_id)
            return job.snapshot() if job else None

    def active_on(self, vm: str) -> Job | None:
        with self._lock:
            return next(
                (
                    j.snapshot()
                    for j in self._jobs.values()
                    if j.vm == vm and not j.state.finished and "bulk" not in j.options
                ),
                None,
            )

    def adopt(self) -> list[str]:
        return []  # the agent reports its host's jobs when the session starts

    def submit(self, action: str, vm: str, *, parent: int | None = None, **options: Any) -> Job:
        options = {k: v for k, v in options.items() if k != "source"}  # deploy: the host's
        with self._lock:
            job = Job(
                id=next(self._ids),
                action=action,
                vm=vm,
                options=options,
                host=self.host,
                parent=parent,
            )
            job.created = time.time()
            self._jobs[job.id] = job
        if self._closed:
            self._update(job.id, JobState.CANCELLED, "not started: the app quit")
            return self.get(job.id) or job
        sent = self._send(
            {"type": "submit", "req": job.id, "action": action, "vm": vm, "options": options}
        )
        if not sent:
            self._update(job.id, JobState.FAILED, f"{self.host} is not connected")
        return self.get(job.id) or job

    def submit_bulk(self, plan: BulkPlan, *, builds: int, restarts: int) -> Job:
        """Start PLAN as one parent job here, in the app (as on this host: ``run_bulk``),
        whose children are ordinary submits to the agent, each a unit on the host."""
        action, label, options = plan.parent(builds, restarts)
        token = CancelToken()
        with self._lock:
            job = Job(id=next(self._ids), action=action, vm=label, options=options, host=self.host)
            job.created = time.time()
            self._jobs[job.id] = job
            self._tokens[job.id] = token
            snapshot = job.snapshot()
        self._tell(snapshot)
        threading.Thread(
            target=self._work_bulk,
            args=(job.id, plan, token, builds, restarts),
            name=f"bulk-{self.host}-{job.id}",
            daemon=True,  # quitting ends the queue; the children started go on on the host
        ).start()
        return snapshot

    def _work_bulk(
        self, job_id: int, plan: BulkPlan, token: CancelToken, builds: int, restarts: int
    ) -> None:
        self._change(job_id, _started)
        reporter = Reporter(log=lambda line: self._change(job_id, lambda j: _add_line(j, line)))
        try:
            summary = run_bulk(
                self, job_id, plan, reporter, token, builds=builds, restarts=restarts
            )
        except Cancelled as exc:
            self._update(job_id, JobState.CANCELLED, str(exc))
        except Exception as exc:
            self._update(job_id, JobState.FAILED, f"internal error: {exc!r}")
        else:
            failed = " failed (" in summary
            self._update(job_id, JobState.FAILED if failed else JobState.SUCCEEDED, summary)

    def wait_any(self, job_ids: list[int], timeout: float | None = None) -> list[int]:
        """Wait until one of JOB_IDS has finished (or TIMEOUT); the finished ones."""
        with self.changed:

            def done() -> list[int]:
                return [i for i in job_ids if (j := self._jobs.get(i)) is None or j.state.finished]

            self.changed.wait_for(done, timeout)
            return done()

    def cancel(self, job_id: int) -> bool:
        with self._lock:
            token = self._tokens.get(job_id)
            job = self._jobs.get(job_id)
            if token is not None and job is not None and not job.state.finished:
                job.cancel_requested = True  # a parent (here): it cancels its children
                token.cancel()
                return True
            key = self._id_keys.get(job_id)
            if job is None or job.state.finished:
                return False
            if key is None:
                # Submitted, not yet taken by the host (or the session went): cancelled here
                # now, so a parent waiting for it ends; the host is asked to cancel it too if
                # it reports it later.
                self._unacked_cancels.add(job_id)
        if key is None:
            self._update(job_id, JobState.CANCELLED, f"cancelled before {self.host} took it")
            return True
        return self._send({"type": "cancel", "key": key})

    def shutdown(self, timeout: float | None = None) -> None:
        self._closed = True
        self.listener = None

    def plan(self, vm: str, timeout: float = PLAN_TIMEOUT_S) -> ActionPlan | str:
        """The host's facts for VM's confirmation, or why there are none (one line)."""
        event = threading.Event()
        answer: list[Any] = []
        with self._lock:
            req = next(self._ids)
            self._plans[req] = (event, answer)
        try:
            if not self._send({"type": "plan", "req": req, "vm": vm}):
                return f"{self.host} is not connected"
            if not event.wait(timeout):
                return f"{self.host} did not answer in {timeout:.0f} s"
            return answer[0]
        finally:
            with self._lock:
                self._plans.pop(req, None)

    # --- what the agent sent (the host loop's thread) -----------------------------------------

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        try:
            if kind == "job":
                self._job(message.get("job"))
            elif kind == "refused":
                req = message.get("req")
                why = message.get("message")
                text = sanitise(why, 400) if isinstance(why, str) else "refused"
                if isinstance(req, int) and not isinstance(req, bool):
                    self._update(req, JobState.FAILED, text)
            elif kind == "plan":
                self._plan_answer(message)
        except jobwire.JobWireError as exc:
            self.problem = f"{self.host}: the agent sent a bad {kind}: {exc}"

    def _plan_answer(self, message: dict[str, Any]) -> None:
        req = message.get("req")
        with self._lock:
            waiting = self._plans.get(req) if isinstance(req, int) else None
        if waiting is None:
            return
        event, answer = waiting
        if "plan" in message:
            answer.append(jobwire.plan_from_wire(message["plan"]))
        else:
            why = message.get("message")
            answer.append(sanitise(why, 400) if isinstance(why, str) else "no plan")
        event.set()

    def _job(self, data: object) -> None:
        key, req, job = jobwire.job_from_wire(data, self.host)
        with self.changed:
            # Known by its key, else by its unit (a new agent adopted it: a new key).
            job_id = self._keys.get(key)
            if job_id is None and job.unit is not None:
                job_id = self._keys.get(f"unit:{job.unit}")
            fresh = (
                req is not None
                and req in self._jobs
                and req not in self._id_keys
                and req not in self._tokens  # a bulk parent is ours alone
            )
            if job_id is None and fresh:
                job_id = req  # the job we submitted as REQ
            if job_id is None:
                job_id = next(self._ids)
            old = self._jobs.get(job_id)
            self._keys[key] = job_id
            if job.unit is not None:
                self._keys[f"unit:{job.unit}"] = job_id
            self._id_keys[job_id] = key
            # Not ours and new to us: a job of an earlier session (shown, not announced).
            adopted = old.adopted if old else job_id != req
            parent = old.parent if old else None  # the agent knows nothing of a bulk parent
            job = replace(
                job,
                id=job_id,
                version=(old.version + 1) if old else 1,
                adopted=adopted,
                parent=parent,
            )
            self._jobs[job_id] = job
            self._trim()
            self.changed.notify_all()
            snapshot = job.snapshot()
            cancel = job_id in self._unacked_cancels and not job.state.finished
            if fresh:
                self._unacked_cancels.discard(job_id)
        self._tell(snapshot)
        if cancel:
            self._send({"type": "cancel", "key": key})

    def _change(self, job_id: int, change: Callable[[Job], None]) -> None:
        with self.changed:
            job = self._jobs.get(job_id)
            if job is None:
                return
            change(job)
            job.version += 1
            self.changed.notify_all()
            snapshot = job.snapshot()
        self._tell(snapshot)

    def _update(self, job_id: int, state: JobState, result: str) -> None:
        with self.changed:
            job = self._jobs.get(job_id)
            if job is None or job.state.finished:
                return
            job.state, job.result = state, result
            job.ended = time.time()
            job.started = job.started or job.ended
            job.version += 1
            self.changed.notify_all()
            snapshot = job.snapshot()
        self._tell(snapshot)

    def _trim(self) -> None:
        if len(self._jobs) <= MAX_JOBS:
            return

        def kept(job: Job) -> bool:  # a running bulk parent's children: it asks for them
            parent = self._jobs.get(job.parent) if job.parent is not None else None
            return parent is not None and not parent.state.finished

        for job_id in [i for i, j in self._jobs.items() if j.state.finished and not kept(j)][
            : len(self._jobs) - MAX_JOBS
        ]:
            self._jobs.pop(job_id, None)
            self._id_keys.pop(job_id, None)
            self._tokens.pop(job_id, None)
            for key in [k for k, i in self._keys.items() if i == job_id]:
                self._keys.pop(key, None)

    def _tell(self, job: Job) -> None:
        listener = self.listener
        if listener is not None:
            listener(job)

    def wait(self, predicate: Callable[[list[Job]], Any], timeout: float) -> Any:
        """Until PREDICATE(jobs) is truthy (its value) or TIMEOUT (None): tests, scripts."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while True:
                value = predicate([j.snapshot() for j in self._jobs.values()])
                left = deadline - time.monotonic()
                if value or left <= 0:
                    return value or None
                self.changed.wait(left)
