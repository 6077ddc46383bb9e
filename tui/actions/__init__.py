"""The app's actions: one registry (``registry.ACTIONS``, an ``ActionSpec`` per action) from
which the key bindings, the command palette, the help screen, the read-only rules, the
refusals and the confirmation dialogs (``dialogs``, one function per action) all derive; the
controller that asks, confirms and runs them as jobs; the App mixin that binds them."""

from tui.actions.app_mixin import ActionsAppMixin, FooterBindings
from tui.actions.confirmation import Confirmation
from tui.actions.controller import ActionsController, confirmation, most_used_flake
from tui.actions.dialogs import UPDATE_RESTART_CHOICES, restart_offer
from tui.actions.refusals import refusal
from tui.actions.registry import (
    ACTIONS,
    CHANGING_IDS,
    CHANGING_METHODS,
    ActionId,
    ActionSpec,
    Needs,
    Scope,
    bindings,
    spec_for_call,
    spec_of,
)

__all__ = [
    "ACTIONS",
    "CHANGING_IDS",
    "CHANGING_METHODS",
    "UPDATE_RESTART_CHOICES",
    "ActionId",
    "ActionSpec",
    "ActionsAppMixin",
    "ActionsController",
    "Confirmation",
    "FooterBindings",
    "Needs",
    "Scope",
    "bindings",
    "confirmation",
    "most_used_flake",
    "refusal",
    "restart_offer",
    "spec_for_call",
    "spec_of",
]
