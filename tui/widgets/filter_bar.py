"""The filter line above the table: `/` opens it, typing filters by name or state, Esc clears."""

from __future__ import annotations

from textual.binding import Binding
from textual.message import Message
from textual.widgets import Input


class FilterBar(Input):
    DEFAULT_CSS = """
    FilterBar {
        display: none;
        height: 1;
        border: none;
        padding: 0 1;
        background: $boost;
    }
    FilterBar.-shown {
        display: block;
    }
    FilterBar:focus {
        border: none;
        background: $boost;
    }
    """
    BINDINGS = [
        Binding("escape", "clear", "Clear filter", id="filter_clear"),
        Binding("enter", "done", "Keep filter", id="filter_done"),
    ]

    class Closed(Message):
        """The bar was left (Enter keeps the filter, Esc clears it)."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__(
            placeholder="filter by name or state (Enter keeps, Esc clears)",
            **kwargs,  # type: ignore[arg-type]
        )

    def open(self) -> None:
        self.add_class("-shown")
        self.focus()

    def action_clear(self) -> None:
        self.value = ""
        self.remove_class("-shown")
        self.post_message(self.Closed())

    def action_done(self) -> None:
        if not self.value:
            self.remove_class("-shown")
        self.post_message(self.Closed())
