"""The jobs panel: every job of this session, the selected one's progress and full log, and the
command log (every external command the jobs ran, with exit status and duration).

It only shows what a ``JobsSource`` (``tui.actions.job_feed.JobFeed``) hands it, and follows
its job updates (a Textual ``Signal``: the subscription ends with the panel); closing the panel
leaves the jobs running.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import NamedTuple, Protocol

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Log, Static, TabbedContent, TabPane

from tui.host.actions.commands import CommandRecord
from tui.host.actions.jobs import Job, JobState
from tui.widgets.command_log import CommandLog
from tui.widgets.job_progress import TICK, JobProgress, clean
from tui.widgets.jobs_table import JobsTable
from tui.widgets.outside import notify_outside

CommandEntry = tuple[int | None, CommandRecord]


class JobUpdate(NamedTuple):
    """A job's new state and the commands it ran since its last update."""

    job: Job
    commands: list[CommandEntry]


class JobsSource(Protocol):
    def jobs(self) -> list[Job]: ...

    def command_log(self) -> list[CommandEntry]: ...

    def cancel_job(self, job_id: int) -> bool: ...

    def subscribe(self, node: DOMNode, listener: Callable[[JobUpdate], object]) -> None:
        """Call LISTENER with every job update while NODE is mounted."""


class JobsScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    JobsScreen {
        background: $background;
    }
    JobsScreen #jobs-title {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    JobsScreen #jobs-read-only {
        height: auto;
        padding: 0 1;
        color: $warning;
    }
    JobsScreen #no-jobs {
        padding: 1 2;
        color: $text-muted;
        height: auto;
    }
    JobsScreen TabbedContent {
        height: 1fr;
    }
    JobsScreen TabPane {
        padding: 0;
    }
    JobsScreen #job-log {
        height: 1fr;
    }
    """
    BINDINGS = [
        Binding("escape", "close", "Back", id="jobs.close"),
        Binding("j", "close", "Back", show=False),
        Binding("x", "cancel_job", "Cancel job", id="jobs.cancel"),
        Binding("l", "show_tab('log')", "Log", id="jobs.log"),
        Binding("o", "show_tab('commands')", "Commands", id="jobs.commands"),
        Binding("question_mark", "app.help", "Help", id="jobs.help", key_display="?"),
    ]

    def __init__(
        self,
        source: JobsSource,
        *,
        read_only_reason: str | None = None,
        animate: bool = True,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.source = source
        self.read_only_reason = read_only_reason  # said above the jobs: none can be started
        self.animate = animate
        self.clock = clock
        self._jobs: dict[int, Job] = {}
        self._shown_id: int | None = None
        self._shown_lines = 0  # lines of the shown job's log written so far (dropped included)

    def compose(self) -> ComposeResult:
        yield Static("Jobs", id="jobs-title")
        reason = self.read_only_reason
        if reason:
            yield Static(
                Text(f"Read-only ({reason}): actions are off; jobs cannot be started here."),
                id="jobs-read-only",
            )
        yield Static("No jobs yet: the actions you start show here.", id="no-jobs")
        yield JobsTable(id="jobs-table", clock=self.clock)
        yield JobProgress(id="job-progress", animate=self.animate, clock=self.clock)
        with TabbedContent(id="jobs-tabs"):
            with TabPane("Log", id="log"):
                yield Log(id="job-log", max_lines=None)
            with TabPane("Commands", id="commands"):
                yield CommandLog(id="command-log")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(JobsTable)
        for job in self.source.jobs():
            self._jobs[job.id] = job
        table.update_jobs(self._jobs.values())
        commands = self.query_one(CommandLog)
        for job_id, record in self.source.command_log():
            commands.add_command(job_id, record)
        self.source.subscribe(self, self._job_changed)
        if self._jobs:
            newest = max(self._jobs)
            table.select_id(newest)
            self._show(newest)
        self._update_summary()
        table.focus()
        if self.animate:
            self.set_interval(TICK, table.tick)

    def _update_summary(self) -> None:
        self.query_one("#no-jobs").display = not self._jobs
        counts: dict[str, int] = {}
        for job in self._jobs.values():
            counts[str(job.state)] = counts.get(str(job.state), 0) + 1
        title = "Jobs"
        if self._jobs:
            title += f": {len(self._jobs)} in this session"
            parts = [f"{counts[s]} {s}" for s in JobState if counts.get(s)]
            title += " (" + ", ".join(parts) + ")"
        self.query_one("#jobs-title", Static).update(title)

    # --- updates from the source (on the UI thread) -----------------------------------------

    def _job_changed(self, update: JobUpdate) -> None:
        if not self.is_mounted:  # being dismissed
            return
        job, commands = update
        new = job.id not in self._jobs
        self._jobs[job.id] = job
        table = self.query_one(JobsTable)
        table.update_job(job)
        self._update_summary()
        if new and (self._shown_id is None or len(self._jobs) == 1):
            table.select_id(job.id)
            self._show(job.id)
        if job.id == self._shown_id:
            self._refresh_shown(job)
        log = self.query_one(CommandLog)
        for job_id, record in commands:
            log.add_command(job_id, record)

    # --- the selected job -------------------------------------------------------------------

    @on(DataTable.RowHighlighted, "#jobs-table")
    def _row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._show(int(event.row_key.value))

    def _show(self, job_id: int) -> None:
        job = self._jobs.get(job_id)
        if job is None:
            return
        if job_id != self._shown_id:
            self._shown_id = job_id
            self._shown_lines = 0
            self.query_one("#job-log", Log).clear()
        self._refresh_shown(job)

    def _refresh_shown(self, job: Job) -> None:
        self.query_one(JobProgress).show_job(job)
        log = self.query_one("#job-log", Log)
        total = job.log_dropped + len(job.log)
        fresh = total - self._shown_lines
        if fresh <= 0:
            return
        if self._shown_lines == 0 and job.log_dropped:
            log.write_line(f"… {job.log_dropped} earlier lines not kept")
        lines = job.log[-fresh:] if fresh <= len(job.log) else job.log
        log.write_lines([clean(line) for line in lines])
        self._shown_lines = total

    @property
    def shown_job(self) -> Job | None:
        return None if self._shown_id is None else self._jobs.get(self._shown_id)

    # --- actions -----------------------------------------------------------------------------

    def action_close(self) -> None:
        self.dismiss(None)

    def action_cancel_job(self) -> None:
        job = self.shown_job
        if job is None:
            self.notify("No job selected.", severity="warning")
            return
        if job.state.finished:
            notify_outside(self, f"{job.title} (job {job.id}) has already {job.state}.")
            return
        if self.source.cancel_job(job.id):
            notify_outside(self, f"Cancelling {job.title} (job {job.id})…")
        else:
            notify_outside(self, f"{job.title} (job {job.id}) has already finished.")

    def action_show_tab(self, tab: str) -> None:
        self.query_one(TabbedContent).active = tab
