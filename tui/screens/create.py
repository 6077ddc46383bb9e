"""Create a VM: its name and flake reference, checked as they are typed, before anything runs.

The dialog names what will happen (the installable that will be built and the state dir it
will become); its result is a ``CreateRequest`` or None.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Static

from tui.host.actions.operations import DEFAULT_FLAKE, flake_problem, runner_installable
from tui.host.actions.plan import name_taken
from tui.host.names import name_problem
from tui.widgets.outside import outside_text


@dataclass(frozen=True)
class CreateRequest:
    name: str
    flake: str
    start: bool


def _sentence(problem: str) -> str:
    return problem[0].upper() + problem[1:] + "."


def create_problem(
    name: str, flake: str, state_dir: Path, existing: Collection[str] = ()
) -> str | None:
    """Why NAME / FLAKE cannot be created in STATE_DIR, or None."""
    problem = name_problem(name)
    if problem:
        return _sentence(problem)
    if name in existing or name_taken(state_dir, name):
        return f"{state_dir / name} already exists: pick another name."
    problem = flake_problem(flake)
    if problem:
        return _sentence(problem)
    return None


class CreateScreen(ModalScreen[CreateRequest | None]):
    DEFAULT_CSS = """
    CreateScreen {
        align: center middle;
    }
    CreateScreen > #dialog {
        width: 88;
        max-width: 96%;
        height: auto;
        max-height: 96%;
        padding: 0 2;
        background: $surface;
        border: thick $primary;
        border-title-style: bold;
        overflow-y: auto;
    }
    CreateScreen #plan {
        height: auto;
        margin-top: 1;
        color: $text-muted;
    }
    CreateScreen #problem {
        height: auto;
        color: $error;
    }
    /* Textual's unchecked mark is $panel-darken-2 on $panel (colour 16 on 17): make the
       box visible either way and the checked one unmistakable. */
    CreateScreen #start > .toggle--button {
        color: $text-muted;
        background: $panel-lighten-2;
    }
    CreateScreen #start.-on > .toggle--button {
        color: $text-success;
        text-style: bold;
    }
    CreateScreen #buttons {
        height: auto;
        margin-top: 1;
        align-horizontal: right;
    }
    CreateScreen #buttons Button {
        margin-left: 2;
    }
    """
    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    def __init__(
        self,
        state_dir: Path,
        existing: Collection[str] = (),
        *,
        flake: str = DEFAULT_FLAKE,
        name: str = "",
        start: bool = False,
    ) -> None:
        super().__init__()
        self.state_dir = state_dir
        self.existing = frozenset(existing)
        self.initial_flake = flake
        self.initial_name = name
        self.initial_start = start

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog") as dialog:
            dialog.border_title = "Create a VM"
            yield Label("Name (the nixosConfigurations attribute of the flake):")
            yield Input(self.initial_name, placeholder="e.g. web2", id="name")
            yield Label("Flake reference:")
            yield Input(self.initial_flake, placeholder=DEFAULT_FLAKE, id="flake")
            yield Checkbox("Start it once it is created", self.initial_start, id="start")
            yield Static("", id="plan")
            yield Static("", id="problem")
            with Horizontal(id="buttons"):
                yield Button("Create", id="create", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#name", Input).focus()
        self._check()

    @property
    def request(self) -> CreateRequest:
        return CreateRequest(
            name=self.query_one("#name", Input).value.strip(),
            flake=self.query_one("#flake", Input).value.strip(),
            start=self.query_one("#start", Checkbox).value,
        )

    def problem(self) -> str | None:
        req = self.request
        return create_problem(req.name, req.flake, self.state_dir, self.existing)

    def _check(self) -> str | None:
        req = self.request
        problem = self.problem()
        plan = self.query_one("#plan", Static)
        if problem is None:
            text = Text()
            text.append("Builds ")
            text.append(runner_installable(req.flake, req.name), style="bold")
            text.append(f", then moves it into place as {self.state_dir / req.name}")
            text.append(" (nothing appears there unless the build succeeds)")
            text.append(", then starts microvm@" + req.name + ".service" if req.start else "")
            text.append(".")
            plan.update(outside_text(text))
        else:
            plan.update("")
        # An empty name is not an error yet: just not ready.
        shown = problem if req.name else None
        self.query_one("#problem", Static).update(outside_text(shown or ""))
        self.query_one("#create", Button).disabled = problem is not None
        return problem

    @on(Input.Changed)
    @on(Checkbox.Changed)
    def _changed(self) -> None:
        self._check()

    @on(Input.Submitted)
    @on(Button.Pressed, "#create")
    def _submit(self) -> None:
        self.action_create()

    @on(Button.Pressed, "#cancel")
    def _cancel(self) -> None:
        self.action_cancel()

    def action_create(self) -> None:
        problem = self._check()
        if problem is not None:
            self.query_one("#problem", Static).update(outside_text(problem))
            return
        self.dismiss(self.request)

    def action_cancel(self) -> None:
        self.dismiss(None)
