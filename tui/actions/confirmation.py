"""What a confirmation dialog says, as data: ``Confirmation.screen()`` makes the dialog."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text

from tui.screens.confirm import ConfirmScreen


@dataclass(frozen=True)
class Confirmation:
    title: str
    body: Text
    confirm_label: str
    typed_name: str | None = None  # destructive: this must be typed to confirm
    danger: bool = False
    details: str | None = None
    details_title: str = ""
    options: dict[str, Any] = field(default_factory=dict)  # passed to the action

    def screen(self) -> ConfirmScreen:
        return ConfirmScreen(
            self.title,
            self.body,
            confirm_label=self.confirm_label,
            typed_name=self.typed_name,
            danger=self.danger,
            details=self.details,
            details_title=self.details_title,
        )
