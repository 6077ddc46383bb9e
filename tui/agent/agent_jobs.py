"""The agent's jobs: actions the app asks for, run on this host as the app runs them locally.

A ``JobRunner`` with jobs as systemd units (``jobunits``; in threads without a manager), so a
job goes on when the ssh connection or the app goes; a new agent (after a reconnect) adopts
them from their job files and reports every job of the host, running or finished meanwhile.

app -> agent  ``{"type": "submit", "req": N, "action": "restart", "vm": "web", "options": {}}``
              ``{"type": "cancel", "key": KEY}``
              ``{"type": "plan", "req": N, "vm": "web"}``  the facts its dialogs state
agent -> app  ``{"type": "job", "job": {...}}``  (``jobwire``) each change, ``req`` on the
              first snapshot of a job the app submitted
              ``{"type": "refused", "req": N, "message": "one line"}``
              ``{"type": "plan", "req": N, "plan": {...}}`` or ``{..., "message": why}``

The checks are the host's: a read-only agent (not root, or the config's read_only) refuses
every submit; another job on the VM (of any app: the VM lock) fails the job at once; the
operations check the name, the VM's directory and whether it is declarative, as locally.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

from tui.agent import jobwire
from tui.config import Settings
from tui.host.actions.errors import Busy
from tui.host.actions.jobs import Job, JobRunner
from tui.host.actions.jobunits import job_units
from tui.host.names import name_problem
from tui.host.text import sanitise

APP_JOB_TYPES = frozenset({"submit", "cancel", "plan"})
AGENT_JOB_TYPES = frozenset({"job", "refused", "plan"})


class AgentJobs:
    def __init__(
        self,
        settings: Settings,
        send: Callable[[dict[str, Any]], None],
        read_only: str | None,
        vms: Callable[[], list[Any]],
    ) -> None:
        self.settings = settings
        self.send = send
        self.read_only = read_only
        self.vms = vms  # the VMs of the agent's last poll (for plans)
        self._reqs: dict[int, int] = {}  # job id -> the app's request id
        self._keys: dict[int, str] = {}  # job id -> its key, fixed at its first snapshot
        self._lock = threading.Lock()
        self.runner: JobRunner | None = None
        if read_only is None:
            units, note = job_units(settings.host)
            if note:
                print(f"microvm-tui agent: {note}", file=sys.stderr)
            self.runner = JobRunner(settings.host, self._changed, units=units)

    def start(self) -> None:
        """Adopt the host's unit jobs and report every job (after the app's start)."""
        if self.runner is None:
            return
        for problem in self.runner.adopt():
            print(f"microvm-tui agent: {problem}", file=sys.stderr)
        for job in self.runner.jobs():
            self._changed(job)

    def close(self) -> None:
        """The session ended: unit jobs go on (the next agent adopts them)."""
        if self.runner is not None:
            self.runner.shutdown(3.0)

    def _changed(self, job: Job) -> None:
        with self._lock:
            req = self._reqs.get(job.id)
        key = self._key(job)
        with contextlib.suppress(OSError, ValueError):
            self.send({"type": "job", "job": jobwire.job_to_wire(job, key, req)})

    def _key(self, job: Job) -> str:
        """JOB's key on the wire: the same for its whole life in this agent (a job gets its
        unit only once started; the app also knows it by its unit, after a reconnect)."""
        with self._lock:
            return self._keys.setdefault(job.id, jobwire.key_of(job, os.getpid()))

    def handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        req = message.get("req")
        req = req if isinstance(req, int) and not isinstance(req, bool) else None
        if kind == "submit":
            self._submit(message, req)
        elif kind == "cancel":
            self._cancel(message.get("key"))
        elif kind == "plan":
            self._plan(message.get("vm"), req)

    def _refuse(self, req: int | None, why: str) -> None:
        self.send({"type": "refused", "req": req, "message": sanitise(why, 400)})

    def _submit(self, message: dict[str, Any], req: int | None) -> None:
        if self.runner is None:
            self._refuse(req, f"the agent is read-only: {self.read_only}")
            return
        try:
            action, options = jobwire.options_from_app(
                message.get("action"), message.get("options", {})
            )
        except jobwire.JobWireError as exc:
            self._refuse(req, str(exc))
            return
        vm = message.get("vm")
        if not isinstance(vm, str) or name_problem(vm):
            self._refuse(req, "not a VM name")
            return
        if action == "deploy":
            options["source"] = self.settings.deploy  # the host's own [deploy], never the app's
        busy = self.runner.active_on(vm)
        if busy is not None:
            self._refuse(req, f"{Busy(vm, os.getpid())}: {busy.title}")
            return
        # The notifier's first snapshot waits for our lock (``_changed``): it carries REQ.
        with self._lock:
            job = self.runner.submit(action, vm, **options)
            if req is not None:
                self._reqs[job.id] = req

    def _cancel(self, key: object) -> None:
        if self.runner is None or not isinstance(key, str):
            return
        for job in self.runner.jobs():
            if self._key(job) == key:
                self.runner.cancel(job.id)

    def _plan(self, vm_name: object, req: int | None) -> None:
        from tui.host.actions.plan import plan

        vm = next((v for v in self.vms() if v.name == vm_name), None)
        if vm is None:
            self.send({"type": "plan", "req": req, "message": "no such VM on the host"})
            return
        self.send(
            {"type": "plan", "req": req, "plan": jobwire.plan_to_wire(plan(vm, self.settings.host))}
        )
