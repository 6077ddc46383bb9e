"""Component styles worked out once per CSS application, for widgets that ask per line.

DataTable asks ``get_component_styles(...).rich_style`` and its own ``rich_style`` for every
line it renders (the header style, the row style, the base style), and each ask builds a
styles object and walks the widget's ancestors.
Textual replaces a widget's component styles objects whenever CSS is applied to it again
(theme, focus, hover, classes, of it or an ancestor), so an answer kept while those objects
are the same ones stays right; the same rule as ``levels.level_style``.
"""

from __future__ import annotations

from typing import Any

from rich.style import Style
from textual.css.styles import RenderStyles


class _KeptRenderStyles(RenderStyles):
    """A component styles object whose Rich style is worked out at the first ask."""

    _kept: Style | None = None

    @property
    def rich_style(self) -> Style:
        if self._kept is None:
            self._kept = super().rich_style
        return self._kept


def _same(kept: tuple[Any, ...], now: tuple[Any, ...]) -> bool:
    """The very same component styles objects as when the answer was kept."""
    return len(kept) == len(now) and all(a is b for a, b in zip(kept, now, strict=True))


class KeptComponentStyles:
    """Mixin for a Textual widget: ``get_component_styles`` answers from a memo while the
    widget's component styles are the same objects."""

    _component_styles: dict[str, RenderStyles]

    @property
    def rich_style(self) -> Style:
        # The component styles are made anew with every application of CSS to the widget,
        # which also happens whenever an ancestor's CSS changes (Textual restyles the subtree).
        components = tuple(self._component_styles.values())
        kept = self.__dict__.get("_kept_rich_style")
        if kept is not None and _same(kept[0], components):
            return kept[1]
        style: Style = super().rich_style  # type: ignore[misc]
        if components:
            self.__dict__["_kept_rich_style"] = (components, style)
        return style

    def get_component_styles(self, *names: str) -> RenderStyles:
        components = tuple(self._component_styles.get(name) for name in names)
        memo: dict[tuple[str, ...], tuple[tuple[Any, ...], RenderStyles]]
        memo = self.__dict__.setdefault("_kept_component_styles", {})
        kept = memo.get(names)
        if kept is not None and _same(kept[0], components):
            return kept[1]
        styles = super().get_component_styles(*names)  # type: ignore[misc]
        frozen = _KeptRenderStyles.__new__(_KeptRenderStyles)
        frozen.__dict__.update(styles.__dict__)
        if all(c is not None for c in components):
            memo[names] = (components, frozen)
        return frozen
