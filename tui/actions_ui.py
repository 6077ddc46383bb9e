"""The glue between the app and the host actions: keys, confirmations, jobs, the jobs panel.

``ActionsController(app, settings)`` owns a ``JobRunner``. Every job snapshot the runner hands
its listener (from the runner's notifier thread) is posted onto the app's message queue with
``app.call_later`` (thread-safe and never blocking, so a closing app cannot deadlock the
notifier), then kept, shown in the jobs panel and, when the job ends, told as a notification.

``request(action, vm)`` refuses what cannot work (read-only, another job on the VM, a
declarative VM, nothing to roll back to) with the reason, else shows a confirmation that names
exactly what will happen (the destructive ones need the VM's name typed) and submits the job.
An update that changed the runner shows the ``nix store diff-closures`` and asks before
restarting (``update_restart``: "ask", or "always" / "never" to not ask).

The app wires it with ``ActionsAppMixin``, ``ACTION_BINDINGS`` and a controller instance; see
the module's tests for a small app that does exactly that.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text
from textual import events
from textual.app import App, SystemCommand
from textual.binding import Binding
from textual.dom import DOMNode
from textual.screen import Screen

from tui.host.actions.commands import CommandRecord
from tui.host.actions.jobs import Job, JobRunner, JobState
from tui.host.actions.operations import DEFAULT_FLAKE, Outcome, runner_installable
from tui.host.model import VM
from tui.host.names import name_problem, unit_name
from tui.host.settings import HostSettings
from tui.screens.confirm import ConfirmScreen
from tui.screens.create import CreateRequest, CreateScreen
from tui.screens.jobs import CommandEntry, JobListener, JobsScreen
from tui.widgets.outside import notify_outside, outside_markup, sanitise

if TYPE_CHECKING:
    from tui.config import Settings

UPDATE_RESTART_CHOICES = ("ask", "always", "never")


@dataclass(frozen=True)
class ActionInfo:
    action: str  # the key of tui.host.actions.operations.ACTIONS
    label: str  # a verb, capitalised: the dialog's button, the palette entry
    key: str
    help: str
    typed: bool = False  # destructive: the VM's name must be typed
    needs_vm: bool = True


ACTIONS_INFO: dict[str, ActionInfo] = {
    info.action: info
    for info in (
        ActionInfo("start", "Start", "t", "Start the VM (systemctl start microvm@NAME)"),
        ActionInfo("stop", "Stop", "T", "Shut the VM down (systemctl stop microvm@NAME)"),
        ActionInfo("restart", "Restart", "R", "Shut the VM down and start it again"),
        ActionInfo("update", "Update", "u", "Rebuild the VM's runner from its flake"),
        ActionInfo("rollback", "Rollback", "b", "Swap the 'current' and 'old' runners"),
        ActionInfo(
            "force-stop", "Force stop", "K", "Kill the VM's processes (SIGKILL)", typed=True
        ),
        ActionInfo("delete", "Delete", "D", "Stop the VM and remove its state dir", typed=True),
        ActionInfo("create", "Create", "n", "Build and install a new VM", needs_vm=False),
    )
}

# Keys chosen not to clash with the app's q, ?, r, ctrl+p, c (console) nor the main screen's
# / (filter), s / S (sort), d (detail), [ ] and digits (tabs): start is t ("sTart"), stop T.
# Binding ids are what a [keys] table in the config file remaps.
ACTION_BINDINGS: list[Binding] = [
    Binding("t", "vm_action('start')", "Start", id="start", tooltip=ACTIONS_INFO["start"].help),
    Binding("T", "vm_action('stop')", "Stop", id="stop", tooltip=ACTIONS_INFO["stop"].help),
    Binding(
        "R", "vm_action('restart')", "Restart", id="restart", tooltip=ACTIONS_INFO["restart"].help
    ),
    Binding("u", "vm_action('update')", "Update", id="update", tooltip=ACTIONS_INFO["update"].help),
    Binding(
        "b",
        "vm_action('rollback')",
        "Rollback",
        id="rollback",
        tooltip=ACTIONS_INFO["rollback"].help,
    ),
    Binding("n", "create_vm", "New VM", id="create", tooltip=ACTIONS_INFO["create"].help),
    Binding(
        "K",
        "vm_action('force-stop')",
        "Force stop",
        id="force-stop",
        tooltip=ACTIONS_INFO["force-stop"].help,
        show=False,  # destructive: in the help screen and the palette, not the footer
    ),
    Binding(
        "D",
        "vm_action('delete')",
        "Delete",
        id="delete",
        tooltip=ACTIONS_INFO["delete"].help,
        show=False,
    ),
    Binding("j", "jobs", "Jobs", id="jobs", tooltip="The jobs panel: progress, logs, commands"),
]
# App actions that change something (disabled in read-only mode).
CHANGING_ACTIONS = ("vm_action", "create_vm")
CHANGING_BINDING_IDS = frozenset(b.id for b in ACTION_BINDINGS if b.id != "jobs")


# --- what a confirmation says -----------------------------------------------------------------


@dataclass(frozen=True)
class Confirmation:
    title: str
    body: Text
    confirm_label: str
    typed_name: str | None = None
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


def _path(path: str | Path | None) -> str:
    return sanitise(path) if path else "nothing"


def _active(vm: VM) -> str:
    return (vm.unit.active if vm.unit and vm.unit.active else None) or "unknown"


def _running(vm: VM) -> bool:
    return _active(vm) in ("active", "activating", "reloading")


def has_shutdown_script(runner: str) -> bool:
    """microvm@NAME's ExecStop runs the runner's bin/microvm-shutdown when it has one."""
    return os.path.exists(os.path.join(runner, "bin", "microvm-shutdown"))


def _shutdown_how(vm: VM) -> str:
    runner = vm.booted or vm.runner
    if runner and has_shutdown_script(runner):
        return "shut down via microvm-shutdown"
    return "stopped by systemd (SIGTERM to the hypervisor: no clean guest shutdown)"


def refusal(action: str, vm: VM | None, busy: Job | None = None) -> str | None:
    """Why ACTION cannot be done on VM right now (before asking anything), or None."""
    info = ACTIONS_INFO[action]
    if not info.needs_vm:
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
    if vm.declarative and action in ("update", "rollback", "delete"):
        what = {"update": "updated", "rollback": "rolled back", "delete": "deleted"}[action]
        return (
            f"{name} is managed fully declaratively (it has a 'toplevel' link), so it cannot "
            f"be {what} here: change microvm.vms.{name} in the host's configuration."
        )
    if action == "update" and not vm.flake:
        return f"{name} has no 'flake' file to rebuild from."
    if action == "rollback" and not vm.old:
        return f"{name} has no 'old' runner to roll back to (it has not been updated here)."
    if action in ("start", "restart") and not vm.runner:
        return f"{name} has no usable 'current' runner to start: update it first."
    return None


def confirmation(
    action: str, vm: VM, settings: HostSettings, update_restart: str = "ask"
) -> Confirmation:
    """The dialog for ACTION on VM: what exactly will happen."""
    name = sanitise(vm.name)
    unit = unit_name(name)
    body = Text()
    if action == "start":
        body.append(f"Start {unit}: ", style="bold")
        body.append(f"the guest boots from current ({_path(vm.runner)}).")
        if _running(vm):
            body.append(f"\n\nIt is already {_active(vm)}: systemd will do nothing.")
        return Confirmation(f"Start {name}?", body, "Start")
    if action == "stop":
        body.append(f"Stop {unit}: ", style="bold")
        body.append(f"the guest is {_shutdown_how(vm)}; systemd waits for it to end.")
        if not _running(vm):
            body.append(f"\n\nIt is {_active(vm)} now: there may be nothing to stop.")
        return Confirmation(f"Stop {name}?", body, "Stop")
    if action == "restart":
        body.append(f"Restart {unit}: ", style="bold")
        if _running(vm):
            body.append(f"the guest is {_shutdown_how(vm)} and started again ")
        else:
            body.append(f"it is {_active(vm)} now, so it is just started ")
        body.append(f"from current ({_path(vm.runner)}).")
        if vm.booted and vm.runner and os.path.realpath(vm.booted) != vm.runner:
            body.append(f"\n\nIt runs {_path(vm.booted)} now: the restart applies current.")
        return Confirmation(f"Restart {name}?", body, "Restart")
    if action == "update":
        flake = sanitise(vm.flake or "?")
        body.append(f"Update {name}: ", style="bold")
        body.append(f"build {runner_installable(flake, name)}")
        body.append(f" (from {_path(vm.path / 'flake')}).\n\n")
        body.append(
            f"If the runner changed: old → {_path(vm.runner)} (current now), "
            "current → the new build, each in one atomic rename. "
            "A failed or cancelled build changes nothing.\n\n"
        )
        if update_restart == "always":
            body.append(f"Then {unit} is restarted at once if it runs an older runner.")
        elif update_restart == "never":
            body.append(f"The running VM is not touched: restart {unit} yourself to apply it.")
        else:
            body.append(
                "The running VM is not touched: once built, you see the "
                "`nix store diff-closures` and choose whether to restart it."
            )
        return Confirmation(
            f"Update {name}?",
            body,
            "Update",
            options={"restart": update_restart == "always"},
        )
    if action == "rollback":
        body.append(f"Roll {name} back: ", style="bold")
        body.append(
            f"current → {_path(vm.old)} (old now), old → {_path(vm.runner)} (current now), "
            "each in one atomic rename.\n\n"
        )
        if vm.booted and vm.old and os.path.realpath(vm.booted) == os.path.realpath(vm.old):
            body.append("It already runs that runner: no restart needed.")
        elif _running(vm):
            body.append(f"The running VM is not touched: you are offered a restart of {unit}.")
        else:
            body.append("It is not running: the next start uses the rolled-back runner.")
        return Confirmation(f"Roll {name} back?", body, "Roll back")
    if action == "force-stop":
        body.append(f"Force stop {unit}: ", style="bold")
        body.append(
            "every process of the unit (the hypervisor and its helpers) is killed with SIGKILL, "
            "then the unit is stopped.\n\n"
        )
        body.append(
            "The guest gets no shutdown: what it had not written is lost and its disks may "
            "need a check at the next boot.",
            style="bold",
        )
        return Confirmation(
            f"Force stop {name}?", body, "Force stop", typed_name=vm.name, danger=True
        )
    if action == "delete":
        body.append(f"Delete {name}: ", style="bold")
        body.append(f"stop {unit} (the guest is {_shutdown_how(vm)}), then remove ")
        body.append(_path(vm.path), style="bold")
        body.append(" and everything in it")
        inside = [v for v in vm.volumes if _is_inside(v.image, vm.path)]
        outside = [v for v in vm.volumes if not _is_inside(v.image, vm.path)]
        if inside:
            body.append(" (volumes: " + ", ".join(_path(v.image) for v in inside) + ")")
        gcroots = ", ".join(f"{r}" for r in (name, f"booted-{name}", f"old-{name}"))
        body.append(f", and its GC roots in {_path(settings.gcroots_dir)} ({gcroots}).\n\n")
        if outside:
            body.append(
                "Volumes outside the state dir are kept: "
                + ", ".join(_path(v.image) for v in outside)
                + ".\n\n"
            )
        body.append(
            "This cannot be undone. The runners stay in the Nix store until garbage-collected.",
            style="bold",
        )
        return Confirmation(f"Delete {name}?", body, "Delete", typed_name=vm.name, danger=True)
    raise ValueError(f"no confirmation for {action!r}")


def most_used_flake(vms: Iterable[VM]) -> str | None:
    """The flake reference most VMs were built from (ties: the first seen), or None."""
    counts = Counter(vm.flake for vm in vms if vm.flake and vm.flake.isprintable())
    return counts.most_common(1)[0][0] if counts else None


def _is_inside(path: str, folder: Path) -> bool:
    real = os.path.realpath(os.path.join(folder, path))
    return real.startswith(os.path.realpath(folder) + os.sep)


def restart_offer(job: Job, vm: VM | None) -> Confirmation:
    """After an update (or rollback) that left the VM on an older runner: restart now?"""
    outcome = job.outcome
    assert outcome is not None
    name = sanitise(job.vm)
    unit = unit_name(name)
    body = Text()
    body.append(sanitise(outcome.message) + "\n\n")
    body.append(f"Restart {unit} now: ", style="bold")
    how = _shutdown_how(vm) if vm is not None else "shut down"
    body.append(f"the guest is {how} and started again from current ({_path(outcome.out_path)}).")
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


# --- the controller ---------------------------------------------------------------------------


def mark_read_only(node: DOMNode, reason: str) -> None:
    """Give NODE's action bindings the tooltip "read-only: REASON" (the footer shows them
    disabled through ``check_action``; hovering one says why)."""
    bindings = node._bindings.key_to_bindings
    for key, entries in bindings.items():
        bindings[key] = [
            replace(b, tooltip=f"read-only: {reason}") if b.id in CHANGING_BINDING_IDS else b
            for b in entries
        ]


class ActionsController:
    """Owns the JobRunner; everything here runs on the app's thread except ``_listener``."""

    def __init__(
        self,
        app: App,
        settings: Settings,
        *,
        read_only_reason: str | None = None,
        selected_vm: Callable[[], VM | None] | None = None,
        known_vms: Callable[[], Iterable[VM]] | None = None,
        on_change: Callable[[Job], None] | None = None,
        update_restart: str | None = None,
        runner: JobRunner | None = None,
        default_flake: str = DEFAULT_FLAKE,
    ) -> None:
        self.app = app
        self.settings = settings
        self.host: HostSettings = settings.host
        if read_only_reason is None and settings.read_only:
            read_only_reason = "started with --read-only"
        self.read_only_reason = read_only_reason
        # Defaults: the app's own (ActionsAppMixin has both).
        self.selected_vm = selected_vm or getattr(app, "selected_vm", None) or (lambda: None)
        self.known_vms = known_vms or getattr(app, "known_vms", None) or (lambda: ())
        self.on_change = on_change
        policy = update_restart or getattr(settings, "update_restart", None) or "ask"
        if policy not in UPDATE_RESTART_CHOICES:
            raise ValueError(f"update_restart must be one of {UPDATE_RESTART_CHOICES}")
        self.update_restart = policy
        self.default_flake = default_flake
        self.last_flake: str | None = None  # the flake of the last VM created (remembered)
        self.on_flake_used: Callable[[str], None] | None = None
        self.runner = runner if runner is not None else JobRunner(self.host)
        self.runner.listener = self._listener
        self._jobs: dict[int, Job] = {}
        self._commands: list[CommandEntry] = []
        self._commands_seen: dict[int, int] = {}
        self._subscribers: list[JobListener] = []
        self._closed = False
        if self.read_only_reason:
            mark_read_only(app, self.read_only_reason)

    # --- the runner's side (notifier thread) ---------------------------------------------------

    def _listener(self, job: Job) -> None:
        if self._closed:
            return
        self.app.call_later(self._on_job, job)

    # --- the UI thread ---------------------------------------------------------------------------

    def _on_job(self, job: Job) -> None:
        if self._closed:
            return
        previous = self._jobs.get(job.id)
        if previous is not None and previous.version >= job.version:
            return
        self._jobs[job.id] = job
        seen = self._commands_seen.get(job.id, 0)
        fresh = [(job.id, record) for record in job.commands[seen:]]
        self._commands_seen[job.id] = len(job.commands)
        self._commands.extend(fresh)
        for subscriber in list(self._subscribers):
            subscriber(job, fresh)
        state_changed = previous is None or previous.state != job.state
        if state_changed and self.on_change is not None:
            self.on_change(job)
        if state_changed and job.state.finished:
            self._finished(job)

    def _finished(self, job: Job) -> None:
        result = job.result or str(job.state)
        if job.state is JobState.SUCCEEDED:
            notify_outside(self.app, result, title=f"✔ {job.title}", timeout=6)
            self._after_success(job)
        elif job.state is JobState.CANCELLED:
            notify_outside(self.app, result, title=f"■ {job.title} cancelled", severity="warning")
        else:
            notify_outside(
                self.app, result, title=f"✖ {job.title} failed", severity="error", timeout=12
            )

    def _after_success(self, job: Job) -> None:
        outcome: Outcome | None = job.outcome
        if outcome is None or not outcome.restart_needed:
            return
        if job.action == "update" and self.update_restart == "never":
            return
        if job.action not in ("update", "rollback"):
            return
        vm = self._vm_named(job.vm)
        offer = restart_offer(job, vm)
        self.app.push_screen(offer.screen(), partial(self._restart_answer, job.vm))

    def _restart_answer(self, name: str, confirmed: bool | None) -> None:
        if confirmed:
            self.submit("restart", name)

    def _vm_named(self, name: str) -> VM | None:
        return next((vm for vm in self.known_vms() if vm.name == name), None)

    # --- requests from keys and the command palette ------------------------------------------

    def request(self, action: str, vm: VM | None = None) -> ConfirmScreen | CreateScreen | None:
        """Ask for ACTION on VM (default: the selected one); the dialog shown, or None when
        it was refused (the reason is notified)."""
        if action == "create":
            return self.request_create()
        info = ACTIONS_INFO.get(action)
        if info is None:
            raise ValueError(f"unknown action {action!r}")
        if self.read_only_reason:
            self._refuse(info, f"read-only: {self.read_only_reason}.")
            return None
        if vm is None:
            vm = self.selected_vm()
        busy = self.runner.active_on(vm.name) if vm is not None else None
        problem = refusal(action, vm, busy)
        if problem:
            self._refuse(info, problem)
            return None
        assert vm is not None
        confirm = confirmation(action, vm, self.host, self.update_restart)
        screen = confirm.screen()
        self.app.push_screen(
            screen,
            partial(self._confirmed, action, vm.name, confirm.options),
        )
        return screen

    def _refuse(self, info: ActionInfo, reason: str) -> None:
        notify_outside(
            self.app, reason, title=f"{info.label}: not done", severity="error", timeout=8
        )

    def _confirmed(self, action: str, name: str, options: dict, confirmed: bool | None) -> None:
        if confirmed:
            self.submit(action, name, **options)

    def request_create(self) -> CreateScreen | None:
        info = ACTIONS_INFO["create"]
        if self.read_only_reason:
            self._refuse(info, f"read-only: {self.read_only_reason}.")
            return None
        known = list(self.known_vms())
        screen = CreateScreen(
            self.host.state_dir,
            [vm.name for vm in known],
            flake=self.last_flake or most_used_flake(known) or self.default_flake,
        )
        self.app.push_screen(screen, self._create_answer)
        return screen

    def _create_answer(self, request: CreateRequest | None) -> None:
        if request is not None:
            self.last_flake = request.flake
            if self.on_flake_used is not None:
                self.on_flake_used(request.flake)
            self.submit("create", request.name, flake=request.flake, start=request.start)

    def submit(self, action: str, name: str, **options: Any) -> Job | None:
        """Start the job now (no questions: the caller asked them)."""
        if self.read_only_reason:
            self._refuse(ACTIONS_INFO[action], f"read-only: {self.read_only_reason}.")
            return None
        job = self.runner.submit(action, name, **options)
        self._on_job(job)
        if not job.state.finished:
            notify_outside(
                self.app, f"{job.title} started (job {job.id}); j shows its progress.", timeout=4
            )
        return job

    def running_on(self) -> dict[str, str]:
        """VM name -> title of the job running on it now."""
        return {job.vm: job.title for job in self._jobs.values() if not job.state.finished}

    def quit_question(self) -> Confirmation | None:
        """The question before quitting while jobs run (None: nothing runs)."""
        running = [job for job in self.jobs() if not job.state.finished]
        if not running:
            return None
        n = len(running)
        titles = ", ".join(sanitise(job.title) for job in running[:3])
        more = f" and {n - 3} more" if n > 3 else ""
        body = Text()
        body.append(f"Quitting cancels {'it' if n == 1 else 'them'}: ", style="bold")
        body.append(
            "each job is cancelled as the jobs panel's x does (a build is interrupted and what "
            "it made is removed; current and old stay as they were), and the app waits for that "
            "cleanup before it exits."
        )
        return Confirmation(
            f"{n} job{'s' if n != 1 else ''} running ({titles}{more}): quit and cancel "
            f"{'it' if n == 1 else 'them'}?",
            body,
            "Quit",
            danger=True,
        )

    def refuse_read_only(self, action: str) -> bool:
        """In read-only mode, say why ACTION (an ACTIONS_INFO key) is off; True if it was."""
        if not self.read_only_reason or action not in ACTIONS_INFO:
            return False
        self._refuse(ACTIONS_INFO[action], f"read-only: {self.read_only_reason}.")
        return True

    def show_jobs(self) -> JobsScreen:
        screen = JobsScreen(self)
        self.app.push_screen(screen)
        return screen

    # --- JobsSource, for the jobs panel ------------------------------------------------------

    def jobs(self) -> list[Job]:
        return [self._jobs[i] for i in sorted(self._jobs)]

    def job(self, job_id: int) -> Job | None:
        return self._jobs.get(job_id)

    def command_log(self) -> list[CommandEntry]:
        return list(self._commands)

    def add_command(self, record: CommandRecord) -> None:
        """Record a command the app ran outside a job (it shows in the command log)."""
        entry: CommandEntry = (None, record)
        self._commands.append(entry)

    def cancel_job(self, job_id: int) -> bool:
        return self.runner.cancel(job_id)

    def subscribe(self, listener: JobListener) -> Callable[[], None]:
        self._subscribers.append(listener)

        def unsubscribe() -> None:
            if listener in self._subscribers:
                self._subscribers.remove(listener)

        return unsubscribe

    # --- what the app delegates ----------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """For App.check_action: None (shown, disabled) for changes in read-only mode."""
        if action in CHANGING_ACTIONS and self.read_only_reason:
            return None
        return True

    def system_commands(self, screen: Screen | None = None) -> Iterable[SystemCommand]:
        """Command palette entries: one per action (on the selected VM), plus the panel.
        For an app whose palette does not list its bindings already (yield these from
        ``App.get_system_commands``); in read-only mode their help says why they refuse."""
        vm = self.selected_vm()
        target = f" ({sanitise(vm.name)})" if vm is not None else ""
        for info in ACTIONS_INFO.values():
            if self.read_only_reason:
                help_text = f"read-only: {self.read_only_reason}"
            else:
                help_text = info.help + ("" if not info.needs_vm else f"{target}")
            title = f"{info.label} VM" if info.action != "create" else "Create a VM"
            yield SystemCommand(
                title, outside_markup(help_text), partial(self.request, info.action)
            )
        yield SystemCommand("Jobs", "The jobs panel: progress, logs, commands", self.show_jobs)

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel the running jobs and wait for them (on app exit)."""
        self._closed = True
        self.runner.shutdown(timeout)


class ActionsAppMixin:
    """What an App needs for ``ACTION_BINDINGS``: put it before ``App`` in the bases and set
    ``self.actions`` (an ``ActionsController``) in ``__init__``."""

    actions: ActionsController

    def selected_vm(self) -> VM | None:
        """The VM under the cursor of the default screen (``selected_name``), from the
        app's last ``snapshot.inventory``."""
        stack = self.screen_stack  # type: ignore[attr-defined]
        name = getattr(stack[0], "selected_name", None) if stack else None
        if name is None:
            return None
        return next((vm for vm in self.known_vms() if vm.name == name), None)

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
        if action in CHANGING_ACTIONS or action == "jobs":
            return self.actions.check_action(action, parameters)
        return super().check_action(action, parameters)  # type: ignore[misc]

    def explain_disabled(self, action: str, parameters: tuple[object, ...] = ()) -> bool:
        """A disabled action was asked for (a key, the palette): say why. True if it was one
        of ours."""
        if action == "create_vm":
            return self.actions.refuse_read_only("create")
        if action == "vm_action" and parameters:
            return self.actions.refuse_read_only(str(parameters[0]))
        return False

    def on_key(self, event: events.Key) -> None:
        # Textual skips a disabled binding silently: the key reaches here unhandled.
        stack = self.screen_stack  # type: ignore[attr-defined]
        if not self.actions.read_only_reason or not stack:
            return
        active = self.screen.active_bindings.get(event.key)  # type: ignore[attr-defined]
        if active is None or active.enabled or active.binding.id not in CHANGING_BINDING_IDS:
            return
        event.stop()
        self.explain_disabled(*_parse_action(active.binding.action))


def _parse_action(action: str) -> tuple[str, tuple[object, ...]]:
    """ "vm_action('start')" -> ("vm_action", ("start",))."""
    from textual.actions import parse

    _target, name, params = parse(action)
    return name, params
