"""Jobs run as transient systemd units (``job-exec``), seen from the runner: start one and
follow its job file, turning its records into the job's changes; ``adopt`` the jobs of earlier
apps. Part of ``JobRunner`` (a mixin: it uses the runner's lock, tables and notifications)."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any

from tui.host.actions import jobfile
from tui.host.actions.cancel import CancelToken
from tui.host.actions.job import Job, JobState, started_now

FOLLOW_INTERVAL = 0.1  # seconds between reads of a unit job's file
UNIT_CHECK_INTERVAL = 2.0  # seconds between asking systemd whether a quiet job's unit runs
FINISHED_KEPT_S = 24 * 3600  # job files of jobs that ended longer ago are removed on adopt


class FollowsUnitJobs:
    """JobRunner's part for jobs run as units (``self.units``)."""

    @property
    def detaches(self) -> bool:
        """Whether quitting leaves jobs running (they run as units)."""
        return self.units is not None

    def _run_unit(self, job: Job, token: CancelToken) -> None:
        """Start JOB as a unit and follow its file until it ends (or we detach)."""
        assert self.units is not None
        spec = {
            "action": job.action,
            "vm": job.vm,
            "created": job.created,
            "settings": jobfile.settings_json(self.settings),
            "environ": jobfile.passed_on_environ(),
        }
        try:
            spec["options"] = jobfile.options_json(job.options)
            name = self.units.start(spec, lambda record: self._add_command(job, record))
        except jobfile.JobFileError as exc:
            self._finish(job, JobState.FAILED, f"{job.action} not started: {exc}")
            return
        with self._lock:
            job.unit = jobfile.unit_of(name)
            self._names[job.id] = name
        self._update(job, started_now, state_change=True)
        try:
            dir_fd = self.units.open_dir()
            try:
                reader = jobfile.JobReader(dir_fd, name)
            finally:
                os.close(dir_fd)
        except jobfile.JobFileError as exc:
            self._finish(job, JobState.FAILED, str(exc))
            return
        self._follow(job, token, name, reader)

    def _follow(self, job: Job, token: CancelToken, name: str, reader: jobfile.JobReader) -> None:
        """Turn the records of job NAME's file into JOB's changes until its end record,
        its unit's end, or our shutdown; a cancel stops the unit."""
        assert self.units is not None
        stopped = False
        quiet_since = time.monotonic()
        try:
            while not self._detached.is_set():
                try:
                    records = reader.read()
                    for record in records:
                        if self._apply(job, record):
                            return
                except jobfile.JobFileError as exc:
                    self._finish(job, JobState.FAILED, jobfile.problem(name, exc))
                    return
                now = time.monotonic()
                if records:
                    quiet_since = now
                if token.cancelled and not stopped:
                    stopped = True
                    self.units.stop(name, lambda record: self._add_command(job, record))
                if now - quiet_since > UNIT_CHECK_INTERVAL:
                    quiet_since = now
                    if self.units.active(name) is False and not self._drain_end(job, reader):
                        self._ended_without_result(job, name, stopped)
                        return
                self._detached.wait(FOLLOW_INTERVAL)
        finally:
            reader.close()

    def _ended_without_result(self, job: Job, name: str, stopped: bool) -> None:
        """JOB's unit is gone and its file has no end (killed outright): say so, and write
        that end into the file, so a later app shows it as ended (and removes it in time)."""
        assert self.units is not None
        state = JobState.CANCELLED if stopped else JobState.FAILED
        message = (
            f"its unit {jobfile.unit_of(name)} ended without a result (killed?); see its journal"
        )
        self._finish(job, state, message)
        with contextlib.suppress(jobfile.JobFileError, OSError):
            dir_fd = self.units.open_dir()
            try:
                writer = jobfile.JobWriter(dir_fd, name)
                writer.write(
                    {"kind": "end", "state": state.value, "result": message, "at": time.time()}
                )
                writer.close()
            finally:
                os.close(dir_fd)

    def _drain_end(self, job: Job, reader: jobfile.JobReader) -> bool:
        """After the unit ended: the records it wrote last; whether one was the end."""
        try:
            return any(self._apply(job, record) for record in reader.read())
        except jobfile.JobFileError as exc:
            self._finish(job, JobState.FAILED, jobfile.problem(reader.name, exc))
            return True

    def _apply(self, job: Job, record: dict[str, Any]) -> bool:
        """JOB's change for one record of its file; True for the end."""
        kind = record.get("kind")
        if kind == "log":
            self._add_line(job, jobfile.text(record.get("line")))
        elif kind == "progress":
            self._set_progress(job, jobfile.progress_from_json(record.get("progress")))
        elif kind == "command":
            self._add_command(job, jobfile.command_from_json(record.get("command")))
        elif kind == "state":
            at = jobfile.number(record.get("at"))

            def running(j: Job) -> None:
                j.state = JobState.RUNNING
                j.started = at if at is not None else (j.started or time.time())

            self._update(job, running, state_change=True)
        elif kind == "end":
            try:
                state = JobState(record.get("state"))
            except ValueError:
                raise jobfile.JobFileError("an end record names no state") from None
            outcome = jobfile.outcome_from_json(record.get("outcome"))
            at = jobfile.number(record.get("at"))

            def end(j: Job) -> None:
                j.state = state if state.finished else JobState.FAILED
                j.result = jobfile.text(record.get("result"))
                j.outcome = outcome
                j.ended = at if at is not None else time.time()
                if j.started is None:
                    j.started = j.ended

            self._update(job, end, state_change=True)
            return True
        return False

    def adopt(self) -> list[str]:
        """Show the unit jobs of earlier apps: running ones are followed again, finished ones
        shown as they ended; job files that ended over a day ago are removed. Returns one
        line per job file that could not be read (it is left alone)."""
        if self.units is None:
            return []
        try:
            dir_fd = self.units.open_dir()
        except jobfile.JobFileError as exc:
            return [str(exc)]
        problems: list[str] = []
        try:
            with self._lock:
                known = set(self._names.values())
            for name in jobfile.job_names(dir_fd):
                if name in known:
                    continue
                problem = self._adopt_one(dir_fd, name)
                if problem:
                    problems.append(problem)
        finally:
            os.close(dir_fd)
        return problems

    def _adopt_one(self, dir_fd: int, name: str) -> str | None:
        try:
            reader = jobfile.JobReader(dir_fd, name)
        except jobfile.JobFileError as exc:
            return str(exc)
        try:
            records = reader.read()
            spec = reader.spec
            if spec is None:
                reader.close()
                return None  # being written by the app that starts it
            action, vm = jobfile.text(spec.get("action")), jobfile.text(spec.get("vm"))
            options = jobfile.options_from_json(spec.get("options", {}))
        except jobfile.JobFileError as exc:
            reader.close()
            return str(exc)
        created = jobfile.number(spec.get("created")) or time.time()
        token = CancelToken()
        with self._lock:
            self._start_notifier()
            job = Job(id=next(self._ids), action=action, vm=vm, options=options, adopted=True)
            job.created = created
            job.unit = jobfile.unit_of(name)
            self._jobs[job.id] = job
            self._tokens[job.id] = token
            self._done[job.id] = threading.Event()
            self._names[job.id] = name
            self._quiet.add(job.id)  # what its file says so far: one snapshot, not a replay
        try:
            ended = any(self._apply(job, record) for record in records)
        except jobfile.JobFileError as exc:
            self._finish(job, JobState.FAILED, jobfile.problem(name, exc))
            ended = True
        with self._lock:
            self._quiet.discard(job.id)
            self._post(job, state_change=True)
        if ended:
            reader.close()
            self._mark_done(job)
            if job.ended is not None and time.time() - job.ended > FINISHED_KEPT_S:
                jobfile.remove(dir_fd, name)
                self.forget(job.id)
            return None
        thread = threading.Thread(
            target=self._follow_adopted, args=(job, token, name, reader), daemon=True
        )
        with self._lock:
            self._threads[job.id] = thread
        thread.start()
        return None

    def _follow_adopted(
        self, job: Job, token: CancelToken, name: str, reader: jobfile.JobReader
    ) -> None:
        try:
            if job.state is JobState.QUEUED:
                self._update(job, started_now, state_change=True)
            self._follow(job, token, name, reader)
        finally:
            self._mark_done(job)
