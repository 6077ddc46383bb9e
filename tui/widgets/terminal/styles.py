"""The terminal pane's component classes and CSS: the hint bar's parts, the selection, the
search match and the docked search box."""

from __future__ import annotations

COMPONENT_CLASSES = {
    "terminal--hint",
    "terminal--hint-key",
    "terminal--hint-status",
    "terminal--hint-read-only",
    "terminal--hint-scroll",
    "terminal--selection",
    "terminal--search-match",
}

DEFAULT_CSS = """
TerminalWidget {
    width: 1fr;
    height: 1fr;
    background: $background;
    color: $foreground;
}
TerminalWidget > .terminal--hint {
    background: $panel;
    color: $text-muted;
}
TerminalWidget > .terminal--hint-key {
    color: $text-accent;
    text-style: bold;
}
TerminalWidget > .terminal--hint-status {
    color: $foreground;
}
TerminalWidget > .terminal--hint-read-only {
    background: $warning-muted;
    color: $text-warning;
    text-style: bold;
}
TerminalWidget > .terminal--hint-scroll {
    color: $text-warning;
}
TerminalWidget > .terminal--selection {
    background: $primary;
    color: $text;
}
TerminalWidget > .terminal--search-match {
    background: $warning;
    color: $background;
}
TerminalWidget > #terminal-search, TerminalWidget > #terminal-search:focus {
    dock: bottom;
    height: 1;
    border: none;
    padding: 0 1;
    background: $panel;
    display: none;
}
TerminalWidget > #terminal-search.-open {
    display: block;
}
"""
