"""Snapshots of the marks and the bulk confirmation. Refresh with ``pytest
tests/test_bulk_ui_snapshots.py --snapshot-update``, then look at the SVGs."""

from __future__ import annotations

from textual.pilot import Pilot

from tests.test_actions_ui_snapshots import SIZE, Backdrop, settle
from tests.test_actions_ui_support import ActionsTestApp, fake_vms, ready
from tui.actions import dialogs
from tui.host.actions.bulk import plan_bulk
from tui.host.settings import DeploySource


def test_the_table_with_two_vms_marked(snap_compare) -> None:
    async def mark(pilot: Pilot) -> None:
        await ready(pilot)
        app = pilot.app
        assert isinstance(app, ActionsTestApp)
        for name in ("web", "idle"):
            app.select(name)
            await pilot.press("space")
        app.select("db")
        await pilot.pause()

    assert snap_compare(ActionsTestApp(), terminal_size=SIZE, run_before=mark)


def test_the_bulk_update_confirmation_with_a_declarative_vm_skipped(snap_compare) -> None:
    plan = plan_bulk("update", fake_vms())
    screen = lambda: dialogs.bulk(  # noqa: E731
        "Update", plan, builds=1, restarts=4, offers_restart=True
    ).screen()
    assert snap_compare(Backdrop(screen), terminal_size=SIZE, run_before=settle)


def test_the_bulk_deploy_confirmation(snap_compare) -> None:
    source = DeploySource(
        cache="https://cache.example.org", hydra_url="https://ci.example.org/job/{name}/latest"
    )
    plan = plan_bulk("deploy", fake_vms(), restart=True, options={"source": source})
    screen = lambda: dialogs.bulk(  # noqa: E731
        "Deploy", plan, builds=2, restarts=4, offers_restart=True, deploy_from=source
    ).screen()
    assert snap_compare(Backdrop(screen), terminal_size=SIZE, run_before=settle)
