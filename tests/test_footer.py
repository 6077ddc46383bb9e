"""The key footer is recomposed only when the keys it shows change (Textual's own recomposes
at every ``refresh_bindings``: at start-up five times the same twenty keys)."""

from __future__ import annotations

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.dom import DOMNode
from textual.widgets import Footer

from tests.monitor_support import SIZE, make_app, replay, until
from tui.widgets.footer import KeysFooter


async def test_the_footer_keeps_its_keys_until_they_change() -> None:
    app = make_app(replay())
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.polls >= 1)
        footer = app.main_screen.query_one(KeysFooter)
        await until(pilot, lambda: footer.query("FooterKey"))
        await pilot.pause()
        keys = list(footer.query("FooterKey"))
        assert any(k.key == "r" for k in keys)  # refresh
        for _ in range(3):  # nothing changed: the same key widgets stay
            app.main_screen.refresh_bindings()
            await pilot.pause()
        assert list(footer.query("FooterKey")) == keys
        app.update_keymap({"refresh": "f5"})  # a key changed: the footer shows it
        await until(pilot, lambda: any(k.key == "f5" for k in footer.query("FooterKey")))
        assert not any(k.key == "r" for k in footer.query("FooterKey"))


class _CountingApp(App[None]):
    """Textual's Footer or ours, with two keys; counts the style updates of footer keys."""

    BINDINGS = [Binding("a", "alpha", "Alpha"), Binding("b", "beta", "Beta")]

    def __init__(self, footer: type[Footer]) -> None:
        super().__init__()
        self.footer = footer
        self.key_restyles = 0

    def compose(self) -> ComposeResult:
        yield self.footer()

    def update_styles(self, node: DOMNode, animate: bool = True) -> None:
        if type(node).__name__ == "FooterKey":
            self.key_restyles += 1
        super().update_styles(node, animate)


async def _keys_of(footer: type[Footer]) -> tuple[list[tuple[str, list[str], str]], int]:
    app = _CountingApp(footer)
    async with app.run_test() as pilot:
        shown = app.query_one(footer)
        await until(pilot, lambda: {"a", "b"} <= {k.key for k in shown.query("FooterKey")})  # type: ignore[attr-defined]
        await pilot.pause()
        keys = [(k.key, sorted(k.classes), k.render().plain) for k in shown.children]  # type: ignore[attr-defined]
        return keys, app.key_restyles


async def test_the_footers_keys_look_as_textuals_with_fewer_restyles() -> None:
    """Each bound key is given the footer's ``compact`` before it mounts: Textual's Footer
    makes it compact and then not, a restyle each way."""
    ours, ours_restyles = await _keys_of(KeysFooter)
    textuals, textuals_restyles = await _keys_of(Footer)
    assert ours == textuals
    assert ours_restyles < textuals_restyles
