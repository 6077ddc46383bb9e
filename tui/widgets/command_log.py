"""Every external command the app ran: when, for which job, the argv, how it ended, how long."""

from __future__ import annotations

import shlex
import time

from rich.text import Text
from textual.widgets import DataTable

from tui.host.actions.commands import CommandRecord
from tui.widgets.job_progress import clean

# The command last: it is long, and how it ended must stay in view.
COLUMNS = (
    ("time", "Time"),
    ("job", "Job"),
    ("outcome", "Exit"),
    ("duration", "Duration"),
    ("command", "Command"),
)


def format_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 600:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes}m{secs:02d}s"


def command_text(record: CommandRecord) -> str:
    """The argv as one would type it (quoted), for reading only: never run through a shell."""
    return clean(shlex.join(record.argv))


def row_cells(job_id: int | None, record: CommandRecord) -> tuple[object, ...]:
    return (
        time.strftime("%H:%M:%S", time.localtime(record.started)),
        Text("" if job_id is None else str(job_id), style="dim"),
        Text(clean(record.outcome), style="green" if record.ok else "bold red"),
        Text(format_duration(record.duration), justify="right"),
        Text(command_text(record)),  # a str cell would be parsed as markup
    )


class CommandLog(DataTable):
    DEFAULT_CSS = """
    CommandLog {
        height: 1fr;
    }
    """

    def __init__(
        self, *, name: str | None = None, id: str | None = None, classes: str | None = None
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, cursor_type="row", zebra_stripes=True)
        self.count = 0
        for key, label in COLUMNS:
            self.add_column(label, key=key)

    def add_command(self, job_id: int | None, record: CommandRecord) -> None:
        """Append one record; follow the end if the cursor was on the last row."""
        follow = self.cursor_row >= self.row_count - 1
        self.add_row(*row_cells(job_id, record), key=str(self.count))
        self.count += 1
        if follow:
            self.move_cursor(row=self.row_count - 1)
