"""The host checks view: every finding of ``tui.host.checks`` (FAQ problems and leftovers), the
highlighted one's fix in full, and for a leftover a confirmed clean step.

Checks and cleaning run in thread workers (they ask systemd, read /proc, list links): the screen
never blocks. Read-only, cleaning is refused with the reason.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.widgets import DataTable, Footer, Static

from tui.host.checks.clean import CleanError, clean
from tui.host.checks.findings import CheckReport, Finding
from tui.host.settings import HostSettings
from tui.host.text import sanitise
from tui.screens.confirm import ConfirmScreen
from tui.widgets.outside import notify_outside, outside_text

Runner = Callable[[], CheckReport]


class ChecksScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    ChecksScreen {
        background: $background;
    }
    ChecksScreen #checks-title {
        height: 1;
        padding: 0 1;
        background: $panel;
        text-style: bold;
    }
    ChecksScreen #checks-table {
        height: 1fr;
    }
    ChecksScreen #checks-detail {
        height: auto;
        max-height: 8;
        padding: 0 1;
        border-top: solid $panel;
    }
    ChecksScreen #checks-errors {
        height: auto;
        padding: 0 1;
        color: $warning;
    }
    """

    BINDINGS = [
        Binding("escape", "close", "Close", id="checks.close"),
        Binding("r", "rerun", "Check again", id="checks.rerun"),
        Binding("c", "clean", "Clean", id="checks.clean"),
    ]

    def __init__(
        self, run: Runner, settings: HostSettings, read_only_reason: str | None = None
    ) -> None:
        super().__init__()
        self._run = run
        self._settings = settings
        self._read_only = read_only_reason
        self._findings: list[Finding] = []

    def compose(self) -> ComposeResult:
        yield Static("Host checks: running…", id="checks-title")
        table: DataTable[object] = DataTable(id="checks-table", cursor_type="row")
        table.add_columns("Where", "Check", "Problem")
        yield table
        yield Static("", id="checks-detail")
        yield Static("", id="checks-errors")
        yield Footer()

    def on_mount(self) -> None:
        self.action_rerun()

    def action_close(self) -> None:
        self.dismiss(None)

    def action_rerun(self) -> None:
        self.query_one("#checks-title", Static).update("Host checks: running…")
        self._check()

    @work(thread=True, exclusive=True, group="host-checks")
    def _check(self) -> None:
        report = self._run()
        self.app.call_from_thread(self._show, report)

    def _show(self, report: CheckReport) -> None:
        self._findings = report.findings
        table = self.query_one("#checks-table", DataTable)
        table.clear()
        for n, finding in enumerate(report.findings):
            where = finding.vm or "host"
            # Text, not markup: a finding quotes paths and names anyone may have chosen.
            table.add_row(
                Text(sanitise(where, 64)),
                Text(finding.kind.value),
                Text(sanitise(finding.message, 400)),
                key=str(n),
            )
        found = len(report.findings)
        summary = f"{found} problem{'s' if found != 1 else ''}" if found else "no problems found"
        self.query_one("#checks-title", Static).update(
            f"Host checks: {summary} (took {report.took_ms:.0f} ms)"
        )
        errors = "\n".join(f"not checked: {e}" for e in report.errors)
        self.query_one("#checks-errors", Static).update(outside_text(errors))
        self._describe(self._current())

    def _current(self) -> Finding | None:
        table = self.query_one("#checks-table", DataTable)
        if not self._findings or table.cursor_row < 0:
            return None
        return self._findings[min(table.cursor_row, len(self._findings) - 1)]

    @on(DataTable.RowHighlighted, "#checks-table")
    def _highlighted(self) -> None:
        self._describe(self._current())

    def _describe(self, finding: Finding | None) -> None:
        text = ""
        if finding is not None:
            text = f"{finding.message}\nfix: {finding.fix}"
            if finding.clean is not None:
                text += f"\nc: {finding.clean.describe()}"
        self.query_one("#checks-detail", Static).update(outside_text(text))

    def action_clean(self) -> None:
        finding = self._current()
        if finding is None or finding.clean is None:
            self.notify("Nothing to clean here: this problem is fixed in the configuration.")
            return
        if self._read_only:
            notify_outside(self, f"read-only: {self._read_only}.", severity="warning")
            return
        step = finding.clean

        def answered(ok: bool | None) -> None:
            if ok:
                self._clean(step)

        self.app.push_screen(
            ConfirmScreen(
                "Clean a leftover",
                f"{finding.message}\n\nThis will {step.describe()}.",
                confirm_label="Clean",
                danger=True,
            ),
            answered,
        )

    @work(thread=True, group="clean")
    def _clean(self, step: object) -> None:
        try:
            done = clean(step, self._settings)  # type: ignore[arg-type]
        except CleanError as exc:
            self.app.call_from_thread(notify_outside, self, str(exc), severity="error")
        else:
            self.app.call_from_thread(notify_outside, self, done)
        self.app.call_from_thread(self.action_rerun)
