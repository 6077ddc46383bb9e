"""Theme-aware colours for Rich text inside widgets: one component class per level.

A widget lists ``level_classes("my-widget")`` in ``COMPONENT_CLASSES`` and ``level_css("MyWidget",
"my-widget")`` in its ``DEFAULT_CSS``; ``level_style(widget, prefix, level)`` then gives the Rich
style for that level in the current theme. Every level also has a text marker wherever it is
used, so nothing depends on colour alone.
"""

from __future__ import annotations

from rich.style import Style
from textual.widget import Widget

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
    # widgets repaint every poll. The component's styles object is replaced whenever CSS is
    # applied to the widget again (theme, focus, hover, classes, of it or an ancestor): the
    # style worked out for that object stays right as long as the object is the same.
    component = getattr(widget, "_component_styles", {}).get(name)
    memo: dict[str, tuple[object, Style]] = widget.__dict__.setdefault("_level_styles", {})
    kept = memo.get(name)
    if kept is not None and component is not None and kept[0] is component:
        return kept[1]
    # The full style has colours with alpha ($text-muted) blended over the widget's own
    # background; keep its colour and attributes, not its background (cells sit on zebra
    # stripes and the cursor).
    full = widget.get_component_rich_style(name)
    style = Style(color=full.color, bold=full.bold, dim=full.dim, italic=full.italic)
    if component is not None:
        memo[name] = (component, style)
    return style
