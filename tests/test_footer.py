"""The key footer is recomposed only when the keys it shows change (Textual's own recomposes
at every ``refresh_bindings``: at start-up five times the same twenty keys)."""

from __future__ import annotations

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
