"""A widget that shows a Rich renderable and repaints only the lines that changed.

A monitor redraws every second over SSH: repainting a whole 20-line panel because one number
in it moved costs bytes on the wire and CPU in the compositor. ``LinesWidget`` renders its
renderable to lines itself (Textual's line API), compares them with what is on screen, and
refreshes just the changed lines; a change in the number of lines asks for a relayout
(its height is ``auto``).
"""

from __future__ import annotations

from rich.console import RenderableType
from rich.segment import Segment
from rich.text import Text
from textual.geometry import Region, Size
from textual.strip import Strip
from textual.widget import Widget

from tui.widgets.kept_styles import KeptStyles


class LinesWidget(KeptStyles, Widget):
    DEFAULT_CSS = """
    LinesWidget {
        height: auto;
    }
    """

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.rendered: RenderableType = Text("")
        self._lines: list[list[Segment]] = []
        self._width = -1

    def set_renderable(self, renderable: RenderableType) -> None:
        """Show RENDERABLE, repainting only the lines that differ from what is shown."""
        self.rendered = renderable
        self.update_lines()

    def update_lines(self) -> None:
        """Render again (``_render``) and repaint the lines that changed."""
        width = self._width if self._width > 0 else self.size.width
        if not self.is_mounted or width <= 0:
            self._width = -1  # rendered at the next layout
            self.refresh(layout=True)
            return
        old = self._lines
        new = self._render(width)
        self._lines = new
        self._width = width
        if len(new) != len(old):
            self.refresh(layout=True)
            return
        for y, (a, b) in enumerate(zip(old, new, strict=True)):
            if a != b:
                self.refresh(Region(0, y, max(width, self.size.width), 1))

    def _render(self, width: int) -> list[list[Segment]]:
        """The lines to show at WIDTH (subclasses may render their own way)."""
        console = self.app.console
        options = console.options.update(width=width, height=None, highlight=False)
        return console.render_lines(self.rendered, options, pad=False)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        if width != self._width:
            self._lines = self._render(width) if width > 0 else []
            self._width = width
        return len(self._lines)

    def on_resize(self) -> None:
        if self.size.width != self._width and self.size.width > 0:
            self._width = self.size.width
            self._lines = self._render(self._width)
            self.refresh(layout=True)

    @property
    def plain_lines(self) -> list[str]:
        """What is shown, as plain text (for tests and logs)."""
        return ["".join(seg.text for seg in line).rstrip() for line in self._lines]

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y >= len(self._lines):
            return Strip.blank(width, self.rich_style)
        return Strip(self._lines[y]).adjust_cell_length(width).apply_style(self.rich_style)
