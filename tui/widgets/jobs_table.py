"""Every job of this session: action, VM, started, elapsed, state, result. Diffed by job id."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from rich.text import Text
from textual.widgets import DataTable

from tui.host.actions.jobs import Job
from tui.widgets.job_progress import clean, elapsed, format_elapsed, state_text

COLUMNS = (
    ("id", "#"),
    ("action", "Action"),
    ("vm", "VM"),
    ("started", "Started"),
    ("elapsed", "Elapsed"),
    ("state", "State"),
    ("result", "Result"),
)
RESULT_WIDTH = 60


def format_clock(ts: float | None) -> str:
    return "" if ts is None else time.strftime("%H:%M:%S", time.localtime(ts))


def row_cells(job: Job, now: float) -> dict[str, object]:
    result = (job.result or "").splitlines()
    shown = clean(result[0]) if result else ""
    if len(shown) > RESULT_WIDTH:
        shown = shown[: RESULT_WIDTH - 1] + "…"
    result_style = "red" if job.state == "failed" else ("dim" if job.state.finished else "")
    return {
        "id": Text(str(job.id), style="dim"),
        # A bulk job's children sit under it, indented (``update_jobs`` orders them so).
        "action": Text(f"  └ {job.action}", style="")
        if job.parent is not None
        else Text(job.action, style="bold"),
        "vm": Text(clean(job.vm)),  # a str cell would be parsed as markup
        "started": format_clock(job.started if job.started is not None else job.created),
        "elapsed": format_elapsed(elapsed(job, now)),
        "state": state_text(job, now),
        "result": Text(shown, style=result_style),
    }


class JobsTable(DataTable):
    DEFAULT_CSS = """
    JobsTable {
        height: auto;
        max-height: 12;
    }
    """

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.clock = clock
        self._jobs: dict[int, Job] = {}
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def update_job(self, job: Job) -> None:
        """Add JOB's row, or change the cells of it that changed."""
        self._jobs[job.id] = job
        key = str(job.id)
        cells = row_cells(job, self.clock())
        if key in self.rows:
            for column, value in cells.items():
                if self.get_cell(key, column) != value:
                    # update_width: a column grows with its widest cell while the panel is open.
                    self.update_cell(key, column, value, update_width=True)
        else:
            self.add_row(*cells.values(), key=key)
            if job.parent is not None:
                self._group()

    def update_jobs(self, jobs: Iterable[Job]) -> None:
        for job in sorted(jobs, key=lambda j: j.id):
            self.update_job(job)

    def _group(self) -> None:
        """Order the rows by job, each bulk job's children right after it (the cursor stays
        on its job)."""

        def key(id_cell: Text) -> tuple[int, int]:
            job = self._jobs[int(id_cell.plain)]
            return (job.parent if job.parent is not None else job.id, job.id)

        selected = self.selected_id
        self.sort("id", key=key)
        if selected is not None:
            self.select_id(selected)

    def tick(self) -> None:
        """Move the elapsed time and the spinner of the jobs that are not finished."""
        now = self.clock()
        for job in self._jobs.values():
            if not job.state.finished:
                key = str(job.id)
                self.update_cell(
                    key, "elapsed", format_elapsed(elapsed(job, now)), update_width=True
                )
                self.update_cell(key, "state", state_text(job, now), update_width=True)

    @property
    def selected_id(self) -> int | None:
        if not self.rows or self.cursor_row < 0:
            return None
        try:
            value = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        except Exception:
            return None
        return int(value) if value is not None else None

    def select_id(self, job_id: int) -> None:
        key = str(job_id)
        if key in self.rows:
            self.move_cursor(row=self.get_row_index(key))
