"""Why an action is not done, said before any dialog.

``refusal(action, vm, busy)``: why an action cannot be done on a VM right now (from the
action's ``needs`` in the registry). ``Refusing``: the actions controller's refusals that
hold whatever the VM (read-only mode, a runner's host that changes nothing, a view that
takes no new VM), each said in one notification.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tui.actions import read_only
from tui.actions.registry import ActionSpec, Needs, spec_of
from tui.host.actions.jobs import Job
from tui.host.model import VM
from tui.host.names import name_problem
from tui.widgets.outside import notify_outside, sanitise

if TYPE_CHECKING:
    from textual.app import App

    from tui.host.actions.jobs import JobRunner


def refusal(action: ActionSpec | str, vm: VM | None, busy: Job | None = None) -> str | None:
    """Why ACTION cannot be done on VM (BUSY: the job running on it), or None."""
    spec = action if isinstance(action, ActionSpec) else spec_of(action)
    if spec is None:
        raise ValueError(f"unknown action {action!r}")
    if not spec.needs_vm:
        return None
    if vm is None:
        return "Select a VM first."
    name = sanitise(vm.name)
    problem = name_problem(vm.name)
    if problem:
        return f"{problem[0].upper()}{problem[1:]}: the app does not act on it."
    if busy is not None:
        return (
            f"{busy.title} (job {busy.id}) is still running on {name}: "
            "wait for it, or cancel it in the jobs panel (j)."
        )
    needs = spec.needs
    if Needs.IMPERATIVE in needs and vm.declarative:
        return (
            f"{name} is managed fully declaratively (it has a 'toplevel' link), so it cannot "
            f"be {spec.past} here: change microvm.vms.{name} in the host's configuration."
        )
    if Needs.FLAKE in needs and not vm.flake:
        return f"{name} has no 'flake' file to rebuild from."
    if Needs.OLD in needs and not vm.old:
        return f"{name} has no 'old' runner to roll back to (it has not been updated here)."
    if Needs.RUNNER in needs and not vm.runner:
        return f"{name} has no usable 'current' runner to start: update it first."
    return None


class Refusing:
    """The ``ActionsController``'s refusals (a base class of it: it sets ``app``, ``runner``
    and ``read_only_reason``)."""

    app: App
    runner: JobRunner
    read_only_reason: str | None

    def _refuse(self, spec: ActionSpec, reason: str) -> None:
        notify_outside(
            self.app, reason, title=f"{spec.label}: not done", severity="error", timeout=8
        )

    def refuse_read_only(self, spec: ActionSpec) -> bool:
        """In read-only mode, say why SPEC (one that changes the host) is off; True if it was."""
        if not self.read_only_reason or not spec.changes_host:
            return False
        self._refuse(spec, read_only.refused(self.read_only_reason))
        return True

    def refused_here(self, spec: ActionSpec) -> str | None:
        """Why this view refuses SPEC whatever is selected or marked (the fleet's runner takes
        no new VM: which host?), or None. The footer leaves such an action out
        (``FooterBindings``); its key still says why."""
        if spec.changes_host and spec.new_vm:
            return getattr(self.runner, "create_refusal", None)
        return None

    def refuse_for_host(self, spec: ActionSpec, name: str | None) -> bool:
        """Say why the runner's host of VM NAME (None: the marked VMs, or a new VM for
        SPEC) does not take SPEC (the fleet's runner: each host has its own read-only rule);
        True if so."""
        if not spec.changes_host:
            return False
        if spec.new_vm:
            why = self.refused_here(spec)
        elif name is None:
            why = getattr(self.runner, "bulk_refusal", None)
        else:
            refusal_of = getattr(self.runner, "refusal", None)
            why = refusal_of(name) if refusal_of is not None else None
        if why:
            self._refuse(spec, why)
        return bool(why)

    def check_action(self, spec: ActionSpec) -> bool | None:
        """For App.check_action: None (shown, disabled) for changes in read-only mode."""
        if spec.changes_host and self.read_only_reason:
            return None
        return True
