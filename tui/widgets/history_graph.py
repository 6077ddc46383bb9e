"""A small multi-row bar graph of a series (newest on the right), drawn with block characters.

Gaps (``None``: the value could not be read at that poll) are drawn as a dim dot on the base
line, so a missing reading never looks like a zero.
"""

from __future__ import annotations

from collections.abc import Sequence

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from tui.widgets.format import BLOCKS
from tui.widgets.levels import level_classes, level_css, level_style

PREFIX = "history-graph"
FULL = "█"


class HistoryGraph(Widget):
    DEFAULT_CSS = """
    HistoryGraph {
        height: 5;
        width: 1fr;
    }
    """ + level_css("HistoryGraph", PREFIX)
    COMPONENT_CLASSES = level_classes(PREFIX)

    values: reactive[tuple[float | None, ...]] = reactive(tuple, layout=False)
    top: reactive[float] = reactive(100.0)

    def __init__(self, label_fn=None, **kwargs: object) -> None:  # type: ignore[no-untyped-def]
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.label_fn = label_fn or (lambda v: f"{v:.0f}")

    def set_data(self, values: Sequence[float | None], top: float) -> None:
        self.top = max(top, 1e-9)
        self.values = tuple(values)

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        axis = 8
        cols = max(1, width - axis)
        data = list(self.values)[-cols:]
        data = [None] * (cols - len(data)) + data
        present = [i >= cols - len(self.values) for i in range(cols)]
        style = level_style(self, PREFIX, "accent")
        muted = level_style(self, PREFIX, "muted")
        rows = height
        text = Text(no_wrap=True, end="")
        for r in range(rows):  # r = 0 is the top row
            level_from_bottom = rows - 1 - r
            if r == 0:
                label = self.label_fn(self.top)
            elif r == rows - 1:
                label = self.label_fn(0)
            else:
                label = ""
            text.append(f"{label:>{axis - 1}} ", muted)
            line = []
            for i, v in enumerate(data):
                if v is None:
                    line.append(("·" if present[i] and level_from_bottom == 0 else " ", muted))
                    continue
                eighths = round(max(0.0, min(1.0, v / self.top)) * rows * 8)
                full, part = divmod(eighths, 8)
                if level_from_bottom < full:
                    line.append((FULL, style))
                elif level_from_bottom == full and part:
                    line.append((BLOCKS[part - 1], style))
                elif level_from_bottom == 0 and eighths == 0:
                    line.append(("▁", muted))  # a true zero: a thin base line
                else:
                    line.append((" ", style))
            for ch, st in line:
                text.append(ch, st)
            if r != rows - 1:
                text.append("\n")
        return text
