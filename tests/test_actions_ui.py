"""The actions UI, driven with Pilot: dialogs, refusals, read-only, the jobs panel, progress.

The JobRunner here runs fake actions (tests/test_actions_ui_support.py) so that every state
can be reached without nix; tests/test_actions_lab.py drives the same UI against the lab.
"""

from __future__ import annotations

import threading
import time

import pytest
from textual.widgets import Button, Input, Log, Static

from tests.test_actions_ui_support import (
    DIFF,
    NIX_LOGS,
    WEB_CURRENT,
    WEB_OLD,
    ActionsTestApp,
    Gate,
    commands_action,
    failing,
    fake_vms,
    instant,
    ready,
    record,
    replay,
    runner_with,
    wait_until,
)
from tui.actions import ACTIONS, ActionId, confirmation, refusal, restart_offer
from tui.bindings import bindings_map
from tui.commands import MonitorCommands
from tui.host.actions import plan as action_plan
from tui.host.actions.jobs import Job, JobState
from tui.host.actions.nixlog import parse_log
from tui.host.actions.operations import Outcome
from tui.host.settings import HostSettings
from tui.screens.confirm import ConfirmScreen
from tui.screens.create import CreateScreen, create_problem
from tui.screens.jobs import JobsScreen
from tui.screens.main import MainScreen
from tui.widgets.command_log import CommandLog
from tui.widgets.job_progress import JobProgress
from tui.widgets.jobs_table import JobsTable


@pytest.fixture(autouse=True)
def shutdown_script(monkeypatch: pytest.MonkeyPatch) -> None:
    """The fake runners 'have' bin/microvm-shutdown, like every qemu runner with a socket."""
    monkeypatch.setattr(action_plan, "has_shutdown_script", lambda runner: True)


def vm(name: str):
    return next(v for v in fake_vms() if v.name == name)


def body_of(screen: ConfirmScreen) -> str:
    return str(screen.query_one("#body", Static).content)


def all_instant(calls: list) -> dict:
    return {
        a: instant(a, calls=calls)
        for a in ("start", "stop", "restart", "update", "rollback", "force-stop", "delete")
    }


# --- what each confirmation says -------------------------------------------------------------


def test_confirmation_texts_name_exactly_what_happens() -> None:
    host = HostSettings()
    web = vm("web")
    text = {
        a: str(confirmation(a, web, host).body) for a in ACTIONS if ACTIONS[a].dialog is not None
    }
    assert text["restart"] == (
        "Restart microvm@web.service: the guest is shut down via microvm-shutdown and started "
        f"again from current ({WEB_CURRENT})."
    )
    assert text["start"].startswith(
        f"Start microvm@web.service: the guest boots from current ({WEB_CURRENT})."
    )
    assert "already active: systemd will do nothing" in text["start"]
    assert text["stop"].startswith(
        "Stop microvm@web.service: the guest is shut down via microvm-shutdown"
    )
    assert text["update"].startswith(
        "Update web: build git+file:///etc/nixos#nixosConfigurations.web.config.microvm."
        "declaredRunner (from /var/lib/microvms/web/flake)."
    )
    assert f"old → {WEB_CURRENT} (current now), current → the new build" in text["update"]
    assert "nix store diff-closures" in text["update"]
    assert text["rollback"].startswith(
        f"Roll web back: current → {WEB_OLD} (old now), old → {WEB_CURRENT} (current now)"
    )
    assert "killed with SIGKILL" in text["force-stop"]
    assert "The guest gets no shutdown" in text["force-stop"]
    assert text["delete"].startswith(
        "Delete web: stop microvm@web.service (the guest is shut down via microvm-shutdown), "
        "then remove /var/lib/microvms/web and everything in it "
        "(volumes: /var/lib/microvms/web/web-data.img), and its GC roots in "
        "/nix/var/nix/gcroots/microvm (web, booted-web, old-web)."
    )
    assert "This cannot be undone." in text["delete"]
    typed = {a for a in text if confirmation(a, web, host).typed_name == "web"}
    assert typed == {"force-stop", "delete"}

    db = vm("db")  # stale: the restart applies current
    restart_db = str(confirmation("restart", db, host).body)
    assert "now: the restart applies current" in restart_db
    idle = vm("idle")  # stopped: a restart just starts it
    assert "it is inactive now, so it is just started from current" in str(
        confirmation("restart", idle, host).body
    )
    never = str(confirmation("update", web, host, "never").body)
    assert "restart microvm@web.service yourself" in never
    always = confirmation("update", web, host, "always")
    assert always.options == {"restart": True}
    assert confirmation("update", web, host, "ask").options == {"restart": False}


def test_refusals_before_any_dialog() -> None:
    decl, web = vm("decl"), vm("web")
    for action in ("update", "rollback", "delete"):
        reason = refusal(action, decl)
        assert reason is not None and "managed fully declaratively" in reason
        assert "change microvm.vms.decl in the host's configuration" in reason
    assert refusal("restart", decl) is None  # its unit can still be restarted
    assert refusal("rollback", vm("db")) == (
        "db has no 'old' runner to roll back to (it has not been updated here)."
    )
    assert refusal("start", None) == "Select a VM first."
    busy = Job(id=7, action="update", vm="web", state=JobState.RUNNING)
    assert refusal("update", web, busy) == (
        "update web (job 7) is still running on web: wait for it, or cancel it in the jobs "
        "panel (j)."
    )
    bad = vm("web")
    bad.name = "-rf"
    assert "characters systemd and microvm.nix do not accept" in (refusal("stop", bad) or "")


def test_bindings_have_ids_and_do_not_clash_with_the_app() -> None:
    keys = {s.keys: s.id for s in ACTIONS.values() if s.changes_host or s.id == ActionId.JOBS}
    assert keys == {
        "t": "start",
        "T": "stop",
        "R": "restart",
        "u": "update",
        "b": "rollback",
        "P": "deploy",
        "n": "create",
        "K": "force-stop",
        "D": "delete",
        "j": "jobs",
    }
    taken = {"r", "q", "question_mark", "ctrl+p", "c"}  # the app's (c: the console)
    taken |= {key for key, _ in bindings_map(MainScreen)}  # s/S sort, d, /, [, ], digits
    assert not set(keys) & taken


# --- dialogs through the keys ------------------------------------------------------------------


KEYS = [
    ("t", "idle", "Start idle?", None),
    ("T", "web", "Stop web?", None),
    ("R", "web", "Restart web?", None),
    ("u", "web", "Update web?", None),
    ("b", "web", "Roll web back?", None),
    ("K", "web", "Force stop web?", "web"),
    ("D", "web", "Delete web?", "web"),
]


async def test_each_key_shows_its_confirmation_and_escape_does_nothing() -> None:
    calls: list = []
    app = ActionsTestApp(runner=runner_with(all_instant(calls)))
    async with app.run_test() as pilot:
        await ready(pilot)
        for key, vm_name, title, typed in KEYS:
            app.select(vm_name)
            await pilot.press(key)
            screen = app.screen
            assert isinstance(screen, ConfirmScreen), key
            assert screen.title_text == title
            assert screen.typed_name == typed
            await pilot.press("escape")
            await pilot.pause()
            assert not isinstance(app.screen, ConfirmScreen)
    assert calls == []


async def test_confirming_runs_the_job_and_says_so() -> None:
    calls: list = []
    app = ActionsTestApp(runner=runner_with(all_instant(calls)))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press("R")
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.focused is app.screen.query_one("#confirm", Button)
        await pilot.press("enter")
        await wait_until(pilot, lambda: any(j.state.finished for j in app.actions.feed.jobs()))
        assert calls == [("restart", "web", {})]
        job = app.actions.feed.jobs()[0]
        assert job.state is JobState.SUCCEEDED
        await wait_until(
            pilot, lambda: any("restarted web" in n.message for n in app._notifications)
        )


@pytest.mark.parametrize("key", ["D", "K"])
async def test_typed_name_dialogs_refuse_a_wrong_name(key: str) -> None:
    calls: list = []
    app = ActionsTestApp(runner=runner_with(all_instant(calls)))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press(key)
        screen = app.screen
        assert isinstance(screen, ConfirmScreen)
        confirm = screen.query_one("#confirm", Button)
        assert confirm.disabled
        await pilot.press("enter")  # nothing typed
        assert app.screen is screen
        assert "Nothing typed: nothing was done." in str(
            screen.query_one("#typed-error", Static).content
        )
        await pilot.press("w", "e", "b", "2", "enter")
        await pilot.pause()
        assert app.screen is screen
        assert confirm.disabled
        assert "'web2' is not 'web': nothing was done." in str(
            screen.query_one("#typed-error", Static).content
        )
        await pilot.click("#confirm")  # disabled: no effect
        assert app.screen is screen
        assert calls == []
        await pilot.press("backspace")
        assert not confirm.disabled
        await pilot.press("enter")
        await wait_until(pilot, lambda: calls)
        assert calls == [({"D": "delete", "K": "force-stop"}[key], "web", {})]


async def test_read_only_disables_every_change_and_says_why() -> None:
    calls: list = []
    reason = "not running as root: actions are off"
    app = ActionsTestApp(runner=runner_with(all_instant(calls)), read_only_reason=reason)
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        for key in ("t", "T", "R", "u", "b", "n", "K", "D"):
            await pilot.press(key)
            await pilot.pause()
            assert not isinstance(app.screen, (ConfirmScreen, CreateScreen)), key
        assert app.check_action("vm_action", ("start",)) is None  # shown, disabled
        assert app.check_action("create_vm", ()) is None
        assert app.check_action("jobs", ()) is True
        active = app.screen.active_bindings
        assert active["t"].enabled is False and active["D"].enabled is False
        assert active["t"].tooltip == f"read-only: {reason}"
        assert active["j"].enabled is True
        assert app.actions.request("restart") is None
        await pilot.pause()
        assert any(n.message == f"read-only: {reason}." for n in app._notifications)
        provider = MonitorCommands(app.screen)  # the palette: chosen, each says why
        for spec in ACTIONS.values():
            if not spec.changes_host:
                continue
            title = f"{spec.label} web" if spec.needs_vm else spec.description
            app.clear_notifications()
            await provider._runner(next(c for c in provider.commands() if c.title == title))()
            await pilot.pause()
            assert not isinstance(app.screen, (ConfirmScreen, CreateScreen)), title
            assert [n.message for n in app._notifications] == [f"read-only: {reason}."], title
        await pilot.press("j")  # looking is still fine
        assert isinstance(app.screen, JobsScreen)
    assert calls == []


async def test_declarative_update_and_a_second_update_are_refused_with_the_reason() -> None:
    gate = Gate()
    app = ActionsTestApp(runner=runner_with({"update": gate.action("update")}))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("decl")
        await pilot.press("u")
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any("decl is managed fully declaratively" in n.message for n in app._notifications)
        app.select("web")
        await pilot.press("u")
        await pilot.press("enter")
        await wait_until(pilot, gate.started.is_set)
        await pilot.press("u")  # the same VM again while its update runs
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
        assert any(
            n.message.startswith("update web (job 1) is still running on web")
            for n in app._notifications
        )
        # And if it slips past the dialog (a race), the runner refuses it too.
        second = app.actions.submit("update", "web")
        assert second is not None and second.state is JobState.FAILED
        assert "another job is running on web" in (second.result or "")
        gate.release()
        await wait_until(pilot, lambda: app.actions.feed.job(1).state.finished)
    assert len(gate.calls) == 1


async def test_update_shows_the_diff_and_asks_before_restarting() -> None:
    calls: list = []
    outcome = Outcome(
        "updated web: 0v3kq1c0…-microvm-qemu-web -> 4f5g6h7j…-microvm-qemu-web; restart "
        "microvm@web.service to run it",
        changed=True,
        restart_needed=True,
        diff=DIFF,
        out_path="/nix/store/4f5g6h7j8k9l0m1n2p3q4r5s6t7v8w9x-microvm-qemu-web",
    )
    actions = {
        "update": instant("update", outcome, calls),
        "restart": instant("restart", None, calls),
    }
    app = ActionsTestApp(runner=runner_with(actions))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press("u", "enter")
        offer = await wait_until(
            pilot, lambda: isinstance(app.screen, ConfirmScreen) and app.screen, what="the offer"
        )
        assert offer.title_text == "Restart web?"
        assert str(offer.query_one("#details-text", Static).content) == DIFF.rstrip("\n")
        assert offer.query_one("#details").border_title == "nix store diff-closures"
        assert "Restart microvm@web.service now" in body_of(offer)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(calls) == 2)
    assert calls == [("update", "web", {"restart": False}), ("restart", "web", {})]


@pytest.mark.parametrize("policy", ["always", "never"])
async def test_update_restart_setting_skips_the_question(policy: str) -> None:
    calls: list = []
    outcome = Outcome("updated web", changed=True, restart_needed=policy == "never", diff=DIFF)
    app = ActionsTestApp(
        runner=runner_with({"update": instant("update", outcome, calls)}), update_restart=policy
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("web")
        await pilot.press("u", "enter")
        await wait_until(
            pilot, lambda: app.actions.feed.jobs() and app.actions.feed.jobs()[0].state.finished
        )
        await pilot.pause()
        assert not isinstance(app.screen, ConfirmScreen)
    assert calls == [("update", "web", {"restart": policy == "always"})]


def test_restart_offer_without_package_changes() -> None:
    job = Job(
        id=3,
        action="rollback",
        vm="web",
        state=JobState.SUCCEEDED,
        outcome=Outcome("rolled web back", changed=True, restart_needed=True, out_path=WEB_OLD),
    )
    offer = restart_offer(job, action_plan.plan(vm("web"), HostSettings()))
    assert offer.details is None
    assert f"started again from current ({WEB_OLD})" in str(offer.body)
    job.outcome = Outcome("updated", changed=True, restart_needed=True, diff="", out_path=WEB_OLD)
    assert restart_offer(job, None).details == "(no package changes)"


# --- create ------------------------------------------------------------------------------------


def test_create_problem(tmp_path) -> None:
    (tmp_path / "web").mkdir()
    assert create_problem("", "x", tmp_path) == "The name is empty."
    assert "characters systemd and microvm.nix do not accept" in (
        create_problem("../etc", "x", tmp_path) or ""
    )
    assert (
        create_problem("web", "x", tmp_path) == f"{tmp_path}/web already exists: pick another name."
    )
    assert create_problem("db", "x", tmp_path, existing={"db"}) is not None
    assert "spaces" in (create_problem("new", "a b", tmp_path) or "")
    assert "'#'" in (create_problem("new", "path:/x#y", tmp_path) or "")
    assert create_problem("new", "path:/x", tmp_path) is None


async def test_create_dialog_validates_the_name_before_anything_runs(tmp_path) -> None:
    calls: list = []
    from tui.config import Settings

    settings = Settings(host=HostSettings(state_dir=tmp_path))
    app = ActionsTestApp(
        settings=settings, runner=runner_with({"create": instant("create", None, calls)})
    )
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("n")
        screen = app.screen
        assert isinstance(screen, CreateScreen)
        flake = screen.query_one("#flake", Input)
        assert flake.value == "git+file:///etc/nixos"
        create = screen.query_one("#create", Button)
        assert create.disabled
        await pilot.press(*"we/b")
        await pilot.press("enter")
        assert app.screen is screen
        problem = str(screen.query_one("#problem", Static).content)
        assert "characters systemd and microvm.nix do not accept" in problem
        assert create.disabled
        screen.query_one("#name", Input).value = "web"  # exists (in the inventory)
        await pilot.pause()
        assert "already exists" in str(screen.query_one("#problem", Static).content)
        screen.query_one("#name", Input).value = "extra1"
        flake.value = "path:/srv/flake#x"
        await pilot.pause()
        assert "'#'" in str(screen.query_one("#problem", Static).content)
        flake.value = "path:/srv/flake"
        await pilot.click("#start")
        await pilot.pause()
        assert not create.disabled
        plan = str(screen.query_one("#plan", Static).content)
        assert plan.startswith(
            "Builds path:/srv/flake#nixosConfigurations.extra1.config.microvm.declaredRunner, "
            f"then moves it into place as {tmp_path}/extra1"
        )
        assert "then starts microvm@extra1.service" in plan
        assert calls == []
        await pilot.click("#create")
        await wait_until(pilot, lambda: calls)
    assert calls == [("create", "extra1", {"flake": "path:/srv/flake", "start": True})]


# --- the jobs panel and the progress -----------------------------------------------------------


async def test_jobs_panel_shows_a_running_and_a_failed_job_and_cancels() -> None:
    gate = Gate()
    actions = {
        "update": gate.action("update", lines=("building web", "still building")),
        "start": failing("systemctl start microvm@idle.service failed", "Job failed: see journal"),
    }
    app = ActionsTestApp(runner=runner_with(actions))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.actions.submit("update", "web")
        app.actions.submit("start", "idle")
        await wait_until(
            pilot, lambda: app.actions.feed.job(2) and app.actions.feed.job(2).state.finished
        )
        await wait_until(pilot, lambda: "still building" in app.actions.feed.job(1).log)
        await pilot.press("j")
        screen = app.screen
        assert isinstance(screen, JobsScreen)
        table = screen.query_one(JobsTable)
        assert table.row_count == 2
        assert str(table.get_cell("1", "state")).endswith("running")
        assert str(table.get_cell("2", "state")) == "✖ failed"
        assert str(table.get_cell("2", "result")).startswith(
            "systemctl start microvm@idle.service failed: Job failed"
        )
        assert table.selected_id == 2  # the newest
        log = screen.query_one("#job-log", Log)
        assert "building idle" in log.lines
        progress = screen.query_one(JobProgress)
        assert progress.job is not None and progress.job.id == 2
        await pilot.press("up")
        assert table.selected_id == 1
        await wait_until(pilot, lambda: list(log.lines) == ["building web", "still building"])
        # Jobs keep running while the admin navigates.
        await pilot.press("escape")
        assert not isinstance(app.screen, JobsScreen)
        assert not app.actions.feed.job(1).state.finished
        await pilot.press("j")
        screen = app.screen
        screen.query_one(JobsTable).select_id(1)
        await pilot.press("x")
        await wait_until(pilot, lambda: app.actions.feed.job(1).state is JobState.CANCELLED)
        await wait_until(
            pilot,
            lambda: str(screen.query_one(JobsTable).get_cell("1", "state")) == "■ cancelled",
        )


async def test_a_job_started_while_the_panel_is_open_shows_up() -> None:
    app = ActionsTestApp(runner=runner_with({"stop": instant("stop")}))
    async with app.run_test() as pilot:
        await ready(pilot)
        await pilot.press("j")
        screen = app.screen
        assert screen.query_one("#no-jobs").display
        app.actions.submit("stop", "web")
        await wait_until(pilot, lambda: screen.query_one(JobsTable).row_count == 1)
        await wait_until(
            pilot, lambda: str(screen.query_one(JobsTable).get_cell("1", "state")) == "✔ succeeded"
        )
        assert not screen.query_one("#no-jobs").display
        assert screen.query_one(JobProgress).job.id == 1


async def test_progress_is_fed_from_a_recorded_build_log() -> None:
    gate = threading.Event()
    actions = {
        "update": replay("build-ok.log", stop_after="building the runner of web", gate=gate),
        "create": replay("build-failed.log", fail="nix build failed"),
    }
    app = ActionsTestApp(runner=runner_with(actions))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.actions.submit("update", "web")
        await wait_until(
            pilot,
            lambda: (j := app.actions.feed.job(1)) and j.progress and j.progress.log_tail,
        )
        await pilot.press("j")
        progress = app.screen.query_one(JobProgress)
        shown = "\n".join(str(line) for line in progress.render().renderables)
        assert "1/2 built, 1 building" in shown
        assert "building microvm-qemu-web" in shown
        assert "│ building the runner of web" in shown
        gate.set()
        await wait_until(pilot, lambda: app.actions.feed.job(1).state.finished)
        shown = "\n".join(str(line) for line in progress.render().renderables)
        assert "2/2 built" in shown
        assert "→ built web" in shown

        app.actions.submit("create", "bad")
        await wait_until(pilot, lambda: app.actions.feed.job(2).state.finished)
        app.screen.query_one(JobsTable).select_id(2)
        await pilot.pause()
        shown = "\n".join(str(line) for line in progress.render().renderables)
        assert "0/1 built, 1 failed" in shown
        # Nix's error, once: in the closing message (the job's result).
        assert (
            "→ nix build failed: builder for "
            "'/nix/store/8kl62q2b5bgay2ins5h90mjfg4ar5bvr-microvm-qemu-bad.drv' failed with "
            "exit code 1" in shown.replace("\n  ", " ")
        )
        assert shown.count("failed with exit code 1") == 1
        assert "│ oops: broken on purpose" in shown
        log = app.screen.query_one("#job-log", Log)
        assert "microvm-qemu-bad> oops: broken on purpose" in log.lines


def test_recorded_logs_parse_to_the_numbers_shown() -> None:
    ok = parse_log((NIX_LOGS / "build-ok.log").read_text(), success=True)
    assert ok.summary() == "2/2 built"
    sub = parse_log((NIX_LOGS / "substitute.log").read_text(), success=True)
    assert "copied" in sub.summary()


async def test_command_log_shows_every_command_with_exit_and_duration() -> None:
    now = time.time()
    records = [
        record(("nix", "build", "--log-format", "internal-json", "--", "path:/f#x"), 0, 12.5, now),
        record(("systemctl", "--user", "restart", "microvm@web.service"), 1, 0.25, now + 13),
        record(("nosuchtool",), None, 0.0, now + 14),
    ]
    app = ActionsTestApp(runner=runner_with({"update": commands_action(records)}))
    async with app.run_test(size=(120, 40)) as pilot:
        await ready(pilot)
        app.actions.submit("update", "web")
        await wait_until(pilot, lambda: len(app.actions.feed.command_log()) == 3)
        await pilot.press("j", "o")
        log = app.screen.query_one(CommandLog)
        assert log.row_count == 3
        rows = [[str(c) for c in log.get_row_at(i)] for i in range(3)]
        assert rows[0][1:] == [
            "1",
            "exit 0",
            "12.5 s",
            "nix build --log-format internal-json -- 'path:/f#x'",
        ]
        assert rows[1][2:4] == ["exit 1", "0.25 s"]
        assert rows[2][2] == "cannot run: not found"


async def test_command_palette_lists_the_actions_for_the_selected_vm() -> None:
    app = ActionsTestApp(runner=runner_with({"start": instant("start")}))
    async with app.run_test() as pilot:
        await ready(pilot)
        app.select("idle")
        await pilot.pause()
        provider = MonitorCommands(app.screen)
        commands = {c.title: c for c in provider.commands()}
        assert {
            "Start idle",
            "Stop idle",
            "Restart idle",
            "Update idle",
            "Rollback idle",
            "Force stop idle",
            "Delete idle",
            "New VM",
            "Jobs",
        } <= set(commands)
        assert commands["Start idle"].help.endswith(" · key t")
        await provider._runner(commands["Start idle"])()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmScreen)
        assert app.screen.title_text == "Start idle?"
