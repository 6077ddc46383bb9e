"""The Logs screen: one VM's journal, followed live.

Two sources: the host's journal of ``microvm@NAME`` and its helper units (merged by time, each
line marked with its unit), or the guest's own journal from its FAQ share. Filters (unit,
priority, since, a regular expression) go to journalctl; a change reads the last screenful
again and follows on from there. Reads and the follower run off the UI thread; the follower's
batches arrive as messages, and a batch from a previous filter is dropped.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Protocol

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, Static

from tui.host.logs.entry import LogLine, short_unit
from tui.host.logs.query import PRIORITIES, LogQuery, QueryError, Since, vm_units
from tui.host.logs.session import EndCallback, Following, LinesCallback, LocalLogs, OpenedLogs
from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.host.text import sanitise
from tui.widgets.log_view import LogView


class LogSource(Protocol):
    """Opens a VM's logs for a query (blocking: called from a worker thread):
    tui.host.logs.session.LocalLogs here, tui.agent.logs_client.RemoteLogs over ssh."""

    def open(
        self, vm: VM, query: LogQuery, guest: bool, on_lines: LinesCallback, on_end: EndCallback
    ) -> OpenedLogs: ...


PRIORITY_CYCLE = ("all", "info", "warning", "err")
SINCE_CYCLE = (Since.ALL, Since.BOOT, Since.HOUR, Since.TODAY)
FIRST_LINES = 500  # read when the view opens or a filter changes: a few screens


@dataclass(frozen=True)
class LogFilters:
    guest: bool = False
    unit: str | None = None  # one of the VM's units, or None for all
    priority: str = "all"
    since: Since = Since.ALL
    grep: str = ""
    wrap: bool = False

    def describe(self, vm: str) -> str:
        parts = [
            "guest journal" if self.guest else "host journal",
            f"unit {short_unit(self.unit, vm)}" if self.unit else "all units",
            f"priority ≤ {self.priority}" if self.priority != "all" else "all priorities",
            f"since: {self.since.label}",
        ]
        if self.grep:
            parts.append(f"/{self.grep}/")
        return " · ".join(parts)


class LogsScreen(Screen[None]):
    """A VM's logs; Esc returns to the table."""

    AUTO_FOCUS = "#logs-view"

    BINDINGS = [
        Binding("escape", "back", "Back", id="logs.back"),
        Binding("u", "cycle_unit", "Unit", id="logs.unit"),
        Binding("p", "cycle_priority", "Priority", id="logs.priority"),
        Binding("s", "cycle_since", "Since", id="logs.since"),
        Binding("slash", "grep", "Search", id="logs.grep", key_display="/"),
        Binding("g", "toggle_source", "Guest/host", id="logs.source"),
        Binding("w", "toggle_wrap", "Wrap", id="logs.wrap"),
        Binding("home", "top", "Top", id="logs.top", show=False),
        Binding("end", "bottom", "Bottom", id="logs.bottom", show=False),
        Binding("y", "copy", "Copy", id="logs.copy"),
    ]

    DEFAULT_CSS = """
    LogsScreen #logs-title { height: 1; background: $panel; color: $text; padding: 0 1; }
    LogsScreen #logs-status { height: auto; max-height: 16; color: $text-muted; padding: 0 1; }
    LogsScreen #logs-grep { display: none; }
    LogsScreen #logs-grep.shown { display: block; }
    """

    class Batch(Message):
        def __init__(self, generation: int, lines: list[LogLine]) -> None:
            super().__init__()
            self.generation = generation
            self.lines = lines

    class Ended(Message):
        def __init__(self, generation: int, why: str | None) -> None:
            super().__init__()
            self.generation = generation
            self.why = why

    def __init__(
        self,
        vm: VM,
        settings: HostSettings,
        *,
        guest: bool = False,
        source: LogSource | None = None,
    ) -> None:
        super().__init__()
        self.vm = vm
        self.settings = settings
        self.filters = LogFilters(guest=guest)
        self.generation = 0
        self.status = ""  # what the status line says (why nothing shows, a note)
        self.loaded = 0  # finished loads
        self.shown_generation = 0  # the filters' generation on screen (tests wait on this)
        self.boot_start_usec: int | None = None  # "this boot" began then (last resolved)
        # Where the lines come from: this host's journal, or a remote host's agent.
        self.source: LogSource = source if source is not None else LocalLogs(settings)
        self._following: Following | None = None

    def compose(self) -> ComposeResult:
        yield Static(id="logs-title")
        yield Static(id="logs-status")
        yield Input(placeholder="regular expression (Enter applies, Esc cancels)", id="logs-grep")
        yield LogView(self.vm.name, id="logs-view")
        yield Footer()

    @property
    def view(self) -> LogView:
        return self.query_one(LogView)

    def on_mount(self) -> None:
        self._reload()

    def on_unmount(self) -> None:
        self._stop_following()

    # --- loading ------------------------------------------------------------------------------

    def _title(self) -> None:
        title = f"Logs of {sanitise(self.vm.name)} — {self.filters.describe(self.vm.name)}"
        self.query_one("#logs-title", Static).update(Text(title, no_wrap=True, overflow="ellipsis"))

    def _say(self, text: str) -> None:
        self.status = text
        line = self.query_one("#logs-status", Static)
        # A hint of several lines (the FAQ's NixOS lines) keeps its indentation: no re-wrapping.
        line.update(Text(text, no_wrap="\n" in text, overflow="ellipsis"))
        line.display = bool(text)

    def _stop_following(self) -> None:
        if self._following is not None:
            self._following.close()
            self._following = None

    def _reload(self) -> None:
        self.generation += 1
        self._stop_following()
        self._title()
        self._say("reading…")
        self._load(self.generation, self.filters)

    def _query(self, filters: LogFilters) -> LogQuery:
        units: tuple[str, ...] = ()
        if not filters.guest:
            units = (filters.unit,) if filters.unit else vm_units(self.vm.name)
        return LogQuery(
            units=units,
            since=filters.since,
            priority=PRIORITIES[filters.priority],
            grep=filters.grep,
            lines=FIRST_LINES,
        )

    @work(thread=True, exclusive=True, group="logs-load")
    def _load(self, generation: int, filters: LogFilters) -> None:
        try:
            query = self._query(filters).checked()
        except QueryError as exc:
            self.app.call_from_thread(self._loaded, generation, [], f"search: {exc}", None)
            return
        opened = self.source.open(
            self.vm,
            query,
            filters.guest,
            lambda batch: self.post_message(self.Batch(generation, batch)),
            lambda why: self.post_message(self.Ended(generation, why)),
        )
        if opened.since_usec is not None:
            self.boot_start_usec = opened.since_usec
        self.app.call_from_thread(
            self._loaded, generation, opened.lines, opened.status, opened.following
        )

    def _loaded(
        self,
        generation: int,
        lines: list[LogLine],
        status: str,
        following: Following | None,
    ) -> None:
        if generation != self.generation or not self.is_mounted:
            if following is not None:
                following.close()
            return
        self.view.show(lines)
        if not lines and not status:
            status = "no lines match"
        self._say(status)
        if following is not None:
            self._following = following
            following.start()
        self.loaded += 1
        self.shown_generation = generation

    @property
    def settled(self) -> bool:
        """What is shown is what the current filters asked for."""
        return self.shown_generation == self.generation

    @on(Batch)
    def _batch(self, message: Batch) -> None:
        if message.generation == self.generation:
            if self.status == "no lines match":
                self._say("")
            self.view.add(message.lines)

    @on(Ended)
    def _ended(self, message: Ended) -> None:
        if message.generation == self.generation and message.why:
            self._say(f"not following: {message.why}")

    # --- keys ------------------------------------------------------------------------------

    def _set(self, **changes: object) -> None:
        self.filters = replace(self.filters, **changes)  # type: ignore[arg-type]
        self._reload()

    def action_back(self) -> None:
        grep = self.query_one("#logs-grep", Input)
        if grep.has_class("shown"):
            grep.remove_class("shown")
            self.view.focus()
            return
        self.app.pop_screen()

    def action_cycle_unit(self) -> None:
        if self.filters.guest:
            self.notify("The guest journal has no unit filter.", severity="warning")
            return
        choices: list[str | None] = [None, *vm_units(self.vm.name)]
        self._set(unit=choices[(choices.index(self.filters.unit) + 1) % len(choices)])

    def action_cycle_priority(self) -> None:
        now = PRIORITY_CYCLE.index(self.filters.priority)
        self._set(priority=PRIORITY_CYCLE[(now + 1) % len(PRIORITY_CYCLE)])

    def action_cycle_since(self) -> None:
        now = SINCE_CYCLE.index(self.filters.since)
        self._set(since=SINCE_CYCLE[(now + 1) % len(SINCE_CYCLE)])

    def action_toggle_source(self) -> None:
        self._set(guest=not self.filters.guest, unit=None)

    def action_toggle_wrap(self) -> None:
        self.filters = replace(self.filters, wrap=not self.filters.wrap)
        self.view.set_wrap(self.filters.wrap)

    def action_top(self) -> None:
        self.view.scroll_home(animate=False)

    def action_bottom(self) -> None:
        self.view.scroll_end(animate=False)

    def action_copy(self) -> None:
        text = self.view.plain_text()
        if not text:
            self.notify("Nothing to copy.", severity="warning")
            return
        self.app.copy_to_clipboard(text)
        self.notify(f"Copied {text.count(chr(10)) + 1} lines (OSC 52).")

    def action_grep(self) -> None:
        grep = self.query_one("#logs-grep", Input)
        grep.value = self.filters.grep
        grep.add_class("shown")
        grep.focus()

    @on(Input.Submitted, "#logs-grep")
    def _grep_submitted(self, event: Input.Submitted) -> None:
        event.input.remove_class("shown")
        self.view.focus()
        self._set(grep=event.value)
