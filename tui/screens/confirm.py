"""A confirmation for one state change: what will happen, in full, before anything runs.

Destructive changes (force stop, delete) ask for the VM's name to be typed: any other text
is refused and the dialog stays open. ``details`` (e.g. `nix store diff-closures` output) is
shown in a scrollable box. The screen's result is True only when the admin confirmed.
"""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from tui.widgets.outside import outside_text, sanitise


def _text(value: str | Text) -> Content:
    # Plain text, never markup: names, paths and nix output may contain brackets.
    return outside_text(value)


class ConfirmScreen(ModalScreen[bool]):
    DEFAULT_CSS = """
    ConfirmScreen {
        align: center middle;
    }
    ConfirmScreen > #dialog {
        width: 88;
        max-width: 96%;
        height: auto;
        max-height: 92%;
        padding: 1 2;
        background: $surface;
        border: thick $primary;
        border-title-style: bold;
    }
    ConfirmScreen.-danger > #dialog {
        border: thick $error;
    }
    ConfirmScreen #body {
        height: auto;
    }
    ConfirmScreen #details {
        height: auto;
        max-height: 18;
        margin-top: 1;
        border: round $primary-darken-2;
        border-title-color: $text-accent;
    }
    ConfirmScreen #details-text {
        width: auto;
    }
    ConfirmScreen #typed-label {
        margin-top: 1;
    }
    ConfirmScreen #typed-error {
        color: $error;
        height: auto;
    }
    ConfirmScreen #buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    ConfirmScreen #buttons Button {
        margin-left: 2;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        title: str,
        body: str | Text,
        *,
        confirm_label: str = "OK",
        cancel_label: str = "Cancel",
        typed_name: str | None = None,
        details: str | Text | None = None,
        details_title: str = "",
        danger: bool = False,
        name: str | None = None,
        id: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes="-danger" if danger else None)
        self.title_text = title
        self.body = _text(body)
        self.confirm_label = confirm_label
        self.cancel_label = cancel_label
        self.typed_name = typed_name
        self.details = None if details is None else _text(details)
        self.details_title = details_title
        self.danger = danger

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = outside_text(self.title_text, newlines=False)
            yield Static(self.body, id="body")
            if self.details is not None:
                with VerticalScroll(id="details") as box:
                    box.border_title = outside_text(self.details_title, newlines=False)
                    yield Static(self.details, id="details-text")
            if self.typed_name is not None:
                yield Label(
                    Text.assemble("Type ", (sanitise(self.typed_name), "bold"), " to confirm:"),
                    id="typed-label",
                )
                yield Input(placeholder=self.typed_name, id="typed")
                yield Static("", id="typed-error")
            with Horizontal(id="buttons"):
                yield Button(
                    self.confirm_label,
                    id="confirm",
                    variant="error" if self.danger else "primary",
                    disabled=self.typed_name is not None,
                )
                yield Button(self.cancel_label, id="cancel")

    def on_mount(self) -> None:
        if self.typed_name is not None:
            self.query_one("#typed", Input).focus()
        else:
            self.query_one("#confirm", Button).focus()

    @property
    def typed_ok(self) -> bool:
        if self.typed_name is None:
            return True
        return self.query_one("#typed", Input).value == self.typed_name

    @on(Input.Changed, "#typed")
    def _typed_changed(self) -> None:
        self.query_one("#confirm", Button).disabled = not self.typed_ok
        self.query_one("#typed-error", Static).update("")

    @on(Input.Submitted, "#typed")
    def _typed_submitted(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#confirm")
    def _confirm_pressed(self) -> None:
        self.action_confirm()

    @on(Button.Pressed, "#cancel")
    def _cancel_pressed(self) -> None:
        self.action_cancel()

    def action_confirm(self) -> None:
        if not self.typed_ok:
            typed = self.query_one("#typed", Input).value
            shown = sanitise(typed)
            error = (
                "Nothing typed: nothing was done."
                if not typed
                else f"'{shown}' is not '{sanitise(self.typed_name)}': nothing was done."
            )
            self.query_one("#typed-error", Static).update(Text(error))
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(False)
