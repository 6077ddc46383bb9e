"""A fixed-height text widget that repaints only when its text changed, without a relayout.

``Static.update`` asks for a layout pass each time (its size may change); a status line's size
never does, and a layout pass of the whole screen every poll costs real CPU on a monitor that
runs all day.
"""

from __future__ import annotations

from rich.text import Text
from textual.widget import Widget


class TextLine(Widget):
    DEFAULT_CSS = """
    TextLine {
        height: 1;
    }
    """

    def __init__(self, text: Text | str = "", **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._text = Text(text) if isinstance(text, str) else text

    @property
    def text(self) -> Text:
        return self._text

    def set_text(self, text: Text | str) -> bool:
        """Show TEXT; False (and no repaint) when it is what is shown already."""
        new = Text(text) if isinstance(text, str) else text
        if new == self._text and new.style == self._text.style:
            return False
        self._text = new
        self.refresh()
        return True

    def render(self) -> Text:
        return self._text
