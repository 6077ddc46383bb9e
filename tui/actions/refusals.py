"""Why an action cannot be done on a VM right now, said before any dialog (from the action's
``needs`` in the registry)."""

from __future__ import annotations

from tui.actions.registry import ActionSpec, Needs, spec_of
from tui.host.actions.jobs import Job
from tui.host.model import VM
from tui.host.names import name_problem
from tui.widgets.outside import sanitise


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
