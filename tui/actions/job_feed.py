"""The jobs as this app has seen them: the runner's snapshots, kept on the app's thread.

``JobFeed(app, runner, on_state)`` is the runner's listener. Every job snapshot the runner
hands it (from the runner's notifier thread) is posted onto the app's message queue with
``app.call_later`` (thread-safe and never blocking, so a closing app cannot deadlock the
notifier), then kept (a snapshot older than the one kept is dropped), published on
``updates`` with the commands the job ran since its last one (a Textual ``Signal``: the jobs
panel subscribes, and its subscription ends with it) and, when the job's state changed, handed
to ``on_state`` with the snapshot before. It is the jobs panel's ``JobsSource``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.app import App
from textual.dom import DOMNode
from textual.signal import Signal

from tui.host.actions.commands import CommandRecord
from tui.host.actions.jobs import Job, JobRunner

if TYPE_CHECKING:
    from tui.screens.jobs import CommandEntry, JobUpdate

# Called with (the snapshot kept before or None, the new one) when a job's state changed.
StateListener = Callable[[Job | None, Job], None]


class JobFeed:
    """Everything here runs on the app's thread except ``_listener``."""

    def __init__(self, app: App, runner: JobRunner, on_state: StateListener) -> None:
        self.app = app
        self.runner = runner
        self.on_state = on_state
        self.runner.listener = self._listener
        self._jobs: dict[int, Job] = {}
        self._commands: list[CommandEntry] = []
        self._commands_seen: dict[int, int] = {}
        self.updates: Signal[JobUpdate] = Signal(app, "job-updates")
        self._closed = False

    def close(self) -> None:
        """Keep and publish nothing more (the app exits)."""
        self._closed = True

    # --- the runner's side (notifier thread) ---------------------------------------------------

    def _listener(self, job: Job) -> None:
        if self._closed:
            return
        self.app.call_later(self.add, job)

    # --- the UI thread ---------------------------------------------------------------------------

    def add(self, job: Job) -> None:
        """Keep JOB's snapshot unless a newer one is kept, and publish it."""
        if self._closed:
            return
        previous = self._jobs.get(job.id)
        if previous is not None and previous.version >= job.version:
            return
        self._jobs[job.id] = job
        seen = self._commands_seen.get(job.id, 0)
        fresh = [(job.id, record) for record in job.commands[seen:]]
        self._commands_seen[job.id] = len(job.commands)
        self._commands.extend(fresh)
        from tui.screens.jobs import JobUpdate

        self.updates.publish(JobUpdate(job, fresh))
        if previous is None or previous.state != job.state:
            self.on_state(previous, job)

    def running_on(self) -> dict[str, str]:
        """VM name -> title of the job running on it now."""
        return {
            job.vm: job.title
            for job in self._jobs.values()
            if not job.state.finished and "bulk" not in job.options  # a parent: no VM
        }

    # --- JobsSource, for the jobs panel ------------------------------------------------------

    def jobs(self) -> list[Job]:
        return [self._jobs[i] for i in sorted(self._jobs)]

    def job(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def command_log(self) -> list[CommandEntry]:
        return list(self._commands)

    def add_command(self, record: CommandRecord) -> None:
        """Record a command the app ran outside a job (it shows in the command log)."""
        entry: CommandEntry = (None, record)
        self._commands.append(entry)

    def cancel_job(self, job_id: int) -> bool:
        return self.runner.cancel(job_id)

    def subscribe(self, node: DOMNode, listener: Callable[[JobUpdate], object]) -> None:
        """Call LISTENER with every job update while NODE is mounted (at once, on the UI
        thread: the update is as fresh as ``jobs()``)."""
        self.updates.subscribe(node, listener, immediate=True)
