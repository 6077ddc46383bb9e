"""Marks in the VM table, bulk actions on the marked VMs, and the deploy dialog, through the
app's keys (the actions' test app: the real MainScreen, controller and JobRunner, with fake
actions where the host would be changed)."""

from __future__ import annotations

from textual.widgets import Input, Static

from tests.test_actions_ui_support import (
    WEB_CURRENT,
    ActionsTestApp,
    Gate,
    instant,
    ready,
    runner_with,
    wait_until,
)
from tui.config import Settings
from tui.host.actions.jobs import JobState
from tui.host.actions.operations import Outcome
from tui.host.settings import DeploySource
from tui.screens.confirm import ConfirmScreen
from tui.screens.deploy import DeployScreen
from tui.screens.jobs import JobsScreen
from tui.widgets.host_header import HostHeader
from tui.widgets.jobs_table import JobsTable
from tui.widgets.vm_table import MARK

NEW_WEB = "/nix/store/4f5g6h7j8k9l0m1n2p3q4r5s6v7w8x9z-microvm-qemu-web"


def header(app: ActionsTestApp) -> str:
    return app.main_screen.query_one(HostHeader).text.plain


def name_cell(app: ActionsTestApp, name: str) -> str:
    return app.main_screen.table.get_cell(name, "name").plain


async def test_space_marks_a_and_A_mark_shown_and_clear_counted_in_the_header() -> None:
    app = ActionsTestApp()
    async with app.run_test() as pilot:
        await ready(pilot)
        screen = app.main_screen
        assert "marked" not in header(app)
        first, second = screen.table.order[:2]
        app.select(first)
        await pilot.press("space")
        assert screen.marks == {first}
        assert name_cell(app, first).startswith(f"{MARK} ")
        assert not name_cell(app, second).startswith(MARK)
        assert "1 marked" in header(app)
        # The cursor moved on: space again marks the next row.
        assert screen.selected_name == second
        await pilot.press("space")
        assert screen.marks == {first, second} and "2 marked" in header(app)
        app.select(first)
        await pilot.press("space")  # unmarks
        assert screen.marks == {second} and "1 marked" in header(app)
        await pilot.press("A")
        assert screen.marks == set() and "marked" not in header(app)
        assert not any(name_cell(app, n).startswith(MARK) for n in screen.table.order)
        # "a" marks what the filter shows, not the hidden VMs.
        screen.table.set_filter("web")
        await pilot.pause()
        await pilot.press("a")
        assert screen.marks == {"web"}
        screen.table.set_filter("")
        await pilot.pause()
        await pilot.press("a")
        assert screen.marks == {"web", "db", "decl", "idle"} and "4 marked" in header(app)
        assert [vm.name for vm in app.marked_vms()] == ["web", "db", "decl", "idle"]


async def test_the_bulk_dialog_lists_every_vm_and_the_refused_with_reasons() -> None:
    calls: list = []
    app = ActionsTestApp(runner=runner_with({"update": instant("update", calls=calls)}))
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("a", "u")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.title_text == "Update 3 marked VMs? (1 skipped)"
        body = screen.body.plain
        for name in ("web", "db", "idle"):
            assert f"✔ {name}" in body
        assert "build from its flake and switch current" in body
        assert "decl  skipped: declarative: change it in the host's configuration" in body
        assert "1 at a time" in body  # [bulk] builds
        await pilot.press("escape")
        await pilot.pause()
    assert calls == []


async def test_a_bulk_action_that_refuses_every_marked_vm_says_why() -> None:
    app = ActionsTestApp(runner=runner_with({"rollback": instant("rollback")}))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("db")
        await pilot.press("space")  # db: nothing to roll back to
        await pilot.press("b")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("db: no 'old' runner to roll back to" in n.message for n in app._notifications)


async def test_confirming_a_bulk_restart_runs_one_parent_with_a_child_per_vm() -> None:
    gate = Gate()
    app = ActionsTestApp(
        runner=runner_with({"restart": gate.action("restart")}),
        settings=Settings(bulk_restarts=2),
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press("space")
        app.select("db")
        await pilot.press("space")
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmScreen)
        assert "2 at a time" in app.screen.body.plain
        await pilot.press("enter")
        jobs = await wait_until(
            pilot,
            lambda: len(app.actions.feed.jobs()) == 3 and app.actions.feed.jobs(),
            what="3 jobs",
        )
        parent = jobs[0]
        assert parent.action == "bulk restart" and parent.parent is None
        assert sorted(j.vm for j in jobs[1:]) == ["db", "web"]
        assert all(j.parent == parent.id for j in jobs[1:])
        # The jobs panel: the children right under the parent, indented.
        await pilot.press("j")
        panel = app.screen
        assert isinstance(panel, JobsScreen)
        table = panel.query_one(JobsTable)
        rows = [table.get_cell(k, "action").plain for k in table.rows]
        assert rows == ["bulk restart", "  └ restart", "  └ restart"]
        gate.release()
        done = await wait_until(
            pilot, lambda: (j := app.actions.feed.job(parent.id)) and j.state.finished and j
        )
        assert done.state is JobState.SUCCEEDED and done.result == "2 done"
        await wait_until(
            pilot,
            lambda: any(n.message == "2 done" for n in app._notifications),
            what="the summary",
        )
        # One notification for the whole: none per child.
        assert not any("restart web: done" in n.message for n in app._notifications)


async def test_cancelling_the_parent_cancels_the_children() -> None:
    gate = Gate()
    app = ActionsTestApp(
        runner=runner_with({"stop": gate.action("stop")}), settings=Settings(bulk_restarts=1)
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        for name in ("web", "db"):
            app.select(name)
            await pilot.press("space")
        await pilot.press("T", "enter")
        parent = await wait_until(
            pilot,
            lambda: next((j for j in app.actions.feed.jobs() if j.action == "bulk stop"), None),
        )
        await wait_until(pilot, gate.started.is_set, what="the first child")
        assert app.actions.feed.cancel_job(parent.id)
        ended = await wait_until(
            pilot, lambda: (j := app.actions.feed.job(parent.id)) and j.state.finished and j
        )
        assert ended.state is JobState.CANCELLED
        assert "cancelled" in (ended.result or "")
        children = [j for j in app.actions.feed.jobs() if j.parent == parent.id]
        assert len(children) == 1  # one at a time: the second never started
        assert all(j.state is JobState.CANCELLED for j in children)
        assert len(gate.calls) == 1


async def test_the_deploy_dialog_takes_a_store_path_or_the_latest_build() -> None:
    calls: list = []
    source = DeploySource(cache="file:///var/cache/ci", hydra_url="http://127.0.0.1:1/{name}")
    app = ActionsTestApp(
        runner=runner_with({"deploy": instant("deploy", calls=calls)}),
        settings=Settings(deploy=source),
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press("P")
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        body = screen.body.plain
        assert "nix copy --from file:///var/cache/ci" in body
        assert "nix checks its signatures" in body
        assert "the latest build from http://127.0.0.1:1/web" in body
        await pilot.press(*"/tmp/x", "enter")
        assert app.screen is screen  # refused, the dialog stays
        error = screen.query_one("#typed-error", Static).render()
        assert "not a store path" in str(error)
        screen.query_one("#store-path", Input).value = NEW_WEB
        await pilot.press("enter")
        await wait_until(pilot, lambda: calls, what="the deploy")
        assert calls == [
            ("deploy", "web", {"source": source, "store_path": NEW_WEB, "restart": False})
        ]
        # Empty: the latest build from the URL.
        await wait_until(pilot, lambda: not app.actions.running_on())
        await pilot.press("P", "enter")
        await wait_until(pilot, lambda: len(calls) == 2, what="the second deploy")
        assert calls[1][2]["store_path"] is None


async def test_without_a_url_the_deploy_dialog_wants_a_path_and_says_sigs_are_off() -> None:
    app = ActionsTestApp(
        runner=runner_with({"deploy": instant("deploy")}),
        settings=Settings(deploy=DeploySource(cache="file:///c", check_sigs=False)),
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press("P")
        screen = app.screen
        assert isinstance(screen, DeployScreen)
        assert "signatures are NOT checked" in screen.body.plain
        await wait_until(pilot, lambda: screen.focused is screen.query_one("#store-path"))
        await pilot.press("enter")
        assert app.screen is screen
        assert "hydra_url is not set" in str(screen.query_one("#typed-error", Static).render())
        assert app.actions.feed.jobs() == []


async def test_a_deploy_that_switched_the_runner_offers_the_restart() -> None:
    outcome = Outcome(
        "deployed web", changed=True, restart_needed=True, diff="linux: 6.1 → 6.2", out_path=NEW_WEB
    )
    app = ActionsTestApp(runner=runner_with({"deploy": instant("deploy", outcome)}))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press("P")
        app.screen.query_one("#store-path", Input).value = NEW_WEB
        await pilot.press("enter")
        offer = await wait_until(
            pilot,
            lambda: isinstance(app.screen, ConfirmScreen) and app.screen,
            what="the restart offer",
        )
        assert offer.title_text == "Restart web?"
        assert offer.details is not None and "linux: 6.1 → 6.2" in offer.details.plain


async def test_bulk_deploy_takes_the_latest_build_per_vm_and_needs_the_url() -> None:
    calls: list = []
    app = ActionsTestApp(
        runner=runner_with({"deploy": instant("deploy", calls=calls)}),
        settings=Settings(deploy=DeploySource(cache="file:///c")),
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("a", "P")
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("hydra_url" in n.message for n in app._notifications)
    source = DeploySource(cache="file:///c", hydra_url="http://127.0.0.1:1/{name}")
    app = ActionsTestApp(
        runner=runner_with({"deploy": instant("deploy", calls=calls)}),
        settings=Settings(deploy=source),
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("a", "P")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert "latest build from http://127.0.0.1:1/{name}" in screen.body.plain
        assert "decl  skipped: declarative" in screen.body.plain
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(calls) == 3, what="3 deploys")
    assert sorted(c[1] for c in calls) == ["db", "idle", "web"]
    assert all(c[2] == {"source": source} for c in calls)
    assert WEB_CURRENT  # the fake VMs' runner (the dialog's old → current)


async def test_a_vm_another_job_is_busy_with_is_skipped_with_the_job_named() -> None:
    gate = Gate()
    app = ActionsTestApp(
        runner=runner_with({"restart": gate.action("restart"), "stop": instant("stop")})
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        busy = app.actions.submit("restart", "web")
        assert busy is not None
        await wait_until(pilot, gate.started.is_set, what="the restart of web")
        for name in ("web", "db"):
            app.select(name)
            await pilot.press("space")
        await pilot.press("T")
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        assert screen.title_text == "Stop 1 marked VM? (1 skipped)"
        assert f"web  skipped: busy: restart web (job {busy.id})" in screen.body.plain
        await pilot.press("escape")
        gate.release()
