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
from tui.host.actions.bulk import BUILDS, BulkPlan
from tui.host.actions.jobs import Job
from tui.host.actions.operations import runner_installable
from tui.host.actions.plan import ActionPlan
from tui.host.model import VM
from tui.host.names import unit_name
from tui.host.settings import DeploySource
from tui.widgets.outside import sanitise

UPDATE_RESTART_CHOICES = ("ask", "always", "never")


@dataclass(frozen=True)
class DialogInput:
    """What a dialog function is given."""

    vm: VM
    plan: ActionPlan
    update_restart: str = "ask"  # see UPDATE_RESTART_CHOICES
    deploy: DeploySource | None = None  # [deploy]: where deploys come from

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
    _restart_words(body, unit, d.update_restart)
    return Confirmation(
        f"Update {name}?", body, "Update", options={"restart": d.update_restart == "always"}
    )


def _restart_words(body: Text, unit: str, update_restart: str, done: str = "built") -> None:
    """What happens to the running VM after a build switched its runner (update, deploy)."""
    if update_restart == "always":
        body.append(f"Then {unit} is restarted at once if it runs an older runner.")
    elif update_restart == "never":
        body.append(f"The running VM is not touched: restart {unit} yourself to apply it.")
    else:
        body.append(
            f"The running VM is not touched: once {done}, you see the "
            "`nix store diff-closures` and choose whether to restart it."
        )


def source_words(source: DeploySource | None) -> str:
    """Where a deploy copies from and whether nix checks signatures, in one sentence."""
    source = source or DeploySource()
    cache = sanitise(source.cache) if source.cache else "no cache set ([deploy] cache)"
    sigs = (
        "nix checks its signatures against the host's trusted keys (an unsigned or "
        "untrusted path is refused)"
        if source.check_sigs
        else "signatures are NOT checked ([deploy] check_sigs = false)"
    )
    return f"Copied with `nix copy --from {cache}`; {sigs}."


def deploy(d: DialogInput) -> Confirmation:
    """The deploy dialog's words; the store path is typed in the dialog
    (``tui.screens.deploy``), or left empty for the latest build from [deploy] hydra_url."""
    source = d.deploy or DeploySource()
    body = Text()
    body.append(f"Deploy a prebuilt runner to {d.name}: ", style="bold")
    if source.hydra_url:
        url = sanitise(source.hydra_url.replace("{name}", d.vm.name))
        body.append(f"the store path typed below, or if empty the latest build from {url}.\n\n")
    else:
        body.append("the store path typed below ([deploy] hydra_url is not set).\n\n")
    body.append(source_words(source) + "\n\n")
    body.append(
        f"If the runner changed: old → {_path(d.vm.runner)} (current now), "
        "current → the deployed runner, each in one atomic rename. "
        "A failed or cancelled copy changes nothing.\n\n"
    )
    _restart_words(body, d.unit, d.update_restart, "deployed")
    return Confirmation(
        f"Deploy to {d.name}?", body, "Deploy", options={"restart": d.update_restart == "always"}
    )


def bulk(
    label: str,
    plan: BulkPlan,
    *,
    builds: int,
    restarts: int,
    offers_restart: bool = False,
    deploy_from: DeploySource | None = None,
) -> Confirmation:
    """One confirmation for LABEL (the action's verb) on the marked VMs: what will happen to
    each, which are skipped and why, and how many run at once. OFFERS_RESTART: the action
    can leave a VM on an older runner (update, rollback, deploy); DEPLOY_FROM: a deploy's
    source."""
    runs, skipped = plan.runs, plan.skipped
    build = plan.action in BUILDS
    body = Text()
    at_once = builds if build else restarts
    n = len(runs)
    body.append(f"{label} {n} VM{'s' if n != 1 else ''}, {at_once} at a time", style="bold")
    body.append(
        " (one job in the jobs panel, a child job per VM; cancelling it cancels the rest).\n"
    )
    if deploy_from is not None:
        body.append(
            "Each gets the latest build from "
            + sanitise(deploy_from.hydra_url or "?")
            + ". "
            + source_words(deploy_from)
            + "\n"
        )
    if offers_restart:
        if plan.restart:
            body.append(f"Those that need it are restarted after, {restarts} at a time.\n")
        else:
            body.append("Running VMs are not restarted: restart them yourself to apply it.\n")
    body.append("\n")
    width = max((len(sanitise(i.vm)) for i in plan.items), default=0)
    for item in plan.items:
        name = sanitise(item.vm).ljust(width)
        if item.refused is None:
            body.append(f"  ✔ {name}  ")
            body.append(sanitise(item.will) + "\n")
        else:
            body.append(f"  ✖ {name}  ", style="bold")
            body.append("skipped: " + sanitise(item.refused) + "\n", style="italic")
    return Confirmation(
        f"{label} {n} marked VM{'s' if n != 1 else ''}?"
        + (f" ({len(skipped)} skipped)" if skipped else ""),
        body,
        f"{label} {n}",
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


def quit_question(running: list[Job], detaches: bool, jobs_note: str | None) -> Confirmation | None:
    """The question before quitting while the RUNNING jobs run (None: nothing runs).
    DETACHES: they are systemd units that outlive the app; else JOBS_NOTE says why not."""
    if not running:
        return None
    n = len(running)
    titles = ", ".join(sanitise(job.title) for job in running[:3])
    more = f" and {n - 3} more" if n > 3 else ""
    body = Text()
    if detaches:
        body.append(f"Quitting leaves {'it' if n == 1 else 'them'} running: ", style="bold")
        body.append(
            "each job runs on the host as a systemd unit (microvm-tui-job-...), and the app "
            "shows it again, running or finished, when it next starts. A bulk job starts no "
            "more VMs; its children already running go on."
        )
        return Confirmation(
            f"{n} job{'s' if n != 1 else ''} running ({titles}{more}): quit?",
            body,
            "Quit",
        )
    body.append(f"Quitting cancels {'it' if n == 1 else 'them'}: ", style="bold")
    body.append(
        "each job is cancelled as the jobs panel's x does (a build is interrupted and what "
        "it made is removed; current and old stay as they were), and the app waits for that "
        "cleanup before it exits."
    )
    if jobs_note:  # why they are not systemd units that would outlive the app
        body.append(f"\n({sanitise(jobs_note)})", style="dim")
    return Confirmation(
        f"{n} job{'s' if n != 1 else ''} running ({titles}{more}): quit and cancel "
        f"{'it' if n == 1 else 'them'}?",
        body,
        "Quit",
        danger=True,
    )
