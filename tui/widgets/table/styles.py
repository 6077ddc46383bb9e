"""The table's component classes and CSS: Textual's DataTable's, so the table looks the same."""

from __future__ import annotations

COMPONENT_CLASSES = {
    "datatable--cursor",
    "datatable--hover",
    "datatable--fixed",
    "datatable--fixed-cursor",
    "datatable--header",
    "datatable--header-cursor",
    "datatable--header-hover",
    "datatable--odd-row",
    "datatable--even-row",
}

DEFAULT_CSS = """
RowTable {
    background: $surface;
    color: $foreground;
    height: auto;
    max-height: 100%;
    &.datatable--fixed-cursor {
        background: $block-cursor-blurred-background;
    }

    &:focus {
        background-tint: $foreground 5%;
        & > .datatable--cursor {
            background: $block-cursor-background;
            color: $block-cursor-foreground;
            text-style: $block-cursor-text-style;
        }

        & > .datatable--header {
            background-tint: $foreground 5%;
        }

        & > .datatable--fixed-cursor {
            color: $block-cursor-foreground;
            background: $block-cursor-background;
        }
    }

    &:dark {
        & > .datatable--even-row {
            background: $surface-darken-1 40%;
        }
    }

    & > .datatable--header {
        text-style: bold;
        background: $panel;
        color: $foreground;
    }
    &:ansi > .datatable--header {
        background: ansi_bright_blue;
        color: ansi_default;
    }

    & > .datatable--fixed {
        background: $secondary-muted;
        color: $foreground;
    }

    & > .datatable--even-row {
        background: $surface-lighten-1 50%;
    }

    & > .datatable--cursor {
        background: $block-cursor-blurred-background;
        color: $block-cursor-blurred-foreground;
        text-style: $block-cursor-blurred-text-style;
    }

    & > .datatable--fixed-cursor {
        background: $block-cursor-blurred-background;
        color: $foreground;
    }

    & > .datatable--header-cursor {
        background: $accent-darken-1;
        color: $foreground;
    }

    & > .datatable--header-hover {
        background: $accent 30%;
    }

    & > .datatable--hover {
        background: $block-hover-background;
    }
}
"""
