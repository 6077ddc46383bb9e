"""JobRunner: actions in threads, snapshots to a listener, one job per VM, cancellation."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import wait_for
from tests.test_actions_support import (
    FlakeDir,
    listing,
    make_settings,
    new_gcroots_dir,
    pid_alive,
    write_flake,
)
from tui.host import tools
from tui.host.actions import operations as ops
from tui.host.actions.jobs import Job, JobRunner, JobState
from tui.host.settings import HostSettings

pytestmark = pytest.mark.skipif(shutil.which("nix") is None, reason="needs nix")


class Watcher:
    """A listener that keeps every snapshot and lets a test wait for a condition."""

    def __init__(self) -> None:
        self.snapshots: list[Job] = []
        self._cond = threading.Condition()

    def __call__(self, job: Job) -> None:
        with self._cond:
            self.snapshots.append(job)
            self._cond.notify_all()

    def wait_for(self, check: Callable[[Job], bool], timeout: float = 60) -> Job:
        with self._cond:
            found: list[Job] = []

            def seen() -> bool:
                found[:] = [j for j in self.snapshots if check(j)]
                return bool(found)

            assert self._cond.wait_for(seen, timeout), "condition not reached"
            return found[0]

    def states(self, job_id: int) -> list[JobState]:
        out: list[JobState] = []
        for job in self.snapshots:
            if job.id == job_id and (not out or out[-1] != job.state):
                out.append(job.state)
        return out


@pytest.fixture
def settings(tmp_path: Path) -> Iterator[HostSettings]:
    roots = new_gcroots_dir()
    yield make_settings(tmp_path / "state", roots)
    shutil.rmtree(roots, ignore_errors=True)


@pytest.fixture
def flake(tmp_path: Path) -> FlakeDir:
    return write_flake(tmp_path / "flake", {"web": "ok", "db": "ok"})


def builder_started(job_id: int) -> Callable[[Job], bool]:
    def check(job: Job) -> bool:
        tail = job.progress.log_tail if job.progress else ()
        return job.id == job_id and any(line.startswith("started ") for line in tail)

    return check


def test_a_job_runs_in_a_thread_and_reports_every_step(
    settings: HostSettings, flake: FlakeDir
) -> None:
    watcher = Watcher()
    runner = JobRunner(settings, watcher)
    job = runner.submit("create", "web", flake=flake.ref)
    assert job.state is JobState.QUEUED and job.action == "create" and job.vm == "web"
    done = runner.wait(job.id, 60)
    assert runner.drain(10)

    assert done.state is JobState.SUCCEEDED
    assert done.result is not None and done.result.startswith("created web (")
    assert done.outcome is not None and done.outcome.out_path
    assert watcher.states(job.id) == [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED]
    assert done.started is not None and done.ended is not None and done.ended >= done.started
    assert any(line.startswith("building path:") for line in done.log)
    assert done.progress is not None and done.progress.finished
    assert [c.argv[0] for c in done.commands] == [tools.path("nix")]
    # Snapshots are copies: an early one did not grow with the job.
    assert len(watcher.snapshots[0].log) == 0
    assert os.listdir(settings.state_dir) == ["web"]
    assert watcher.snapshots[-1].version == done.version  # the listener saw the last change

    refused = runner.wait(runner.submit("create", "bad name").id, 10)
    assert refused.state is JobState.FAILED
    assert "has characters" in (refused.result or "")


def test_one_job_per_vm_and_cancelling_a_build(
    settings: HostSettings, flake: FlakeDir, tmp_path: Path
) -> None:
    ops.create(settings, "web", flake=flake.ref)
    ops.create(settings, "db", flake=flake.ref)
    vm_dir = settings.state_dir / "web"
    slow = write_flake(tmp_path / "slow", {"web": "slow"})
    (vm_dir / "flake").write_text(slow.ref)
    before = listing(settings.state_dir)

    watcher = Watcher()
    runner = JobRunner(settings, watcher)
    update = runner.submit("update", "web")
    watcher.wait_for(builder_started(update.id))

    # Same runner: refused at once, with who holds the VM.
    second = runner.submit("rollback", "web")
    assert second.state is JobState.FAILED
    assert second.result is not None
    assert second.result.startswith(f"another job is running on web (pid {os.getpid()})")
    # Another app instance (another runner): the VM lock refuses it.
    other_app = JobRunner(settings)
    third = other_app.wait(other_app.submit("rollback", "web").id, 10)
    assert third.state is JobState.FAILED
    assert third.result == f"another job is running on web (pid {os.getpid()})"
    assert third.commands == []
    # Other VMs are not blocked.
    db = runner.wait(runner.submit("update", "db").id, 60)
    assert db.state is JobState.SUCCEEDED, db.result

    assert runner.cancel(update.id)
    done = runner.wait(update.id, 60)
    assert done.state is JobState.CANCELLED
    assert done.result == "the build was cancelled (nix stopped on SIGINT)"
    (nix_cmd,) = done.commands
    assert not pid_alive(nix_cmd.pid)
    assert listing(settings.state_dir) == before  # links untouched, no temp out-link, no lock
    assert not runner.cancel(update.id)  # finished: nothing to cancel


def test_queued_jobs_wait_for_a_slot_and_can_be_cancelled_before_they_start(
    settings: HostSettings, tmp_path: Path
) -> None:
    slow = write_flake(tmp_path / "slow", {"one": "slow", "two": "slow"})
    watcher = Watcher()
    runner = JobRunner(settings, watcher, max_parallel=1)
    first = runner.submit("create", "one", flake=slow.ref)
    watcher.wait_for(builder_started(first.id))
    second = runner.submit("create", "two", flake=slow.ref)
    assert runner.get(second.id).state is JobState.QUEUED  # type: ignore[union-attr]
    runner.cancel(second.id)
    cancelled = runner.wait(second.id, 10)
    assert cancelled.state is JobState.CANCELLED
    assert cancelled.result == "cancelled before it started"
    assert cancelled.commands == []
    runner.shutdown(60)
    assert runner.get(first.id).state is JobState.CANCELLED  # type: ignore[union-attr]
    assert os.listdir(settings.state_dir) == []


def test_a_chatty_build_is_folded_into_few_snapshots(
    settings: HostSettings, tmp_path: Path
) -> None:
    chatty = write_flake(tmp_path / "chatty", {"noisy": "chatty"})
    watcher = Watcher()
    runner = JobRunner(settings, watcher, max_log_lines=1000)
    job = runner.submit("create", "noisy", flake=chatty.ref)
    done = runner.wait(job.id, 60)
    assert runner.drain(10)
    assert done.state is JobState.SUCCEEDED, done.result
    build_lines = [line for line in done.log if line.startswith("microvm-qemu-noisy> ")]
    assert build_lines[-1] == "microvm-qemu-noisy> line 2999"
    assert len(done.log) == 1000 and done.log_dropped > 2000
    mine = [s for s in watcher.snapshots if s.id == job.id]
    assert len(mine) < 300  # not one per line
    assert mine[-1].state is JobState.SUCCEEDED and mine[-1].log == done.log
    versions = [s.version for s in mine]
    assert versions == sorted(set(versions))  # in order, never repeated
    runner.shutdown(10)


def test_a_log_line_folded_before_two_quick_states_loses_neither_state() -> None:
    """A unit job's follower can read a command record, its running state and its end in one
    go (a busy machine): the folded entry queued for the command must not come out as a fresh
    snapshot that already holds the end, with the running state then dropped as stale."""
    release = threading.Event()
    seen: list[Job] = []

    def listener(snapshot: Job) -> None:
        seen.append(snapshot)
        release.wait(10)  # the notifier is busy while the three changes below are queued

    runner = JobRunner(HostSettings(), listener, notify_interval=0.0)
    job = Job(id=99, action="restart", vm="web")
    runner._start_notifier()
    with runner._lock:
        runner._jobs[job.id] = job
        runner._post(job, state_change=True)  # queued: delivered, the listener now waits
    wait_for(lambda: seen, 10, what="the first snapshot")
    runner._add_line(job, "systemd-run ...")  # folded (a job id in the outbox)

    def running(j: Job) -> None:
        j.state = JobState.RUNNING

    def succeeded(j: Job) -> None:
        j.state = JobState.SUCCEEDED

    runner._update(job, running, state_change=True)
    runner._update(job, succeeded, state_change=True)
    release.set()
    assert runner.drain(10)
    assert [s.state for s in seen] == [JobState.QUEUED, JobState.RUNNING, JobState.SUCCEEDED]
    assert seen[1].log == ["systemd-run ..."]  # the folded line came with the next state
    runner.shutdown(10)
