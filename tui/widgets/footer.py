"""The key footer: Textual's ``Footer``, recomposed only when the keys it shows changed."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.reactive import Reactive
from textual.screen import Screen
from textual.widgets import Footer


class KeysFooter(Footer):
    """Textual's ``Footer`` recomposes (every key mounted and styled anew) at each
    ``refresh_bindings`` of its screen: the focus set, the screen resumed, the app focused...
    At start-up that is five recomposes of twenty keys, at 2000 VMs about 0.2 s of CPU before
    the first row, most of them showing the same keys. This one passes a change on only when
    what it would show (or whether it would recompose at all) differs from the last one
    passed on, and not while a recompose it asked for is still to come."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._passed: tuple[Any, ...] | None = None
        self._queued = False  # a recompose is asked for and has not begun

    def bindings_changed(self, screen: Screen) -> None:
        shown = (
            screen.app.app_focus,  # Footer leaves the keys as they are while unfocused
            self.is_attached and screen is self.screen,
            tuple(
                (key, active.binding, active.enabled, active.tooltip)
                for key, active in screen.active_bindings.items()
            ),
        )
        if shown == self._passed:
            return
        self._passed = shown
        recomposes = shown[0] and shown[1]
        if recomposes and self._queued:
            return  # the recompose on its way reads the keys as they are by then
        self._queued = recomposes
        super().bindings_changed(screen)

    def compose(self) -> ComposeResult:
        """Textual's keys, each bound to the footer's ``compact`` given that value before it
        is mounted. A key is made compact and bound to the footer's value as it mounts: each
        was restyled twice (a quarter of the first frame's CPU with twenty keys), to end as it
        began. The palette's key is not bound (it stays compact): left as it is."""
        for widget in super().compose():
            compact = getattr(type(widget), "compact", None)
            if isinstance(compact, Reactive) and not widget.has_class("-command-palette"):
                widget.set_reactive(compact, self.compact)
            yield widget

    async def recompose(self) -> None:
        self._queued = False
        await super().recompose()
