"""The terminal's hint bar: status (or read-only reason) on the left, key hints on the right.

Every string from outside (status, reason, notice, key names from the settings) passes
:func:`~tui.widgets.terminal.render.safe_text` before it becomes a Segment.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tui.widgets.terminal.render import safe_text


@dataclass(frozen=True)
class HintState:
    """What the hint bar shows; equal states draw the same strip (the cache key)."""

    width: int
    read_only: bool
    read_only_reason: str
    status: str
    scroll: int
    history: int  # lines of scrollback, shown while scrolled back
    notice: str
    detach_key: str
    size_key: str | None  # label of the size key, None when there is none
    search_key: str | None  # label of the search key, None when there is none
    style_generation: int


def render_hint(state: HintState, base: Style, part: Callable[[str], Style]) -> Strip:
    """The bar as one strip of ``state.width`` cells; ``part(name)`` is a component class's
    style over ``base``.

    Priority when narrow: the detach hint, then the status, then the other hints.
    """
    width = state.width
    left: list[Segment] = []
    if state.read_only:
        reason = safe_text(state.read_only_reason)
        text = f" read-only: {reason} " if reason else " read-only "
        left.append(Segment(text, part("terminal--hint-read-only")))
    elif state.status:
        left.append(Segment(f" {safe_text(state.status)}", part("terminal--hint-status")))
    if state.scroll:
        scrolled = f" [scrollback -{state.scroll}/{state.history}]"
        left.append(Segment(scrolled, part("terminal--hint-scroll")))
    if state.notice:
        left.append(Segment(f" {safe_text(state.notice)}", base))
    left_strip = Strip(left)

    key_style = part("terminal--hint-key")
    hints = [(safe_text(state.detach_key, 32), "detach")]
    if state.size_key and not state.read_only:
        hints.append((safe_text(state.size_key, 32), "send size"))
    hints.append(("shift+pgup", "scroll"))
    if state.search_key:
        hints.append((safe_text(state.search_key, 32), "search"))
    right: list[Segment] = []
    for number, (key, label) in enumerate(hints):
        candidate = [
            Segment(" · " if right else " ", base),
            Segment(key, key_style),
            Segment(f" {label}", base),
        ]
        needed = Strip(right + candidate).cell_length + 1
        if number and needed + left_strip.cell_length > width:
            break
        right += candidate
    if right:
        right.append(Segment(" ", base))
    right_strip = Strip(right)

    room = max(0, width - right_strip.cell_length)
    if left_strip.cell_length > room:
        left_strip = left_strip.crop(0, max(0, room - 1))
        left_strip = Strip.join([left_strip, Strip([Segment("…", base)])])
    left_strip = left_strip.adjust_cell_length(room, base)
    return Strip.join([left_strip, right_strip]).adjust_cell_length(width, base)
