"""What each action's confirmation says: one small function per action, from the VM and the
facts ``tui.host.actions.plan.plan`` read from the host (no file-system look here).

Everything from outside (names, paths, flake references) passes ``sanitise`` first; the body
is a ``Text`` and never parsed as markup. Whether the VM's name must be typed comes from the
action's ``typed_name`` in the registry (``controller.confirmation`` adds it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from tui.actions.confirmation import Confirmation
from tui.host.actions.jobs import Job
from tui.host.actions.operations import runner_installable
from tui.host.actions.plan import ActionPlan
from tui.host.model import VM
from tui.host.names import unit_name
from tui.widgets.outside import sanitise

UPDATE_RESTART_CHOICES = ("ask", "always", "never")


@dataclass(frozen=True)
class DialogInput:
    """What a dialog function is given."""

    vm: VM
    plan: ActionPlan
    update_restart: str = "ask"  # see UPDATE_RESTART_CHOICES

    @property
    def name(self) -> str:
        return sanitise(self.vm.name)

    @property
    def unit(self) -> str:
        return unit_name(self.name)


Dialog = Callable[[DialogInput], Confirmation]


def _path(path: str | Path | None) -> str:
    return sanitise(path) if path else "nothing"


def _active(vm: VM) -> str:
    return (vm.unit.active if vm.unit and vm.unit.active else None) or "unknown"


def _running(vm: VM) -> bool:
    return _active(vm) in ("active", "activating", "reloading")


def shutdown_how(plan: ActionPlan | None) -> str:
    if plan is None:
        return "shut down"
    if plan.shutdown_script:
        return "shut down via microvm-shutdown"
    return "stopped by systemd (SIGTERM to the hypervisor: no clean guest shutdown)"


def start(d: DialogInput) -> Confirmation:
    body = Text()
    body.append(f"Start {d.unit}: ", style="bold")
    body.append(f"the guest boots from current ({_path(d.vm.runner)}).")
    if _running(d.vm):
        body.append(f"\n\nIt is already {_active(d.vm)}: systemd will do nothing.")
    return Confirmation(f"Start {d.name}?", body, "Start")


def stop(d: DialogInput) -> Confirmation:
    body = Text()
    body.append(f"Stop {d.unit}: ", style="bold")
    body.append(f"the guest is {shutdown_how(d.plan)}; systemd waits for it to end.")
    if not _running(d.vm):
        body.append(f"\n\nIt is {_active(d.vm)} now: there may be nothing to stop.")
    return Confirmation(f"Stop {d.name}?", body, "Stop")


def restart(d: DialogInput) -> Confirmation:
    body = Text()
    body.append(f"Restart {d.unit}: ", style="bold")
    if _running(d.vm):
        body.append(f"the guest is {shutdown_how(d.plan)} and started again ")
    else:
        body.append(f"it is {_active(d.vm)} now, so it is just started ")
    body.append(f"from current ({_path(d.vm.runner)}).")
    if d.plan.runs_other_than_current:
        body.append(f"\n\nIt runs {_path(d.vm.booted)} now: the restart applies current.")
    return Confirmation(f"Restart {d.name}?", body, "Restart")


def update(d: DialogInput) -> Confirmation:
    vm, name, unit = d.vm, d.name, d.unit
    flake = sanitise(vm.flake or "?")
    body = Text()
    body.append(f"Update {name}: ", style="bold")
    body.append(f"build {runner_installable(flake, name)}")
    body.append(f" (from {_path(vm.path / 'flake')}).\n\n")
    body.append(
        f"If the runner changed: old → {_path(vm.runner)} (current now), "
        "current → the new build, each in one atomic rename. "
        "A failed or cancelled build changes nothing.\n\n"
    )
    if d.update_restart == "always":
        body.append(f"Then {unit} is restarted at once if it runs an older runner.")
    elif d.update_restart == "never":
        body.append(f"The running VM is not touched: restart {unit} yourself to apply it.")
    else:
        body.append(
            "The running VM is not touched: once built, you see the "
            "`nix store diff-closures` and choose whether to restart it."
        )
    return Confirmation(
        f"Update {name}?", body, "Update", options={"restart": d.update_restart == "always"}
    )


def rollback(d: DialogInput) -> Confirmation:
    vm = d.vm
    body = Text()
    body.append(f"Roll {d.name} back: ", style="bold")
    body.append(
        f"current → {_path(vm.old)} (old now), old → {_path(vm.runner)} (current now), "
        "each in one atomic rename.\n\n"
    )
    if d.plan.runs_old:
        body.append("It already runs that runner: no restart needed.")
    elif _running(vm):
        body.append(f"The running VM is not touched: you are offered a restart of {d.unit}.")
    else:
        body.append("It is not running: the next start uses the rolled-back runner.")
    return Confirmation(f"Roll {d.name} back?", body, "Roll back")


def force_stop(d: DialogInput) -> Confirmation:
    body = Text()
    body.append(f"Force stop {d.unit}: ", style="bold")
    body.append(
        "every process of the unit (the hypervisor and its helpers) is killed with SIGKILL, "
        "then the unit is stopped.\n\n"
    )
    body.append(
        "The guest gets no shutdown: what it had not written is lost and its disks may "
        "need a check at the next boot.",
        style="bold",
    )
    return Confirmation(f"Force stop {d.name}?", body, "Force stop")


def delete(d: DialogInput) -> Confirmation:
    vm, name, plan = d.vm, d.name, d.plan
    body = Text()
    body.append(f"Delete {name}: ", style="bold")
    body.append(f"stop {d.unit} (the guest is {shutdown_how(plan)}), then remove ")
    body.append(_path(vm.path), style="bold")
    body.append(" and everything in it")
    if plan.volumes_inside:
        body.append(" (volumes: " + ", ".join(_path(i) for i in plan.volumes_inside) + ")")
    gcroots = ", ".join((name, f"booted-{name}", f"old-{name}"))
    body.append(f", and its GC roots in {_path(plan.gcroots_dir)} ({gcroots}).\n\n")
    if plan.volumes_outside:
        body.append(
            "Volumes outside the state dir are kept: "
            + ", ".join(_path(i) for i in plan.volumes_outside)
            + ".\n\n"
        )
    body.append(
        "This cannot be undone. The runners stay in the Nix store until garbage-collected.",
        style="bold",
    )
    return Confirmation(f"Delete {name}?", body, "Delete")


def restart_offer(job: Job, plan: ActionPlan | None) -> Confirmation:
    """After an update (or rollback) that left the VM on an older runner: restart now?
    PLAN is None when the VM is not in the last listing."""
    outcome = job.outcome
    assert outcome is not None
    name = sanitise(job.vm)
    body = Text()
    body.append(sanitise(outcome.message) + "\n\n")
    body.append(f"Restart {unit_name(name)} now: ", style="bold")
    body.append(
        f"the guest is {shutdown_how(plan)} and started again from current "
        f"({_path(outcome.out_path)})."
    )
    details = None
    details_title = ""
    if outcome.diff is not None:
        details = outcome.diff.rstrip("\n") or "(no package changes)"
        details_title = "nix store diff-closures"
    return Confirmation(
        f"Restart {name}?",
        body,
        "Restart now",
        details=details,
        details_title=details_title,
    )
