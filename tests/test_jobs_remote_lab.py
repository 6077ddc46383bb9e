"""Jobs on a remote host, through the agent over real ssh to the lab host's own sshd.

A restart asked in the app (`--host lab`) runs on the lab host with the facts of its dialog
from the host, and changes the remote row; a slow create started remotely keeps running when
the ssh client is killed, and after the reconnect the new agent reports it again (the same
row of the jobs panel) and cancels it on request.

To iterate without a fresh lab per run: ``python -m tui.lab up DIR`` once, then run with
``MVTUI_TEST_LAB=DIR``.
"""

from __future__ import annotations

import os
import shlex
import signal
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until_in_app, wait_for
from tests.test_actions_support import processes_with, write_flake
from tests.test_jobunits_lab import main_pid
from tui.agent.client import RemoteSource
from tui.agent.hosts import RemoteHost
from tui.host.actions.jobs import JobState
from tui.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module", autouse=True)
def idle_running(the_lab: Lab) -> Iterator[None]:
    """These tests restart `idle`: it runs for this module only."""
    from tests.conftest import vm_running

    with vm_running(the_lab, "idle"):
        yield


def remote_source(lab: Lab, interval: float = 0.5) -> RemoteSource:
    agent = (
        f"cd {shlex.quote(str(REPO))} && exec {shlex.quote(sys.executable)} -m tui "
        f"--config {shlex.quote(str(lab.config_path))} agent"
    )
    host = RemoteHost("lab", tuple(lab.sshd.ssh_args()), agent)
    return RemoteSource(host, interval=interval, persist="no")


def unit_active(lab: Lab, unit: str) -> bool:
    from tests.test_jobunits_lab import unit_state

    return unit_state(lab, unit) == "active"


async def confirm_dialog(pilot: Any, what: str) -> Any:
    """The confirmation dialog on screen, once composed (its button is there)."""
    from tui.screens.confirm import ConfirmScreen

    app = pilot.app
    return await until_in_app(
        pilot,
        lambda: (
            isinstance(app.screen, ConfirmScreen) and app.screen.query("#confirm") and app.screen
        ),
        30,
        what=what,
    )


async def test_a_remote_restart_changes_the_remote_row(the_lab: Lab) -> None:
    from tui.actions import ActionId
    from tui.app import MicroVMApp
    from tui.config import Settings

    src = remote_source(the_lab)
    app = MicroVMApp(Settings(interval=0.5), src, tty_watch=False, remote="lab")
    async with app.run_test(size=(160, 48)) as pilot:

        def idle_pid() -> int | None:
            snap = app.snapshot
            vm = next((v for v in snap.inventory.vms if v.name == "idle"), None) if snap else None
            return vm.unit.main_pid if vm and vm.unit and vm.unit.active == "active" else None

        before = await until_in_app(pilot, idle_pid, 60, what="idle running on the remote row")
        table = app.main_screen.table
        row_before = [str(c) for c in table.get_row("idle")]
        table.select_name("idle")
        await pilot.pause()
        app.actions.request(ActionId.RESTART)
        dialog = await confirm_dialog(pilot, "the restart dialog (its facts from the lab host)")
        assert "idle" in dialog.title_text
        await pilot.press("enter")
        job = await until_in_app(
            pilot,
            lambda: next(
                (
                    j
                    for j in app.actions.feed.jobs()
                    if j.title == "restart idle on lab" and not j.adopted and j.state.finished
                ),
                None,
            ),
            120,
            what="the remote restart to end",
        )
        assert job.state is JobState.SUCCEEDED, job.result
        assert job.host == "lab" and job.title == "restart idle on lab"
        assert job.unit is not None and job.unit.startswith("microvm-tui-job-")
        assert "systemctl restart microvm@idle.service" in job.log
        after = await until_in_app(
            pilot,
            lambda: (pid := idle_pid()) not in (None, before) and pid,
            60,
            what="the remote row to show the new process",
        )
        assert after != before
        await until_in_app(
            pilot,
            lambda: [str(c) for c in table.get_row("idle")] != row_before,
            30,
            what="the row to change",
        )


def test_a_remote_job_outlives_the_ssh_client_and_is_shown_after_reconnect(
    the_lab: Lab, tmp_path: Path
) -> None:
    slow = write_flake(tmp_path / "slow-flake", {"remjob": "slow"})
    src = remote_source(the_lab)
    try:
        src.poll()  # the first snapshot: the session runs
        job = src.jobs.submit("create", "remjob", flake=slow.ref, start=False)
        running = src.jobs.wait(
            lambda jobs: next(
                (
                    j
                    for j in jobs
                    if j.id == job.id
                    and (j.state.finished or any(f"started {slow.marker}" in x for x in j.log))
                ),
                None,
            ),
            240,
        )
        assert running is not None and running.state is JobState.RUNNING, running
        unit = running.unit
        assert unit is not None and unit_active(the_lab, unit)

        # Kill the ssh client: the agent's session ends, the job's unit does not.
        sessions = src.sessions
        proc = src._proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGKILL)
        wait_for(lambda: src.sessions > sessions and src.connected, 60, 0.1, "a new session")
        assert unit_active(the_lab, unit)
        assert processes_with(slow.marker)

        # The new agent adopted it and reported it: the same job (our id), still running.
        again = src.jobs.wait(
            lambda jobs: next(
                (j for j in jobs if j.unit == unit and j.version > running.version), None
            ),
            30,
        )
        assert again is not None and again.id == job.id
        assert again.state is JobState.RUNNING
        assert any(f"started {slow.marker}" in line for line in again.log)

        # And it is cancelled through the new agent.
        assert src.jobs.cancel(job.id)
        ended = src.jobs.wait(
            lambda jobs: next((j for j in jobs if j.id == job.id and j.state.finished), None), 90
        )
        assert ended is not None and ended.state is JobState.CANCELLED, ended
        wait_for(lambda: not processes_with(slow.marker), 30, 0.2, "the builder to be gone")
        assert not (the_lab.settings.state_dir / "remjob").exists()
    finally:
        src.close()


async def test_a_fleet_restart_of_a_remote_vm_runs_on_its_host(the_lab: Lab) -> None:
    """The fleet (--all-hosts): this host is the lab, and the lab over its sshd is host
    lab-ssh. R on lab-ssh/web (running) in the fleet table asks lab-ssh's agent (the dialog's facts
    from it) to restart its web; the job finishes in the jobs panel, and lab-ssh/web's row
    shows the new process."""
    import dataclasses

    from tui.app import MicroVMApp
    from tui.config import load_settings
    from tui.feed.fleet import FLEET_REMOTE, fleet_source
    from tui.screens.fleet import FleetScreen
    from tui.screens.jobs import JobsScreen
    from tui.widgets.jobs_table import JobsTable

    agent = remote_source(the_lab).host.agent
    host = RemoteHost("lab-ssh", tuple(the_lab.sshd.ssh_args()), agent)
    settings = dataclasses.replace(load_settings(the_lab.config_path), hosts={host.name: host})
    app = MicroVMApp(
        settings, fleet_source(settings, [host], "local"), tty_watch=False, remote=FLEET_REMOTE
    )
    key = "lab-ssh/web"
    async with app.run_test(size=(160, 48)) as pilot:

        def web_pid() -> int | None:
            snap = app.snapshot
            vm = next((v for v in snap.inventory.vms if v.name == key), None) if snap else None
            return vm.unit.main_pid if vm and vm.unit and vm.unit.active == "active" else None

        fleet = await until_in_app(
            pilot, lambda: isinstance(app.screen, FleetScreen) and app.screen, 30, what="fleet"
        )
        before = await until_in_app(pilot, web_pid, 120, what="lab-ssh/web running")
        table = fleet.table
        await until_in_app(pilot, lambda: key in table.keys, 30, what="its fleet row")
        row_before = [c.plain for c in table.get_row(key)]
        table.move_cursor(row=table.get_row_index(key))
        await pilot.pause()
        await pilot.press("R")
        dialog = await confirm_dialog(pilot, "the restart dialog (its facts from lab-ssh)")
        assert key in dialog.title_text
        await pilot.press("enter")
        await until_in_app(pilot, lambda: app.screen is fleet, 10, what="back on the fleet view")
        await pilot.press("j")
        panel = await until_in_app(
            pilot, lambda: isinstance(app.screen, JobsScreen) and app.screen, 10, what="jobs"
        )
        job = await until_in_app(
            pilot,
            lambda: next(
                (
                    j
                    for j in panel.source.jobs()
                    if j.title == f"restart {key}" and not j.adopted and j.state.finished
                ),
                None,
            ),
            120,
            what="the restart to finish in the jobs panel",
        )
        assert job.state is JobState.SUCCEEDED, job.result
        assert job.unit is not None and job.unit.startswith("microvm-tui-job-")
        assert "systemctl restart microvm@web.service" in job.log  # its own name there
        jobs_table = panel.query_one(JobsTable)
        await until_in_app(
            pilot,
            lambda: (
                jobs_table.get_cell(str(job.id), "state").plain.endswith("succeeded")
                if str(job.id) in jobs_table.rows
                else None
            ),
            10,
            what="the panel's row finished",
        )
        assert jobs_table.get_cell(str(job.id), "vm").plain == key
        await pilot.press("escape")
        after = await until_in_app(
            pilot,
            lambda: (pid := web_pid()) not in (None, before) and pid,
            60,
            what="the remote row to show the new process",
        )
        assert after != before
        await until_in_app(
            pilot,
            lambda: [c.plain for c in table.get_row(key)] != row_before,
            30,
            what="the fleet row to change",
        )
    app.streams.close_all()


def test_a_remote_bulk_restart_restarts_each_marked_vm_on_the_host(the_lab: Lab) -> None:
    """Marked idle and web (running; not db: a restart would boot its newer runner) on the lab
    over its sshd, one restart at a time: the parent runs in the app, each child is a unit on
    the host; both VMs run again, new processes."""
    from tui.host.actions.bulk import BulkItem, BulkPlan

    for vm in ("idle", "web"):
        wait_for(lambda vm=vm: unit_active(the_lab, f"microvm@{vm}.service"), 120, 0.5, vm)
    before = {vm: main_pid(the_lab, vm) for vm in ("idle", "web")}
    src = remote_source(the_lab)
    try:
        src.poll()  # the first snapshot: the session runs
        plan = BulkPlan("restart", (BulkItem("idle", "restart"), BulkItem("web", "restart")))
        parent = src.jobs.submit_bulk(plan, builds=1, restarts=1)
        done = src.jobs.wait(
            lambda jobs: next((j for j in jobs if j.id == parent.id and j.state.finished), None),
            240,
        )
        assert done is not None and done.state is JobState.SUCCEEDED, done
        assert done.result == "2 done"
        kids = sorted((j for j in src.jobs.jobs() if j.parent == parent.id), key=lambda j: j.vm)
        assert [(j.vm, j.state) for j in kids] == [
            ("idle", JobState.SUCCEEDED),
            ("web", JobState.SUCCEEDED),
        ]
        for job in kids:
            assert job.unit is not None and job.unit.startswith("microvm-tui-job-"), job
            assert f"systemctl restart microvm@{job.vm}.service" in job.log
        # One at a time: idle's child ended before web's began.
        assert kids[0].ended is not None and kids[1].started is not None
        assert kids[0].ended <= kids[1].started
    finally:
        src.close()
    for vm in ("idle", "web"):  # running again, as found: new processes
        wait_for(lambda vm=vm: unit_active(the_lab, f"microvm@{vm}.service"), 120, 0.5, vm)
        assert main_pid(the_lab, vm) not in (0, before[vm])
