"""What one job is doing right now: state, elapsed time, build progress, the last log lines.

Something always moves while a job runs (a spinner and the elapsed time, four times a second,
and an indeterminate bar while nix has not said how much there is to build), so a long
evaluation or a slow `systemctl stop` never looks frozen. Renders ``Job`` snapshots only.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.console import Group, RenderableType
from rich.text import Text
from textual.widget import Widget

from tui.host.actions.jobs import Job, JobState
from tui.host.actions.nixlog import Progress
from tui.host.text import sanitise

SPINNER = "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏"
STATE_MARK = {
    JobState.QUEUED: ("…", "dim"),
    JobState.RUNNING: ("", "bold cyan"),  # the spinner
    JobState.SUCCEEDED: ("✔", "bold green"),
    JobState.FAILED: ("✖", "bold red"),
    JobState.CANCELLED: ("■", "bold yellow"),
}
BAR_WIDTH = 24
TICK = 0.25  # seconds between repaints of a running job


# Log lines and paths come from outside: the one sanitiser, under the name used here.
clean = sanitise


def format_elapsed(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = max(0, int(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def elapsed(job: Job, now: float) -> float | None:
    if job.started is None:
        return None
    return (job.ended if job.ended is not None else now) - job.started


def state_text(job: Job, now: float) -> Text:
    mark, style = STATE_MARK[job.state]
    if job.state is JobState.RUNNING:
        mark = SPINNER[int(now / 0.1) % len(SPINNER)]
    label = str(job.state)
    if job.cancel_requested and not job.state.finished:
        label = "cancelling"
    return Text(f"{mark} {label}", style=style)


def _failed(progress: Progress) -> float:
    if progress.builds_expected:
        return progress.builds_failed / progress.builds_expected
    return 0.0


def _fraction(progress: Progress) -> float | None:
    if progress.builds_expected:
        return (progress.builds_done + progress.builds_failed) / progress.builds_expected
    if progress.bytes_expected:
        return progress.bytes_fetched / progress.bytes_expected
    if progress.paths_expected:
        return progress.paths_done / progress.paths_expected
    return None


def bar(
    fraction: float | None,
    now: float,
    width: int = BAR_WIDTH,
    moving: bool = True,
    failed: float = 0.0,
) -> Text:
    """A progress bar (FAILED: the part that failed, in red); with no fraction known, a block
    sliding back and forth."""
    text = Text()
    if fraction is None:
        if not moving:
            return Text("░" * width, style="dim")
        span = 6
        period = 2 * (width - span)
        step = int(now / 0.1) % period
        left = step if step <= width - span else period - step
        text.append("░" * left, style="dim")
        text.append("█" * span, style="cyan")
        text.append("░" * (width - span - left), style="dim")
        return text
    fraction = min(1.0, max(0.0, fraction))
    failed = min(fraction, max(0.0, failed))
    bad = round(failed * width)
    full = round(fraction * width) - bad
    text.append("█" * full, style="green")
    text.append("█" * bad, style="red")
    text.append("░" * (width - full - bad), style="dim")
    return text


class JobProgress(Widget):
    """Shows one job (``show_job``); nothing selected shows a hint."""

    DEFAULT_CSS = """
    JobProgress {
        height: auto;
        min-height: 3;
        padding: 0 1;
        border: round $primary-darken-2;
        border-title-color: $text-accent;
    }
    """

    def __init__(
        self,
        job: Job | None = None,
        *,
        clock: Callable[[], float] = time.time,
        tail_lines: int = 6,
        animate: bool = True,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.job = job
        self.clock = clock
        self.tail_lines = tail_lines
        self.animate = animate
        self.border_title = "Progress"

    def on_mount(self) -> None:
        if self.animate:
            self.set_interval(TICK, self._tick)

    def _tick(self) -> None:
        if self.job is not None and not self.job.state.finished:
            self.refresh(layout=False)

    def show_job(self, job: Job | None) -> None:
        self.job = job
        self.refresh(layout=True)  # the number of lines (the height) may have changed

    def render(self) -> RenderableType:
        job = self.job
        if job is None:
            return Text("No job selected.", style="dim")
        now = self.clock()
        lines: list[Text] = []

        head = Text()
        head.append_text(state_text(job, now))
        head.append("  ")
        head.append(clean(f"{job.action} {job.vm}"), style="bold")
        head.append(f"  (job {job.id})", style="dim")
        spent = elapsed(job, now)
        if spent is not None:
            head.append(f"  {format_elapsed(spent)}")
        lines.append(head)

        progress = job.progress
        running = not job.state.finished
        if progress is not None:
            row = Text()
            row.append_text(bar(_fraction(progress), now, moving=running, failed=_failed(progress)))
            row.append("  ")
            row.append(clean(progress.summary()))
            lines.append(row)
            current = progress.log_build or (
                progress.current_builds[0] if progress.current_builds else None
            )
            if running and progress.activity:
                lines.append(Text(clean(progress.activity), style="italic"))
            tail = progress.log_tail[-self.tail_lines :] if self.tail_lines else ()
            if tail:
                label = clean(current or "build")
                if progress.phase:
                    label += f" ({clean(progress.phase)})"
                lines.append(Text(f"{label}:", style="dim"))
                for line in tail:
                    lines.append(Text("│ " + clean(line), style="dim"))
            result = job.result or ""
            for error in progress.errors[-3:]:
                if job.state.finished and error.strip() in result:
                    continue  # the closing message below says it already
                for i, line in enumerate(clean_lines(error)[:6]):
                    lines.append(Text(("error: " if i == 0 else "       ") + line, style="red"))
        elif running:
            row = Text()
            row.append_text(bar(None, now))
            last = job.log[-1] if job.log else "starting"
            row.append("  " + clean(last))
            lines.append(row)
        elif job.log and self.tail_lines:
            for line in job.log[-min(3, self.tail_lines) :]:
                lines.append(Text("│ " + clean(line), style="dim"))

        if job.result and job.state.finished:
            style = {
                JobState.SUCCEEDED: "green",
                JobState.FAILED: "bold red",
                JobState.CANCELLED: "yellow",
            }[job.state]
            result_lines = clean_lines(job.result)
            for i, line in enumerate(result_lines[:8]):
                lines.append(Text(("→ " if i == 0 else "  ") + line, style=style))
        return Group(*lines)


def clean_lines(text: str) -> list[str]:
    return [clean(line) for line in text.splitlines() if line.strip()] or [""]
