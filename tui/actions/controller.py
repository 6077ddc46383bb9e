"""The glue between the app and the host actions: requests, confirmations, jobs.

``ActionsController(app, settings)`` owns a ``JobRunner`` and the ``JobFeed`` of its jobs
(``feed``, ``tui.actions.job_feed``: the jobs panel's source); a job that ends is told as a
notification.

``request(action, vm)`` refuses what cannot work (read-only, another job on the VM, a
declarative VM, nothing to roll back to) with the reason, else shows the action's confirmation
(``tui.actions.dialogs``; the destructive ones need the VM's name typed) and submits the job.
An update that changed the runner shows the ``nix store diff-closures`` and asks before
restarting (``update_restart``: "ask", or "always" / "never" to not ask).

Its base class ``BulkRequests`` (``tui.actions.bulk_requests``) holds the actions on the marked
VMs, and its own base ``Refusing`` (``tui.actions.refusals``) the refusals that hold whatever
the VM (read-only mode, a host or view that takes no such action).
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any

from textual.app import App

from tui.actions import dialogs, read_only
from tui.actions.bulk_requests import BulkRequests
from tui.actions.confirmation import Confirmation
from tui.actions.dialogs import UPDATE_RESTART_CHOICES, DialogInput, restart_offer
from tui.actions.job_feed import JobFeed
from tui.actions.refusals import refusal
from tui.actions.registry import ACTIONS, ActionId, ActionSpec, spec_of
from tui.host.actions.jobs import Job, JobRunner, JobState
from tui.host.actions.jobunits import job_units
from tui.host.actions.operations import DEFAULT_FLAKE, Outcome
from tui.host.actions.plan import ActionPlan, plan
from tui.host.model import VM
from tui.host.settings import DeploySource, HostSettings
from tui.widgets.outside import notify_outside

if TYPE_CHECKING:
    from tui.config import Settings

    # The screens are imported where they are shown (start-up time: the app's first frame
    # needs none of them).
    from tui.screens.confirm import ConfirmScreen
    from tui.screens.create import CreateRequest, CreateScreen
    from tui.screens.jobs import JobsScreen


def confirmation(
    action: ActionSpec | str,
    vm: VM,
    settings: HostSettings,
    update_restart: str = "ask",
    deploy: DeploySource | None = None,
    facts: ActionPlan | None = None,
) -> Confirmation:
    """The dialog for ACTION on VM: what exactly will happen (FACTS: the plan, when it came
    from another host)."""
    spec = action if isinstance(action, ActionSpec) else spec_of(action)
    if spec is None or spec.dialog is None:
        raise ValueError(f"no confirmation for {action!r}")
    facts = facts if facts is not None else plan(vm, settings)
    confirm = spec.dialog(DialogInput(vm, facts, update_restart, deploy))
    if spec.typed_name:  # destructive: a red dialog that wants the VM's name typed
        confirm = replace(confirm, typed_name=vm.name, danger=True)
    return confirm


def most_used_flake(vms: Iterable[VM]) -> str | None:
    """The flake reference most VMs were built from (ties: the first seen), or None."""
    counts = Counter(vm.flake for vm in vms if vm.flake and vm.flake.isprintable())
    return counts.most_common(1)[0][0] if counts else None


def _spec(action: ActionSpec | str) -> ActionSpec:
    spec = action if isinstance(action, ActionSpec) else spec_of(action)
    if spec is None:
        raise ValueError(f"unknown action {action!r}")
    return spec


class ActionsController(BulkRequests):
    """Owns the JobRunner and its JobFeed; everything here runs on the app's thread."""

    def __init__(
        self,
        app: App,
        settings: Settings,
        *,
        read_only_reason: str | None = None,
        selected_vm: Callable[[], VM | None] | None = None,
        known_vms: Callable[[], Iterable[VM]] | None = None,
        marked_vms: Callable[[], Iterable[VM]] | None = None,
        on_change: Callable[[Job], None] | None = None,
        update_restart: str | None = None,
        runner: JobRunner | None = None,
        default_flake: str = DEFAULT_FLAKE,
    ) -> None:
        self.app = app
        self.settings = settings
        self.host: HostSettings = settings.host
        if read_only_reason is None and settings.read_only:
            read_only_reason = read_only.read_only_reason(True)
        self.read_only_reason = read_only_reason
        # Defaults: the app's own (ActionsAppMixin has both).
        self.selected_vm = selected_vm or getattr(app, "selected_vm", None) or (lambda: None)
        self.known_vms = known_vms or getattr(app, "known_vms", None) or (lambda: ())
        # The VMs marked in the table: with any, the bulk actions apply to them.
        self.marked_vms = marked_vms or getattr(app, "marked_vms", None) or (lambda: ())
        self.deploy_source: DeploySource = settings.deploy
        self.bulk_builds: int = settings.bulk_builds
        self.bulk_restarts: int = settings.bulk_restarts
        self.on_change = on_change
        policy = update_restart or getattr(settings, "update_restart", None) or "ask"
        if policy not in UPDATE_RESTART_CHOICES:
            raise ValueError(f"update_restart must be one of {UPDATE_RESTART_CHOICES}")
        self.update_restart = policy
        self.default_flake = default_flake
        self.last_flake: str | None = None  # the flake of the last VM created (remembered)
        self.on_flake_used: Callable[[str], None] | None = None
        # Jobs as systemd units when a manager is reachable (they outlive the app), else in
        # threads of the app, with the reason (``jobs_note``) in the quit question.
        self.jobs_note: str | None = None
        if runner is None:
            units = None
            if not self.read_only_reason:
                units, self.jobs_note = job_units(self.host)
            runner = JobRunner(self.host, units=units)
        self.runner = runner
        self.feed = JobFeed(app, runner, self._job_state)

    def plan_for(self, vm: VM) -> ActionPlan | str:
        """The facts VM's dialogs state: from this host, or asked of the remote host's agent
        (a line saying why not when it does not answer)."""
        fleet_plan = getattr(self.runner, "plan_for", None)  # the fleet's: the VM's host's
        if fleet_plan is not None:
            return fleet_plan(vm)
        remote_plan = getattr(self.runner, "plan", None)
        if remote_plan is not None:
            return remote_plan(vm.name)
        return plan(vm, self.host)

    async def adopt_jobs(self) -> None:
        """Show the jobs of earlier apps (units still running or finished meanwhile); a job
        file that cannot be read is one line each. (Asks systemd: off the UI thread.)"""
        problems = await asyncio.to_thread(self.runner.adopt)
        for problem in problems:
            notify_outside(self.app, problem, title="job not shown", severity="warning")

    # --- the jobs' ends (the UI thread) --------------------------------------------------------

    def _job_state(self, previous: Job | None, job: Job) -> None:
        if self.on_change is not None:
            self.on_change(job)
        # A job that had ended before this app saw it (adopted from an earlier one) is shown,
        # not announced again (no notification, no restart offer).
        if job.state.finished and not (previous is None and job.adopted):
            self._finished(job)

    def _finished(self, job: Job) -> None:
        if job.parent is not None:
            return  # a bulk job's child: the parent's summary says how it ended
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
        if outcome is None or not outcome.restart_needed or job.parent is not None:
            return
        spec = spec_of(job.action)
        if spec is None or not spec.offers_restart:
            return
        if spec.id in (ActionId.UPDATE, ActionId.DEPLOY) and self.update_restart == "never":
            return
        vm = self._vm_named(job.vm)
        facts = self.plan_for(vm) if vm is not None else None
        offer = restart_offer(job, facts if isinstance(facts, ActionPlan) else None)
        self.app.push_screen(offer.screen(), partial(self._restart_answer, job.vm))

    def _restart_answer(self, name: str, confirmed: bool | None) -> None:
        if confirmed:
            self.submit(ActionId.RESTART, name)

    def _vm_named(self, name: str) -> VM | None:
        return next((vm for vm in self.known_vms() if vm.name == name), None)

    # --- requests from keys and the command palette ------------------------------------------

    def request(
        self, action: ActionSpec | str, vm: VM | None = None
    ) -> ConfirmScreen | CreateScreen | None:
        """Ask for ACTION on VM (default: the selected one, or with VMs marked and a bulk
        action, the marked ones); the dialog shown, or None when it was refused (the reason
        is notified)."""
        spec = _spec(action)
        if spec.new_vm:
            return self.request_create()
        if spec.dialog is None:
            raise ValueError(f"{spec.id} is not an action on a VM")
        if self.refuse_read_only(spec):
            return None
        if vm is None and spec.bulk:
            marked = list(self.marked_vms())
            if marked:
                return self.request_bulk(spec, marked)
        if vm is None:
            vm = self.selected_vm()
        if vm is not None and self.refuse_for_host(spec, vm.name):
            return None
        busy = self.runner.active_on(vm.name) if vm is not None else None
        # The checks see the VM as its host names it (the fleet's key is HOST/NAME).
        own_vm = getattr(self.runner, "own_vm", None)
        problem = refusal(spec, own_vm(vm) if own_vm and vm else vm, busy)
        if problem:
            self._refuse(spec, problem)
            return None
        assert vm is not None
        facts = self.plan_for(vm)
        if isinstance(facts, str):  # a remote host that did not answer
            self._refuse(spec, facts)
            return None
        confirm = confirmation(spec, vm, self.host, self.update_restart, self.deploy_source, facts)
        if spec.id == ActionId.DEPLOY:
            from tui.screens.deploy import DeployScreen

            deploy_screen = DeployScreen(
                confirm.title, confirm.body, has_url=bool(self.deploy_source.hydra_url)
            )
            self.app.push_screen(
                deploy_screen, partial(self._deploy_answer, vm.name, confirm.options)
            )
            return deploy_screen
        screen = confirm.screen()
        self.app.push_screen(screen, partial(self._confirmed, spec, vm.name, confirm.options))
        return screen

    def _deploy_answer(self, name: str, options: dict, store_path: str | None) -> None:
        if store_path is not None:
            self.submit(
                ActionId.DEPLOY,
                name,
                source=self.deploy_source,
                store_path=store_path or None,
                **options,
            )

    def _confirmed(
        self, spec: ActionSpec, name: str, options: dict, confirmed: bool | None
    ) -> None:
        if confirmed:
            self.submit(spec, name, **options)

    def request_create(self) -> CreateScreen | None:
        spec = ACTIONS[ActionId.CREATE]
        if self.refuse_read_only(spec) or self.refuse_for_host(spec, None):
            return None
        known = list(self.known_vms())
        from tui.screens.create import CreateScreen

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
            self.submit(ActionId.CREATE, request.name, flake=request.flake, start=request.start)

    def submit(self, action: ActionSpec | str, name: str, **options: Any) -> Job | None:
        """Start the job now (no questions: the caller asked them)."""
        spec = _spec(action)
        if self.refuse_read_only(spec):
            return None
        job = self.runner.submit(str(spec.id), name, **options)
        self.feed.add(job)
        if not job.state.finished:
            notify_outside(
                self.app, f"{job.title} started (job {job.id}); j shows its progress.", timeout=4
            )
        return job

    def running_on(self) -> dict[str, str]:
        """VM name -> title of the job running on it now (the app asks it of the controller)."""
        return self.feed.running_on()

    def quit_question(self) -> Confirmation | None:
        """The question before quitting while jobs run (None: nothing runs)."""
        running = [job for job in self.feed.jobs() if not job.state.finished]
        return dialogs.quit_question(running, self.runner.detaches, self.jobs_note)

    def show_jobs(self) -> JobsScreen:
        from tui.screens.jobs import JobsScreen

        screen = JobsScreen(self.feed, read_only_reason=self.read_only_reason)
        self.app.push_screen(screen)
        return screen

    def shutdown(self, timeout: float = 10.0) -> None:
        """Cancel the running jobs and wait for them (on app exit)."""
        self.feed.close()
        self.runner.shutdown(timeout)
