"""Jobs as transient systemd units, against the lab's real user manager and real nix.

A restart of a lab VM runs as ``microvm-tui-job-...`` (a process of that unit, not of the
app) and its log and commands reach the app's job snapshots; a slow create keeps running
when the app quits and the next app shows it again (adopted from its job file), from which
it can be cancelled; a hostile job file (a planted link, a huge line, bad JSON) is one line.

To iterate without a fresh lab per run: ``python -m tui.lab up DIR`` once, then run with
``MVTUI_TEST_LAB=DIR``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.test_actions_support import processes_with, write_flake
from tests.test_actions_ui_support import ActionsTestApp, wait_until
from tui.config import load_settings
from tui.host.actions import jobfile
from tui.host.actions.jobs import JobRunner, JobState
from tui.host.actions.jobunits import JobUnits
from tui.host.inventory import list_vms
from tui.lab import Lab

pytestmark = [pytest.mark.lab, pytest.mark.timeout(600)]

SIZE = (120, 40)
BUILD_S = 240.0


@pytest.fixture(scope="module", autouse=True)
def idle_running(the_lab: Lab) -> Iterator[None]:
    """These tests restart `idle`: it runs for this module only."""
    from tests.conftest import vm_running

    with vm_running(the_lab, "idle"):
        yield


def new_app(lab: Lab) -> ActionsTestApp:
    settings = load_settings(lab.config_path)
    return ActionsTestApp(
        settings=settings, list_vms=lambda: list_vms(lab.settings, links=False).vms
    )


def unit_state(lab: Lab, unit: str) -> str:
    done = subprocess.run(
        lab.settings.systemctl_argv("is-active", unit),
        env=lab.settings.command_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip()


def main_pid(lab: Lab, vm: str) -> int:
    """The lab manager's MainPID of VM's unit (0: none)."""
    done = subprocess.run(
        lab.settings.systemctl_argv("show", "-p", "MainPID", "--value", f"microvm@{vm}.service"),
        env=lab.settings.command_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return int(done.stdout.strip() or 0)


def job_records(lab: Lab, unit: str) -> list[dict]:
    name = unit.removeprefix(jobfile.UNIT_PREFIX).removesuffix(".service")
    path = lab.settings.jobs_dir / f"{name}{jobfile.SUFFIX}"
    return [json.loads(line) for line in path.read_text().splitlines()]


async def test_a_local_job_runs_as_a_unit_and_its_progress_reaches_the_ui(the_lab: Lab) -> None:
    before = main_pid(the_lab, "idle")
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        assert app.actions.runner.units is not None, app.actions.jobs_note
        job = app.actions.submit("restart", "idle")
        assert job is not None
        done = await wait_until(
            pilot,
            lambda: (j := app.actions.feed.job(job.id)) is not None and j.state.finished and j,
            120,
            "the restart to finish",
        )
        assert done.state is JobState.SUCCEEDED, done.result
        assert done.unit is not None and done.unit.startswith("microvm-tui-job-")
        # Its log and its commands came through the job file into the app's snapshots.
        assert "systemctl restart microvm@idle.service" in done.log
        assert any(c.argv[-2:] == ("restart", "microvm@idle.service") for c in done.commands)
        # The work ran in the unit's process, not in the app.
        running = next(r for r in job_records(the_lab, done.unit) if r["kind"] == "state")
        assert running["pid"] != os.getpid()
        # The app saw it run (a state change per record, in order) before it ended.
        states = [j.state for j in app.changes if j.id == job.id]
        assert states[0] is JobState.QUEUED and JobState.RUNNING in states
    assert main_pid(the_lab, "idle") not in (0, before)


async def test_a_job_outlives_the_app_and_the_next_app_adopts_it(
    the_lab: Lab, tmp_path: Path
) -> None:
    slow = write_flake(tmp_path / "slow-flake", {"unitjob": "slow"})
    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        job = app.actions.submit("create", "unitjob", flake=slow.ref, start=False)
        assert job is not None
        running = await wait_until(
            pilot,
            lambda: (
                (
                    (j := app.actions.feed.job(job.id)).state.finished
                    or any(f"started {slow.marker}" in line for line in j.log)
                )
                and j
            ),
            BUILD_S,
            "the slow builder to start",
        )
        assert running.state is JobState.RUNNING, running.result
        unit = app.actions.feed.job(job.id).unit
        question = app.actions.quit_question()
        assert question is not None and "leaves it running" in question.body.plain
    # The app has quit: the unit and its build go on.
    assert unit is not None
    assert unit_state(the_lab, unit) == "active"
    assert processes_with(slow.marker)

    app = new_app(the_lab)
    async with app.run_test(size=SIZE) as pilot:
        adopted = await wait_until(
            pilot,
            lambda: next((j for j in app.actions.feed.jobs() if j.unit == unit), None),
            30,
            "the running job to be adopted",
        )
        assert (adopted.action, adopted.vm) == ("create", "unitjob")
        assert adopted.state is JobState.RUNNING
        assert any(f"started {slow.marker}" in line for line in adopted.log)
        assert app.actions.running_on() == {"unitjob": "create unitjob"}
        # Cancelling the adopted job stops its unit; the create cleans up after itself.
        assert app.actions.feed.cancel_job(adopted.id)
        ended = await wait_until(
            pilot,
            lambda: (j := app.actions.feed.job(adopted.id)).state.finished and j,
            90,
            "the cancelled job to end",
        )
        assert ended.state is JobState.CANCELLED, ended.result
    wait_for(lambda: not processes_with(slow.marker), 30, 0.2, "the builder to be gone")
    wait_for(lambda: unit_state(the_lab, unit) != "active", 30, 0.2, "the unit to end")
    assert not (the_lab.settings.state_dir / "unitjob").exists()

    # A finished job is shown again too (finished meanwhile), as it ended.
    runner = JobRunner(the_lab.settings, units=JobUnits(the_lab.settings))
    assert runner.adopt() == []
    again = next(j for j in runner.jobs() if j.unit == unit)
    assert again.state is JobState.CANCELLED


@pytest.mark.parametrize("hostile", ["link", "huge line", "endless line", "bad json", "bad record"])
def test_a_hostile_job_file_is_one_line(the_lab: Lab, tmp_path: Path, hostile: str) -> None:
    jobs_dir = tmp_path / "jobs"
    settings = dataclasses.replace(the_lab.settings, jobs_dir=jobs_dir)
    units = JobUnits(settings)
    os.close(units.open_dir())
    name = "1700000000-0123abcd"
    path = jobs_dir / f"{name}{jobfile.SUFFIX}"
    spec = json.dumps({"kind": "spec", "action": "restart", "vm": "idle", "options": {}})
    secret = tmp_path / "secret"
    secret.write_text(spec + "\n")
    if hostile == "link":
        path.symlink_to(secret)
    else:
        body = {
            "huge line": spec + "\n" + '{"kind":"log","line":"' + "x" * 200_000 + '"}\n',
            "endless line": spec + "\n" + "x" * 200_000,
            "bad json": spec + "\n{not json\n",
            "bad record": spec + '\n{"kind":"command","command":{"argv":"rm -rf /"}}\n',
        }[hostile]
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.write(fd, body.encode())
        os.close(fd)
    runner = JobRunner(settings, units=units)
    problems = runner.adopt()
    shown = [j for j in runner.jobs() if j.state is JobState.FAILED]
    lines = problems + [j.result or "" for j in shown]
    assert len(lines) == 1, lines
    assert "\n" not in lines[0] and "Traceback" not in lines[0]
    assert name in lines[0]
    if hostile == "link":
        assert "symlink" in lines[0]
    assert secret.read_text() == spec + "\n"  # nothing written through the link


def test_a_job_dir_others_can_enter_is_refused(the_lab: Lab, tmp_path: Path) -> None:
    jobs_dir = tmp_path / "open"
    jobs_dir.mkdir(mode=0o755)
    jobs_dir.chmod(0o755)
    settings = dataclasses.replace(the_lab.settings, jobs_dir=jobs_dir)
    runner = JobRunner(settings, units=JobUnits(settings))
    problems = runner.adopt()
    assert len(problems) == 1 and "must be ours and 0700" in problems[0]
    job = runner.submit("restart", "idle")
    done = runner.wait(job.id, 30)
    assert done.state is JobState.FAILED and "0700" in (done.result or "")


def test_a_job_whose_unit_is_killed_outright_ends_saying_so(the_lab: Lab, tmp_path: Path) -> None:
    slow = write_flake(tmp_path / "slow-flake", {"killjob": "slow"})
    state = the_lab.settings.state_dir
    runner = JobRunner(the_lab.settings, units=JobUnits(the_lab.settings))
    try:
        job = runner.submit("create", "killjob", flake=slow.ref, start=False)
        wait_for(
            lambda: (
                (j := runner.get(job.id)).state.finished
                or any(f"started {slow.marker}" in line for line in j.log)
            ),
            BUILD_S,
            0.1,
            "the slow builder to start",
        )
        unit = runner.get(job.id).unit
        assert unit is not None and unit_state(the_lab, unit) == "active"
        subprocess.run(
            the_lab.settings.systemctl_argv("kill", "--signal=SIGKILL", unit),
            env=the_lab.settings.command_env(),
            check=True,
        )
        ended = runner.wait(job.id, 30)
        assert ended.state is JobState.FAILED
        assert ended.result == f"its unit {unit} ended without a result (killed?); see its journal"
        assert job_records(the_lab, unit)[-1]["kind"] == "end"  # a later app sees it ended
    finally:
        runner.shutdown(5)
        for debris in state.glob(".killjob.create-*"):  # what a job killed outright leaves
            shutil.rmtree(debris)
    wait_for(lambda: not processes_with(slow.marker), 30, 0.2, "the builder to be gone")
