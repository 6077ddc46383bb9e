"""Bulk actions on a remote host (``--host NAME``), over real ssh to a real sshd on loopback
(the lab's LabSshd, without the rest of the lab) against FakeAgent (``jobs``: every job ends
at once saying which VM it was asked for; ``jobshold``: a job runs until the app cancels it).

The parent job runs in the app (``bulk.run_bulk``, as on this host); each child is a submit
to the agent with the VM's own name, at most ``restarts`` at a time; the parent ends with the
summary. Cancelling the parent cancels the children still running on the host (the agent is
asked, by each job's key) and starts no more. The real agent over the lab:
test_jobs_remote_lab.py.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import until_in_app, wait_for
from tui.agent.client import RemoteSource
from tui.agent.hosts import RemoteHost
from tui.host.actions.bulk import BulkItem, BulkPlan
from tui.host.actions.jobs import Job, JobState
from tui.lab.sshd import LabSshd

REPO = Path(__file__).resolve().parent.parent
FAKE = REPO / "tests" / "fixtures" / "agent" / "fake_agent.py"


@pytest.fixture(scope="module")
def sshd() -> Iterator[LabSshd]:
    from tests.conftest import lab_sshd

    with lab_sshd("bulkremote") as server:
        yield server


def far(sshd: LabSshd, mode: str) -> RemoteSource:
    host = RemoteHost("far", tuple(sshd.ssh_args()), f"exec {sys.executable} {FAKE} {mode}")
    return RemoteSource(host, interval=0.3, persist="no")


def recorded(source: RemoteSource) -> list[tuple[dict[str, Any], list[str]]]:
    """Every message the app's jobs send to the agent, with the VMs of the children then
    unfinished (other than the one a submit is for)."""
    jobs = source.jobs
    sent: list[tuple[dict[str, Any], list[str]]] = []
    real = jobs._send

    def send(message: dict[str, Any]) -> bool:
        busy = [
            j.vm
            for j in jobs.jobs()
            if j.parent is not None and not j.state.finished and j.id != message.get("req")
        ]
        sent.append((message, busy))
        return real(message)

    jobs._send = send  # type: ignore[method-assign]
    return sent


def restart(*vms: str, skipped: tuple[str, ...] = ()) -> BulkPlan:
    items = [BulkItem(vm, "restart") for vm in vms]
    items += [BulkItem(vm, "restart", "not running") for vm in skipped]
    return BulkPlan("restart", tuple(sorted(items, key=lambda i: i.vm)))


def children(jobs: list[Job], parent: int) -> list[Job]:
    return sorted((j for j in jobs if j.parent == parent), key=lambda j: j.vm)


async def test_a_remote_bulk_restart_runs_a_child_per_vm_on_the_host(sshd: LabSshd) -> None:
    from tui.app import MicroVMApp
    from tui.config import Settings

    source = far(sshd, "jobs")
    sent = recorded(source)
    app = MicroVMApp(Settings(interval=0.3), source, tty_watch=False, remote="far")
    async with app.run_test(size=(160, 48)) as pilot:
        assert app.read_only_reason is None
        await until_in_app(pilot, lambda: source.connected, 30, what="far's agent")
        app.actions.bulk_restarts = 1
        parent = app.actions.submit_bulk(restart("db", "web", skipped=("gone",)))
        assert parent is not None and parent.title == "bulk restart 2 VMs on far"
        done = await until_in_app(
            pilot,
            lambda: (j := app.actions.runner.get(parent.id)) and j.state.finished and j,
            30,
            what="the parent to end",
        )
        assert done.state is JobState.SUCCEEDED, done.result
        assert done.result == "2 done, 1 skipped (gone: not running)"
        submits = [(m, busy) for m, busy in sent if m["type"] == "submit"]
        # The bare names, one at a time ([bulk] restarts = 1): no child ran beside another.
        assert [(m["action"], m["vm"], m["options"]) for m, _ in submits] == [
            ("restart", "db", {}),
            ("restart", "web", {}),
        ]
        assert [busy for _, busy in submits] == [[], []]
        kids = children(app.actions.feed.jobs(), parent.id)
        assert [(j.vm, j.state, j.result) for j in kids] == [
            ("db", JobState.SUCCEEDED, "ran restart on 'db'"),
            ("web", JobState.SUCCEEDED, "ran restart on 'web'"),
        ]
        assert all(j.host == "far" and not j.adopted for j in kids)
        assert f"restart db: job {kids[0].id}" in done.log
    source.close()


def test_cancelling_the_parent_cancels_the_children_on_the_host(sshd: LabSshd) -> None:
    source = far(sshd, "jobshold")
    sent = recorded(source)
    jobs = source.jobs
    try:
        wait_for(lambda: source.connected, 30, what="far's agent")
        parent = jobs.submit_bulk(restart("a", "b", "c"), builds=1, restarts=2)

        def running() -> list[Job]:
            kids = children(jobs.jobs(), parent.id)
            return kids if [j.state for j in kids] == [JobState.RUNNING] * 2 else []

        kids = wait_for(running, 30, what="two children running on far")
        assert [j.vm for j in kids] == ["a", "b"]  # [bulk] restarts = 2: c waits
        assert jobs.cancel(parent.id)
        done = wait_for(
            lambda: (j := jobs.get(parent.id)) and j.state.finished and j, 30, what="the parent"
        )
        assert done.state is JobState.CANCELLED, done.result
        assert done.result is not None
        assert done.result.startswith("bulk restart cancelled: 0 done, 3 cancelled (")
        assert done.result.endswith(", c)")  # c never started
        kids = children(jobs.jobs(), parent.id)
        assert [(j.vm, j.state) for j in kids] == [
            ("a", JobState.CANCELLED),
            ("b", JobState.CANCELLED),
        ]
        assert {j.result for j in kids} == {"cancelled restart on 'a'", "cancelled restart on 'b'"}
        # The agent was asked for a and b (by their keys), never for c.
        assert sorted(m["vm"] for m, _ in sent if m["type"] == "submit") == ["a", "b"]
        keys = {f"job-{j.id}" for j in kids}
        assert {m["key"] for m, _ in sent if m["type"] == "cancel"} == keys
    finally:
        source.close()


def test_a_child_the_host_never_took_does_not_hold_up_a_cancel() -> None:
    """A submit the host never answered (the session went): cancelling the parent ends it
    (the child cancelled here); when the host reports that child after all, it is asked to
    cancel it."""
    from tui.agent import jobwire
    from tui.agent.remote_jobs import RemoteJobs

    sent: list[dict[str, Any]] = []
    jobs = RemoteJobs("far", lambda message: sent.append(message) or True)
    parent = jobs.submit_bulk(restart("a", "b"), builds=1, restarts=1)
    first = wait_for(
        lambda: [m for m in sent if m["type"] == "submit"], 10, what="the first child's submit"
    )
    assert jobs.cancel(parent.id)
    done = wait_for(
        lambda: (j := jobs.get(parent.id)) and j.state.finished and j, 10, what="the parent"
    )
    assert done.state is JobState.CANCELLED
    assert done.result == "bulk restart cancelled: 0 done, 2 cancelled (a, b)"
    (child,) = children(jobs.jobs(), parent.id)
    assert child.result == "cancelled before far took it"
    assert [m["vm"] for m in sent if m["type"] == "submit"] == ["a"]
    # The host reports it after all: it is asked to cancel it, by its key.
    late = Job(id=9, action="restart", vm="a", state=JobState.RUNNING, created=1.0)
    jobs.handle({"type": "job", "job": jobwire.job_to_wire(late, "job-late", req=first[0]["req"])})
    assert sent[-1] == {"type": "cancel", "key": "job-late"}
