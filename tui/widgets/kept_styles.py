"""Styles worked out once per CSS application, for widgets that ask per line.

DataTable asks ``get_component_styles(...).rich_style`` and its own ``rich_style`` for every
line it renders (the header style, the row style, the base style), and each ask builds a
styles object and walks the widget's ancestors; ``levels.level_style`` asks per cell. Textual
forgets its own cache at every repaint, and these widgets repaint every poll. Here what was
worked out is kept until Textual applies CSS to the widget again (theme, focus, hover,
classes, of it or an ancestor), which it tells the widget through ``notify_style_update``:
the hook Textual's own widgets (Log, DataTable) clear their caches in.
"""

from __future__ import annotations

from rich.style import Style
from textual.css.styles import RenderStyles

# The memos a KeptStyles widget holds in its __dict__ (tests drop them to compare).
MEMOS = ("_kept_rich_style", "_kept_component_styles", "_level_styles")


class KeptStyles:
    """Mixin for a Textual widget: its style memos (``levels.level_style``'s and
    ``KeptComponentStyles``') live until its styles are updated."""

    def notify_style_update(self) -> None:
        for memo in MEMOS:
            self.__dict__.pop(memo, None)
        super().notify_style_update()  # type: ignore[misc]


class _KeptRenderStyles(RenderStyles):
    """A component styles object whose Rich style is worked out at the first ask."""

    _kept: Style | None = None

    @property
    def rich_style(self) -> Style:
        if self._kept is None:
            self._kept = super().rich_style
        return self._kept


class KeptComponentStyles(KeptStyles):
    """Mixin for a Textual widget: ``rich_style`` and ``get_component_styles`` answer from a
    memo until the widget's styles are updated."""

    @property
    def rich_style(self) -> Style:
        kept: Style | None = self.__dict__.get("_kept_rich_style")
        if kept is None:
            kept = self.__dict__["_kept_rich_style"] = super().rich_style  # type: ignore[misc]
        return kept

    def get_component_styles(self, *names: str) -> RenderStyles:
        memo: dict[tuple[str, ...], RenderStyles]
        memo = self.__dict__.setdefault("_kept_component_styles", {})
        kept = memo.get(names)
        if kept is None:
            styles: RenderStyles = super().get_component_styles(*names)  # type: ignore[misc]
            kept = memo[names] = _KeptRenderStyles(styles.node, styles.base, styles.inline)
        return kept
