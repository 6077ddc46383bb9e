"""Bulk actions and deploy through the app, against the lab: real systemd, real QEMU, real
`nix copy` from the lab's signed cache (the VMs the lab keeps running: web and console; the
stopped one: idle)."""

from __future__ import annotations

import os

import pytest

from tests.test_actions_ui_support import ActionsTestApp, ready, wait_until
from tui.config import load_settings
from tui.host.actions import operations as ops
from tui.host.actions.jobs import JobState
from tui.host.inventory import list_vms
from tui.screens.confirm import ConfirmScreen
from tui.screens.deploy import DeployScreen

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]

RESTART_S = 300.0  # two lab guests shut down and boot again under TCG, on a loaded machine
DEPLOY_S = 300.0  # nix copy from the lab's file:// cache and the switch


def lab_app(lab) -> ActionsTestApp:  # type: ignore[no-untyped-def]
    settings = load_settings(lab.config_path)
    return ActionsTestApp(
        settings=settings, list_vms=lambda: list_vms(lab.settings, links=False).vms
    )


async def test_bulk_restart_of_two_running_lab_vms_ends_with_2_done(lab) -> None:  # type: ignore[no-untyped-def]
    app = lab_app(lab)
    async with app.run_test() as pilot:
        await ready(pilot)
        for name in ("web", "console"):
            app.select(name)
            await pilot.press("space")
        assert app.main_screen.marks == {"web", "console"}
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.title_text == "Restart 2 marked VMs?"
        await pilot.press("enter")
        parent = await wait_until(
            pilot,
            lambda: next((j for j in app.actions.feed.jobs() if j.action == "bulk restart"), None),
        )
        done = await wait_until(
            pilot,
            lambda: (j := app.actions.feed.job(parent.id)) and j.state.finished and j,
            RESTART_S,
            "the bulk restart",
        )
        assert done.state is JobState.SUCCEEDED, done.result
        assert done.result == "2 done"
        children = [j for j in app.actions.feed.jobs() if j.parent == parent.id]
        assert sorted(j.vm for j in children) == ["console", "web"]
        assert all(j.state is JobState.SUCCEEDED for j in children)
        await wait_until(pilot, lambda: any(n.message == "2 done" for n in app._notifications))
    for vm in list_vms(lab.settings, links=False).vms:
        if vm.name in ("web", "console"):
            assert vm.unit is not None and vm.unit.active == "active", vm.name


async def test_deploy_what_ci_published_through_the_app(lab) -> None:  # type: ignore[no-untyped-def]
    settings = load_settings(lab.config_path)
    vm_dir = settings.host.state_dir / "idle"
    before = os.readlink(vm_dir / "current")
    published = lab.buildserver.publish(lab.flake_dir, "idle", 43)
    assert published != before
    app = lab_app(lab)
    try:
        async with app.run_test() as pilot:
            await ready(pilot)
            app.select("idle")
            await pilot.press("P")
            screen = app.screen
            assert isinstance(screen, DeployScreen)
            assert f"nix copy --from {settings.deploy.cache}" in screen.body.plain
            await wait_until(pilot, lambda: screen.focused is screen.query_one("#store-path"))
            await pilot.press("enter")  # empty: the latest build from the lab's build server
            job = await wait_until(
                pilot,
                lambda: next(
                    (
                        j
                        for j in app.actions.feed.jobs()
                        if j.action == "deploy" and j.state.finished
                    ),
                    None,
                ),
                DEPLOY_S,
                "the deploy",
            )
            assert job.state is JobState.SUCCEEDED, job.result
            assert os.readlink(vm_dir / "current") == published
            assert os.readlink(vm_dir / "old") == before
            assert "lab.ci-build=43" in (vm_dir / "current" / "bin" / "microvm-run").read_text()
    finally:
        if os.readlink(vm_dir / "current") != before:
            ops.rollback(settings.host, "idle")
    assert os.readlink(vm_dir / "current") == before
