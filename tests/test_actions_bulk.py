"""Bulk actions: the plan (what happens to each VM, who is refused and why) and the queue (a
parent job with a child per VM, builds and restarts each at their own concurrency, cancel of
the parent cancels what has not finished, a summary). The queue is exercised with actions of
the test's own that block on events, so the order and the bounds are observed, not timed; the
lab test restarts real VMs."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tui.host.actions.bulk import plan_bulk
from tui.host.actions.cancel import CancelToken
from tui.host.actions.errors import ActionError, Cancelled
from tui.host.actions.jobs import JobRunner, JobState
from tui.host.actions.operations import Outcome, Reporter
from tui.host.model import VM, UnitState
from tui.host.settings import HostSettings


def _vm(name: str, active: str | None = "active", **kw: object) -> VM:
    vm = VM(name=name, path=Path("/nonexistent") / name, **kw)  # type: ignore[arg-type]
    vm.unit = UnitState(f"microvm@{name}.service", "loaded", active) if active else None
    return vm


def test_the_plan_says_what_happens_to_each_and_who_is_refused() -> None:
    vms = [
        _vm("web", flake="path:/f"),
        _vm("decl", declarative=True, flake="path:/f"),
        _vm("noflake"),
        _vm("idle", active="inactive", flake="path:/f"),
    ]
    update = plan_bulk("update", vms, restart=True)
    assert update.runs == ["idle", "web"]
    assert {i.vm: i.refused for i in update.skipped} == {
        "decl": "declarative: change it in the host's configuration",
        "noflake": "no flake file to rebuild from",
    }
    assert "then restart it" in update.items[-1].will
    start = plan_bulk("start", vms)
    assert start.runs == ["idle"]
    assert plan_bulk("stop", vms).runs == ["decl", "noflake", "web"]
    assert plan_bulk("rollback", [_vm("web", old="/nix/store/x"), *vms[2:3]]).runs == ["web"]
    with pytest.raises(ValueError):
        plan_bulk("delete", vms)


class Gate:
    """Actions that wait until the test lets each VM finish; they record what ran at once."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.running: set[str] = set()
        self.most = 0
        self.released: set[str] = set()
        self.order: list[tuple[str, str]] = []

    def action(self, verb: str, restart_needed: bool = False, fail: set[str] = frozenset()):  # type: ignore[no-untyped-def]
        def run(
            settings: HostSettings, name: str, reporter: Reporter, cancel: CancelToken, **_: object
        ) -> Outcome:
            with self.lock:
                self.running.add(name)
                self.order.append((verb, name))
                self.most = max(self.most, len(self.running))
                self.lock.notify_all()
                try:
                    while f"{verb} {name}" not in self.released:
                        if cancel.cancelled:
                            raise Cancelled(f"{verb} {name} cancelled")
                        self.lock.wait(0.05)
                finally:
                    self.running.discard(name)
            if name in fail:
                raise ActionError(f"{name} broke")
            return Outcome(f"{verb} {name}", changed=True, restart_needed=restart_needed)

        return run

    def wait_running(self, count: int) -> set[str]:
        with self.lock:
            assert self.lock.wait_for(lambda: len(self.running) == count, 10)
            return set(self.running)

    def wait_started(self, name: str) -> None:
        with self.lock:
            assert self.lock.wait_for(lambda: name in self.running, 10)

    def release(self, *what: str) -> None:
        with self.lock:
            self.released.update(what)
            self.lock.notify_all()


def _runner(gate: Gate, fail: set[str] = frozenset()) -> JobRunner:
    return JobRunner(
        HostSettings(),
        actions={
            "update": gate.action("update", restart_needed=True, fail=fail),
            "restart": gate.action("restart"),
        },
    )


def test_builds_then_restarts_each_at_their_own_concurrency() -> None:
    gate = Gate()
    runner = _runner(gate, fail={"c"})
    vms = [_vm(n, flake="path:/f") for n in "abcde"] + [_vm("decl", declarative=True)]
    plan = plan_bulk("update", vms, restart=True)
    parent = runner.submit_bulk(plan, builds=2, restarts=3)
    assert parent.action == "bulk update" and parent.vm == "5 VMs"
    assert gate.wait_running(2) == {"a", "b"}  # two builds at a time, in name order
    gate.release("update a", "update b", "update c", "update d", "update e")
    assert gate.wait_running(3) <= {"a", "b", "d", "e"}  # restarts, three at a time
    gate.release("restart a", "restart b", "restart d", "restart e")
    done = runner.wait(parent.id, 10)
    assert gate.most == 3
    assert done.state is JobState.FAILED
    assert done.result == (
        "4 done, 1 failed (c: c broke), 1 skipped (decl: declarative: change it in the "
        "host's configuration)"
    )
    children = [j for j in runner.jobs() if j.parent == parent.id]
    assert sorted((j.action, j.vm) for j in children) == sorted(
        [("update", n) for n in "abcde"] + [("restart", n) for n in "abde"]
    )
    assert ("restart", "c") not in gate.order  # a failed build is not restarted


def test_cancelling_the_parent_cancels_what_has_not_finished() -> None:
    gate = Gate()
    runner = _runner(gate)
    plan = plan_bulk("update", [_vm(n, flake="path:/f") for n in "abcd"])
    parent = runner.submit_bulk(plan, builds=2, restarts=2)
    gate.wait_running(2)
    gate.release("update a")
    gate.wait_started("c")  # c took a's place
    assert runner.cancel(parent.id)
    done = runner.wait(parent.id, 10)
    assert done.state is JobState.CANCELLED
    assert "1 done" in (done.result or "") and "3 cancelled" in (done.result or "")
    children = {j.vm: j.state for j in runner.jobs() if j.parent == parent.id}
    assert children == {
        "a": JobState.SUCCEEDED,
        "b": JobState.CANCELLED,
        "c": JobState.CANCELLED,
    }  # d never started


def test_a_vm_busy_with_another_job_fails_in_the_bulk_not_waits() -> None:
    gate = Gate()
    runner = _runner(gate)
    single = runner.submit("update", "a")
    gate.wait_running(1)
    plan = plan_bulk("update", [_vm("a", flake="path:/f"), _vm("b", flake="path:/f")])
    parent = runner.submit_bulk(plan, builds=2, restarts=2)
    gate.wait_running(2)
    gate.release("update a", "update b")
    done = runner.wait(parent.id, 10)
    assert "1 failed (a: another job is running on a" in (done.result or "")
    assert runner.wait(single.id, 10).state is JobState.SUCCEEDED
