"""`?`: every key binding, read from the bindings themselves (keymap applied), by screen.

Every text here goes in as ``Text`` (never markup): "[keys]" is a word, not a style.
"""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from tui.bindings import BindingInfo
from tui.widgets.outside import outside_text


class HelpScreen(ModalScreen[None]):
    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen > VerticalScroll {
        width: 84;
        max-width: 100%;
        height: auto;
        max-height: 90%;
        border: thick $primary;
        background: $surface;
        padding: 0 1;
    }
    HelpScreen #help-title {
        text-style: bold;
        color: $text-accent;
        padding-bottom: 1;
    }
    HelpScreen #help-footer {
        color: $text-muted;
        padding-top: 1;
    }
    """
    BINDINGS = [
        Binding("escape", "close", "Close", id="help_close"),
        Binding("q", "close", "Close", id="help_close_q", show=False),
        Binding("question_mark", "close", "Close", id="help_close_help", show=False),
    ]

    def __init__(self, bindings: list[BindingInfo], sources: tuple[str, ...] = ()) -> None:
        super().__init__()
        self.bindings = bindings
        self.sources = sources

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("microvm-tui: keys"), id="help-title")
            yield Static(self._table(), id="help-table")
            footer = (
                "Remap any key by its id in the config file's [keys] table, "
                'e.g. refresh = "f5". Mouse: click a row to select it, a column header to sort, '
                "a tab to open it."
            )
            if self.sources:
                footer += "\nConfig read from: " + ", ".join(self.sources)
            yield Static(outside_text(footer), id="help-footer")  # paths: never markup

    def _table(self) -> Table:
        table = Table(box=None, show_header=True, padding=(0, 2, 0, 0), expand=True)
        table.add_column(Text("key"), no_wrap=True, style="bold")
        table.add_column(Text("what it does"))
        table.add_column(Text("id (for [keys])"), style="dim")
        section = None
        for b in self.bindings:
            if b.section != section:
                if section is not None:
                    table.add_row("", "", "")
                table.add_row(Text(b.section, style="underline"), "", "")
                section = b.section
            table.add_row(Text(", ".join(b.keys)), Text(b.description), Text(b.id or ""))
        return table

    def action_close(self) -> None:
        self.dismiss()
