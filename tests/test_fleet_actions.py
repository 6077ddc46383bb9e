"""Actions and the jobs panel in the fleet view (``--all-hosts``), over real ssh to a real sshd
on loopback (the lab's LabSshd, without the rest of the lab) against FakeAgent's ``jobs`` mode
(tests/fixtures/agent/fake_agent.py: a host of one VM web whose jobs end saying which VM they
were asked for): an action on ``far/web`` reaches far's agent as ``web``, with its dialog's
facts from far; one on ``here/web`` runs in this host's runner; a read-only host refuses with
its own reason in one line; the jobs panel lists both hosts' jobs, each title naming its host;
marked VMs on both hosts run as one parent job here with a child on each host. The real
thing over the lab: test_jobs_remote_lab.py.

This host's runner runs a recorded operation (``instant``): a real restart needs the lab.
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until_in_app
from tests.monitor_support import replay
from tests.test_actions_ui_support import instant, runner_with
from tui.actions import ActionId
from tui.agent.client import RemoteSource
from tui.agent.hosts import RemoteHost
from tui.config import Settings
from tui.host.actions.jobs import JobState
from tui.host.text import is_clean
from tui.lab.sshd import LabSshd

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "fixtures" / "agent" / "fake_agent.py"


@pytest.fixture(scope="module")
def sshd() -> Iterator[LabSshd]:
    from tests.conftest import lab_sshd

    with lab_sshd("fleetjobs") as server:
        yield server


@pytest.fixture
def here_calls(monkeypatch: pytest.MonkeyPatch) -> list:
    """What this host's runner was asked to run (its restart: a recorded operation)."""
    calls: list = []
    import tui.agent.fleet_jobs as fleet_jobs

    def local_runner(settings: Any, units: Any = None) -> Any:
        return runner_with({"restart": instant("restart", calls=calls)})

    monkeypatch.setattr(fleet_jobs, "JobRunner", local_runner)
    return calls


def fleet_app(
    sshd: LabSshd, mode: str = "jobs", far_read_only: bool = False, **changes: Any
) -> Any:
    """This host ("here": the recorded lab's VMs) and host "far" (FakeAgent MODE: web;
    FAR_READ_ONLY: ``read_only = true`` in its [hosts.far])."""
    from tui.app import MicroVMApp
    from tui.feed.fleet import FLEET_REMOTE, FleetSource

    agent = f"exec {sys.executable} {FAKE} {mode}"
    far = RemoteHost("far", tuple(sshd.ssh_args()), agent, read_only=far_read_only)
    settings = dataclasses.replace(Settings(interval=3600.0, hosts={"far": far}), **changes)
    remote = RemoteSource(far, interval=0.3, persist="no")
    source = FleetSource({"here": replay(), "far": remote}, local="here", interval=3600.0)
    return MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE)


async def on_fleet_row(pilot: Any, key: str) -> None:
    app = pilot.app
    fleet = app.fleet_screen()
    await until_in_app(
        pilot,
        lambda: app.screen is fleet and key in fleet.table.keys,
        30,
        what=f"{key} on the fleet view",
    )
    fleet.table.move_cursor(row=fleet.table.get_row_index(key))
    await pilot.pause()


async def restart_from_fleet(pilot: Any, key: str) -> Any:
    """r on KEY's fleet row, and the dialog confirmed; the dialog."""
    from tui.screens.confirm import ConfirmScreen

    app = pilot.app
    await on_fleet_row(pilot, key)
    await pilot.press("R")
    dialog = await until_in_app(
        pilot,
        lambda: (
            isinstance(app.screen, ConfirmScreen) and app.screen.query("#confirm") and app.screen
        ),
        30,
        what=f"the restart dialog of {key}",
    )
    title = dialog.title_text
    await pilot.press("enter")
    return title


def finished(app: Any, vm: str) -> Any:
    return next((j for j in app.actions.feed.jobs() if j.vm == vm and j.state.finished), None)


async def test_a_fleet_action_goes_to_the_vms_own_host(sshd: LabSshd, here_calls: list) -> None:
    from tui.screens.jobs import JobsScreen
    from tui.widgets.jobs_table import JobsTable

    app = fleet_app(sshd)
    async with app.run_test(size=(160, 48)) as pilot:
        assert app.read_only_reason is None  # each host decides for itself

        title = await restart_from_fleet(pilot, "far/web")
        assert "far/web" in title  # the dialog names the host
        job = await until_in_app(pilot, lambda: finished(app, "far/web"), 30, what="far's job")
        assert job.state is JobState.SUCCEEDED, job.result
        assert job.result == "ran restart on 'web'"  # far's agent was asked for its own web
        assert job.title == "restart far/web"
        assert here_calls == []  # nothing ran here

        await restart_from_fleet(pilot, "here/web")
        job = await until_in_app(pilot, lambda: finished(app, "here/web"), 30, what="here's job")
        assert job.state is JobState.SUCCEEDED, job.result
        assert [(a, n) for a, n, _ in here_calls] == [("restart", "web")]  # its own name
        assert job.title == "restart here/web"

        # The jobs panel: every host's jobs, each title naming its host (far's earlier job
        # too, which its agent reported when the session started).
        await pilot.press("j")
        panel = await until_in_app(
            pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen, 10, what="jobs"
        )

        def titles() -> list[str] | None:
            found = sorted(j.title for j in panel.source.jobs())
            return found if len(found) >= 3 else None

        shown = await until_in_app(pilot, titles, 30, what="three jobs in the panel")
        assert shown == ["restart far/web", "restart here/web", "update far/db"]
        assert len({j.id for j in app.actions.feed.jobs()}) == 3  # one row each
        table = panel.query_one(JobsTable)
        await until_in_app(pilot, lambda: table.row_count == 3, 10, what="three rows")
        vms = sorted(table.get_cell(str(j.id), "vm").plain for j in app.actions.feed.jobs())
        assert vms == ["far/db", "far/web", "here/web"]  # each row names its host
        await pilot.press("escape")
        assert app.is_running


@pytest.mark.parametrize(
    ("mode", "far_read_only", "why"),
    [
        ("jobsro", False, "read-only: far: the agent runs as nobody (uid 65534), not root."),
        ("jobs", True, "read-only: far: read_only = true in [hosts.far]."),
    ],
)
async def test_a_read_only_host_refuses_with_its_reason(
    sshd: LabSshd, here_calls: list, mode: str, far_read_only: bool, why: str
) -> None:
    key = "far/web"
    app = fleet_app(sshd, mode, far_read_only)
    async with app.run_test(size=(160, 48)) as pilot:
        said: list[str] = []
        app.actions._refuse = lambda spec, reason: said.append(reason)  # type: ignore[method-assign]
        await on_fleet_row(pilot, key)
        if mode == "jobsro":  # the agent's reason comes in its hello
            remote = app.source.members["far"].source
            await until_in_app(pilot, lambda: remote.read_only, 30, what="far's hello")
        await pilot.press("R")
        await until_in_app(pilot, lambda: said, 10, what="the refusal")
        assert said == [why] and "\n" not in why and is_clean(why)
        # And the router holds for a submit that did not come through a dialog.
        job = app.actions.runner.submit("restart", key)
        assert job.state is JobState.FAILED and job.result == why
        # This host's VMs still take actions (root, not --read-only).
        await restart_from_fleet(pilot, "here/web")
        await until_in_app(pilot, lambda: finished(app, "here/web"), 30, what="here's job")
        assert [(a, n) for a, n, _ in here_calls] == [("restart", "web")]


async def test_the_fleet_runs_marked_vms_on_their_hosts(sshd: LabSshd, here_calls: list) -> None:
    """Marked far/web and here/web: one parent job in the app, a child on each VM's host under
    its own name; a host that changes nothing has its VMs refused in the plan with its reason;
    create is refused (which host?)."""
    from tui.actions.registry import ACTIONS
    from tui.agent.fleet_jobs import CREATE_REFUSED

    app = fleet_app(sshd)
    async with app.run_test(size=(160, 48)) as pilot:
        said: list[str] = []
        app.actions._refuse = lambda spec, reason: said.append(reason)  # type: ignore[method-assign]
        await on_fleet_row(pilot, "far/web")
        assert app.actions.request_create() is None
        assert said == [CREATE_REFUSED]
        spec = ACTIONS[ActionId.RESTART]
        marked = [vm for vm in app.known_vms() if vm.name in ("far/web", "here/web")]
        bulk = app.actions.bulk_plan(spec, marked)
        assert bulk.runs == ["far/web", "here/web"]
        parent = app.actions.submit_bulk(bulk)
        assert parent is not None and parent.title == "bulk restart 2 VMs"
        router = app.actions.runner
        done = await until_in_app(
            pilot,
            lambda: (j := router.get(parent.id)) and j.state.finished and j,
            30,
            what="the fleet's bulk restart",
        )
        assert done.state is JobState.SUCCEEDED, done.result
        assert done.result == "2 done"

        def kids() -> list:  # type: ignore[type-arg]
            mine = (j for j in app.actions.feed.jobs() if j.parent == parent.id)
            return sorted(mine, key=lambda j: j.vm)

        # The children's last snapshots reach the app's list a moment after the parent ends.
        want = [("far/web", JobState.SUCCEEDED), ("here/web", JobState.SUCCEEDED)]
        await until_in_app(
            pilot, lambda: [(j.vm, j.state) for j in kids()] == want, 10, what="both children"
        )
        assert kids()[0].result == "ran restart on 'web'"  # far's agent: its own web
        assert [(a, n) for a, n, _ in here_calls] == [("restart", "web")]  # here's own web
        # This host not root: its VMs refuse with that, far's do not.
        local_ro = router.read_only
        router.read_only = lambda h: "not running as root" if h == "here" else local_ro(h)
        assert router.refusal("here/web") == "read-only: here: not running as root."
        assert router.refusal("far/web") is None
        assert router.refusal("gone/web") == "gone is not a host of the fleet."
        bulk = app.actions.bulk_plan(spec, marked)
        assert bulk.runs == ["far/web"]
        assert [(i.vm, i.refused) for i in bulk.skipped] == [
            ("here/web", "read-only: here: not running as root.")
        ]


async def test_read_only_flag_keeps_every_host_off(sshd: LabSshd, here_calls: list) -> None:
    app = fleet_app(sshd, read_only=True)
    async with app.run_test(size=(160, 48)) as pilot:
        said: list[str] = []
        app.actions._refuse = lambda spec, reason: said.append(reason)  # type: ignore[method-assign]
        for key in ("far/web", "here/web"):
            await on_fleet_row(pilot, key)
            await pilot.press("R")
            await until_in_app(pilot, lambda: len(said) >= 1, 10, what="the refusal")
            assert said == ["read-only: started with --read-only."]
            said.clear()
        assert app.actions.feed.jobs() == [] or all(j.adopted for j in app.actions.feed.jobs())
    assert here_calls == []
