"""What an App and its screens need for the registry's bindings (``registry.bindings``)."""

from __future__ import annotations

import dataclasses

from textual import events
from textual.actions import parse
from textual.binding import ActiveBinding

from tui.actions import read_only
from tui.actions.controller import ActionsController
from tui.actions.registry import CHANGING_IDS, CHANGING_METHODS, spec_for_call, spec_of
from tui.host.model import VM


class ActionsAppMixin:
    """Put it before ``App`` in the bases, bind ``registry.bindings(Scope.APP)`` and set
    ``self.actions`` (an ``ActionsController``) in ``__init__``."""

    actions: ActionsController

    def selected_vm(self) -> VM | None:
        """The VM under the cursor of the default screen (``selected_name``), from the
        app's last ``snapshot.inventory``."""
        stack = self.screen_stack  # type: ignore[attr-defined]
        # The fleet view, when it is the screen, has a table (and a selection) of its own.
        if not stack:
            return None
        top = stack[-1]
        name = getattr(
            top if getattr(top, "fleet_selection", False) else stack[0], "selected_name", None
        )
        if name is None:
            return None
        return next((vm for vm in self.known_vms() if vm.name == name), None)

    def marked_vms(self) -> list[VM]:
        """The VMs marked in the default screen's table (``marks``) that the last
        ``snapshot.inventory`` still has."""
        stack = self.screen_stack  # type: ignore[attr-defined]
        marks = getattr(stack[0], "marks", None) if stack else None
        if not marks:
            return []
        return [vm for vm in self.known_vms() if vm.name in marks]

    def known_vms(self) -> list[VM]:
        snapshot = getattr(self, "snapshot", None)
        return list(snapshot.inventory.vms) if snapshot is not None else []

    def action_vm_action(self, action: str) -> None:
        self.actions.request(action)

    def action_create_vm(self) -> None:
        self.actions.request_create()

    def action_jobs(self) -> None:
        self.actions.show_jobs()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action in CHANGING_METHODS:
            spec = spec_for_call(action, parameters)
            if spec is not None:
                return self.actions.check_action(spec)
        return super().check_action(action, parameters)  # type: ignore[misc]

    def explain_disabled(self, action: str, parameters: tuple[object, ...] = ()) -> bool:
        """A disabled action was asked for (a key, the palette): say why. True if it was one
        of ours."""
        spec = spec_for_call(action, parameters)
        return spec is not None and self.actions.refuse_read_only(spec)

    def on_key(self, event: events.Key) -> None:
        # Textual skips a disabled binding silently: the key reaches here unhandled.
        stack = self.screen_stack  # type: ignore[attr-defined]
        if not self.actions.read_only_reason or not stack:
            return
        active = self.screen.active_bindings.get(event.key)  # type: ignore[attr-defined]
        if active is None or active.enabled or active.binding.id not in CHANGING_IDS:
            return
        event.stop()
        _target, name, params = parse(active.binding.action)
        self.explain_disabled(name, params)


class FooterBindings:
    """Screen mixin: what the footer shows of the screen's keys (Textual's footers read
    ``active_bindings``; key presses do not). A key whose action this view refuses outright
    (``ActionsController.refused_here``: create in the fleet view) is left out, though
    pressed it still says why; a host-changing key shown disabled says why on hover
    ("read-only: REASON", the app's ``read_only_reason``)."""

    @property
    def active_bindings(self) -> dict[str, ActiveBinding]:
        bindings: dict[str, ActiveBinding] = super().active_bindings  # type: ignore[misc]
        app = self.app  # type: ignore[attr-defined]
        reason = getattr(app, "read_only_reason", None)
        tip = read_only.tooltip(reason) if reason else None
        actions: ActionsController | None = getattr(app, "actions", None)
        shown = {}
        for key, active in bindings.items():
            binding = active.binding
            spec = spec_of(binding.id) if binding.show and binding.id else None
            if spec is not None and actions is not None and actions.refused_here(spec):
                active = active._replace(binding=dataclasses.replace(binding, show=False))
            elif tip and not active.enabled and binding.id in CHANGING_IDS:
                active = active._replace(tooltip=tip)
            shown[key] = active
        return shown
