"""The bulk actions: one confirmation for an action on the VMs marked in the table, then one
parent job with a child per VM (``tui.host.actions.bulk`` plans it, the runner runs it).

``BulkRequests`` is a base class of the ``ActionsController``: it sets the attributes
declared here (``feed`` keeps the started job).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING

from tui.actions import dialogs
from tui.actions.job_feed import JobFeed
from tui.actions.refusals import Refusing
from tui.actions.registry import ActionId, ActionSpec, spec_of
from tui.host.actions.bulk import BulkPlan, plan_bulk
from tui.host.actions.jobs import Job
from tui.host.model import VM
from tui.host.settings import DeploySource
from tui.widgets.outside import notify_outside, sanitise

if TYPE_CHECKING:
    from tui.screens.confirm import ConfirmScreen


class BulkRequests(Refusing):
    """Bulk requests, their plan and their job (everything here runs on the app's thread)."""

    deploy_source: DeploySource
    update_restart: str
    bulk_builds: int
    bulk_restarts: int
    feed: JobFeed

    def bulk_plan(self, spec: ActionSpec, vms: Iterable[VM]) -> BulkPlan:
        """What SPEC would do to each of VMS (and which are refused, and why): the host's
        plan, with the VMs another job is busy with refused too."""
        options: dict[str, object] = {}
        if spec.id == ActionId.DEPLOY:
            options["source"] = self.deploy_source
        bulk = plan_bulk(
            str(spec.id),
            list(vms),
            restart=spec.offers_restart and self.update_restart == "always",
            options=options,
        )
        items = []
        # The fleet's runner: a VM whose host changes nothing is refused with its reason.
        refusal_of = getattr(self.runner, "refusal", None)
        for item in bulk.items:
            busy = self.runner.active_on(item.vm)
            if item.refused is None and busy is not None:
                item = replace(item, refused=f"busy: {busy.title} (job {busy.id})")
            why = refusal_of(item.vm) if refusal_of is not None and item.refused is None else None
            if why:
                item = replace(item, refused=why)
            items.append(item)
        return replace(bulk, items=tuple(items))

    def request_bulk(self, spec: ActionSpec, vms: Iterable[VM]) -> ConfirmScreen | None:
        """One confirmation for SPEC on VMS, then one parent job with a child per VM."""
        if self.refuse_read_only(spec) or self.refuse_for_host(spec, None):
            return None
        bulk = self.bulk_plan(spec, vms)
        if spec.id == ActionId.DEPLOY and not self.deploy_source.hydra_url:
            self._refuse(
                spec,
                "A deploy to marked VMs takes each VM's latest build from [deploy] hydra_url, "
                "which is not set: set it, or clear the marks (A) and type a store path.",
            )
            return None
        if not bulk.runs:
            reasons = "; ".join(f"{sanitise(i.vm)}: {i.refused}" for i in bulk.skipped)
            self._refuse(spec, f"None of the marked VMs can be done ({reasons}).")
            return None
        confirm = dialogs.bulk(
            spec.label,
            bulk,
            builds=self.bulk_builds,
            restarts=self.bulk_restarts,
            offers_restart=spec.offers_restart,
            deploy_from=self.deploy_source if spec.id == ActionId.DEPLOY else None,
        )
        screen = confirm.screen()
        self.app.push_screen(screen, partial(self._bulk_confirmed, bulk))
        return screen

    def _bulk_confirmed(self, bulk: BulkPlan, confirmed: bool | None) -> None:
        if confirmed:
            self.submit_bulk(bulk)

    def submit_bulk(self, bulk: BulkPlan) -> Job | None:
        """Start BULK now, as one parent job (no questions: the caller asked them)."""
        spec = spec_of(bulk.action)
        if spec is None:
            raise ValueError(f"unknown action {bulk.action!r}")
        if self.refuse_read_only(spec):
            return None
        job = self.runner.submit_bulk(bulk, builds=self.bulk_builds, restarts=self.bulk_restarts)
        self.feed.add(job)
        notify_outside(
            self.app, f"{job.title} started (job {job.id}); j shows its progress.", timeout=4
        )
        return job
