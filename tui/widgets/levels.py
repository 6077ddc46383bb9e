"""Theme-aware colours for Rich text inside widgets: one component class per level.

A widget lists ``level_classes("my-widget")`` in ``COMPONENT_CLASSES`` and ``level_css("MyWidget",
"my-widget")`` in its ``DEFAULT_CSS``; ``level_style(widget, prefix, level)`` then gives the Rich
style for that level in the current theme. Every level also has a text marker wherever it is
used, so nothing depends on colour alone.
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget

from tui.widgets.kept_styles import KeptStyles

LEVELS = {
    "ok": "color: $text-success;",
    "warn": "color: $text-warning;",
    "error": "color: $text-error; text-style: bold;",
    "muted": "color: $text-muted;",
    "accent": "color: $text-accent;",
    "bold": "text-style: bold;",
}


def level_classes(prefix: str) -> set[str]:
    return {f"{prefix}--{level}" for level in LEVELS}


def level_css(widget: str, prefix: str) -> str:
    return "\n".join(
        f"{widget} > .{prefix}--{level} {{ {rule} }}" for level, rule in LEVELS.items()
    )


def level_style(widget: Widget, prefix: str, level: str | None) -> Style:
    if not level:
        return Style.null()
    name = f"{prefix}--{level}"
    # Textual forgets its own rich-style cache at every repaint of the widget, and these
    # widgets repaint every poll: a KeptStyles widget keeps the answer until its styles are
    # updated (theme, focus, hover, classes, of it or an ancestor).
    memo: dict[str, Style] | None = None
    if isinstance(widget, KeptStyles):
        memo = widget.__dict__.setdefault("_level_styles", {})
        kept = memo.get(name)
        if kept is not None:
            return kept
    # The full style has colours with alpha ($text-muted) blended over the widget's own
    # background; keep its colour and attributes, not its background (cells sit on zebra
    # stripes and the cursor).
    full = widget.get_component_rich_style(name)
    style = Style(color=full.color, bold=full.bold, dim=full.dim, italic=full.italic)
    if memo is not None:
        memo[name] = style
    return style
