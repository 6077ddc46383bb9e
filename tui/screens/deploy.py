"""The deploy dialog: where the runner comes from (the cache, whether nix checks signatures),
and a line for the store path; empty takes the latest build from ``[deploy] hydra_url``.

The typed path is checked before the dialog closes (a store path, or empty with a URL set);
the screen's result is the path ("" for the latest build), or None when cancelled.
"""

from __future__ import annotations

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, Label, Static

from tui.host.actions.deploy import store_path_problem
from tui.screens.confirm import ConfirmScreen
from tui.widgets.outside import outside_text


class DeployScreen(ConfirmScreen):
    """A ConfirmScreen with a store-path line; dismissed with the path, "" or None."""

    def __init__(self, title: str, body: Text, *, has_url: bool, **kwargs: object) -> None:
        super().__init__(title, body, confirm_label="Deploy", **kwargs)  # type: ignore[arg-type]
        self.has_url = has_url

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = outside_text(self.title_text, newlines=False)
            yield Static(self.body, id="body")
            yield Label(
                "Store path (empty: the latest build):" if self.has_url else "Store path:",
                id="typed-label",
            )
            yield Input(placeholder="/nix/store/…-microvm-…", id="store-path")
            yield Static("", id="typed-error")
            with Horizontal(id="buttons"):
                yield Button("Deploy", id="confirm", variant="primary")
                yield Button(self.cancel_label, id="cancel")

    def on_mount(self, event: events.Mount) -> None:
        event.prevent_default()  # not ConfirmScreen's: the path line has the focus
        self.query_one("#store-path", Input).focus()

    @property
    def store_path(self) -> str:
        return self.query_one("#store-path", Input).value.strip()

    def problem(self) -> str | None:
        path = self.store_path
        if not path:
            return None if self.has_url else "Type a store path: [deploy] hydra_url is not set."
        return store_path_problem(path)

    @on(Input.Changed, "#store-path")
    def _path_changed(self) -> None:
        self.query_one("#typed-error", Static).update("")

    @on(Input.Submitted, "#store-path")
    def _path_submitted(self) -> None:
        self.action_confirm()

    def action_confirm(self) -> None:
        problem = self.problem()
        if problem:
            self.query_one("#typed-error", Static).update(outside_text(problem))
            return
        self.dismiss(self.store_path)  # type: ignore[arg-type]

    def action_cancel(self) -> None:
        self.dismiss(None)  # type: ignore[arg-type]
