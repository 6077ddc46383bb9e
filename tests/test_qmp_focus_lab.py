"""What QMP asks a VM in focus and one not in focus, against the real lab's qemus: the commands
are recorded where every one of them goes out (``QMPSession._one``, under the real session),
and the app's poll when the VM in focus changes.

A VM not in focus is asked only ``qmp_capabilities`` + ``query-status`` on its turn (every
``REMOTE_EVERY`` polls); its balloon, guest memory and block figures are unknown
(``Why.NOT_ASKED``), and the first poll with it in focus asks them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from tests.conftest import until_in_app
from tests.monitor_support import SIZE
from tests.test_sampling_qmp import record_commands
from tui.app import MicroVMApp
from tui.config import load_settings
from tui.feed import REMOTE_EVERY, LiveSource, Snapshot
from tui.host.inventory import list_vms
from tui.host.model import VM
from tui.host.sampling import Sampler, VMSample, Why
from tui.widgets.vm_table import VMTable

pytestmark = pytest.mark.lab

# What the detail pane alone shows, asked only of the VM in focus.
DETAIL_ONLY = {"query-balloon", "query-blockstats", ("qom-get", "guest-stats")}


@pytest.fixture(scope="module")
def settings(lab: Any) -> Any:
    return load_settings(lab.config_path)


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any]]]:
    """Every QMP command this process sends, as (command, its qom property or None), in
    order: recorded by the real session's one place of sending."""
    yield record_commands(monkeypatch)


def running(settings: Any, name: str) -> VM:
    vm = next(v for v in list_vms(settings.host, links=False).vms if v.name == name)
    assert vm.unit is not None and vm.unit.main_pid, f"{name} is not running in the lab"
    return vm


def detail_only(commands: list[tuple[str, Any]]) -> set[Any]:
    asked = {c for c, _ in commands} | {(c, p) for c, p in commands if p is not None}
    return asked & DETAIL_ONLY


def not_known(s: VMSample) -> None:
    """Guest memory and block figures unknown, and said why with the typed reason."""
    assert s.mem_guest_visible_mib is None and s.mem_guest_used_mib is None
    assert s.block == {}
    for field in ("mem_guest_visible_mib", "mem_guest_used_mib", "block"):
        assert s.reasons[field] is Why.NOT_ASKED, (field, s.reasons.get(field))


def test_a_vm_not_in_focus_is_asked_only_its_state(
    settings: Any, sent: list[tuple[str, Any]]
) -> None:
    web = running(settings, "web")  # a balloon, a volume, a guest that reports statistics
    with Sampler(remote_every=REMOTE_EVERY) as sampler:
        # First contact, not in focus: its state, the sizes, the balloon set-up; no more.
        first = sampler.sample([web], settings.host)["web"]
        assert first.qmp_status == "running", first.reasons
        assert detail_only(sent) == set(), sent
        assert {c for c, _ in sent} <= {
            "qmp_capabilities",
            "query-status",
            "query-cpus-fast",
            "query-memory-size-summary",
            "qom-get",  # guest-stats-polling-interval
            "qom-set",
        }, sent
        assert first.mem_configured_mib == 256 and first.vcpu_count
        not_known(first)

        # Its turns: caps and state only, every REMOTE_EVERY polls; the answer stands between.
        turns = []
        for _ in range(2 * REMOTE_EVERY):
            sent.clear()
            s = sampler.sample([web], settings.host)["web"]
            if sent:
                turns.append(list(sent))
            assert s.qmp_status == "running"
            not_known(s)
        assert turns == [[("qmp_capabilities", None), ("query-status", None)]] * 2, turns

        # In focus: the next poll asks the rest; guest memory comes at once, block rates
        # one poll later (the counters of two full answers).
        sent.clear()
        focused = sampler.sample([web], settings.host, focus=["web"])["web"]
        assert detail_only(sent) == DETAIL_ONLY, sent
        assert focused.mem_guest_visible_mib == 256, focused.reasons
        assert focused.reasons.get("mem_guest_used_mib") is not Why.NOT_ASKED
        assert focused.block == {} and focused.reasons["block"] is Why.NEEDS_TWO
        second = sampler.sample([web], settings.host, focus=["web"])["web"]
        assert second.block and "block" not in second.reasons, second.reasons

        # Out of focus for longer than the block window, then in focus again: its block
        # rates start over (no rate over minutes shown as current).
        for _ in range(2 * REMOTE_EVERY + 1):
            sampler.sample([web], settings.host)
        again = sampler.sample([web], settings.host, focus=["web"])["web"]
        assert again.block == {} and again.reasons["block"] is Why.NEEDS_TWO


class RecordingSource(LiveSource):
    """The lab's live source, remembering the focus each poll was asked with."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.polled: list[tuple[str | None, Snapshot]] = []

    def poll(self, focus: str | None = None) -> Snapshot:
        snap = super().poll(focus)
        self.polled.append((focus, snap))
        return snap


async def test_a_focus_change_polls_at_once(settings: Any) -> None:
    # A timer that would not fire during the test: any poll after the cursor moves is the
    # one the focus change started.
    slow = dataclasses.replace(settings, interval=60.0)
    source = RecordingSource(slow.host)
    app = MicroVMApp(slow, source, tty_watch=False)
    async with app.run_test(size=SIZE) as pilot:
        table = app.main_screen.query_one(VMTable)

        def settled() -> bool:  # a full poll with web and db running, none under way
            snap = app.snapshot
            return bool(
                snap is not None
                and not snap.partial
                and {"web", "db"} <= snap.samples.keys()
                and not app._polling
            )

        await until_in_app(pilot, settled, 60, what="web and db sampled")

        def quiet() -> bool:  # the launch's own focus poll (the cursor's first row) is done
            return settled() and app._focus_settle is None and not app._poll_again

        await until_in_app(pilot, quiet, 20, what="no poll under way or due")
        target = "db" if app.main_screen.selected_name != "db" else "web"
        before = len(source.polled)
        assert app.snapshot is not None
        assert app.snapshot.samples[target].reasons["mem_guest_visible_mib"] is Why.NOT_ASKED
        table.move_cursor(row=table.get_row_index(target))
        await until_in_app(
            pilot,
            lambda: any(f == target for f, _ in source.polled[before:]),
            15,
            what=f"a poll with {target} in focus",
        )
        snap = next(s for f, s in source.polled[before:] if f == target)
        sample = snap.samples[target]
        assert sample.mem_guest_visible_mib is not None, sample.reasons
        assert sample.reasons.get("block") is not Why.NOT_ASKED


def test_the_focus_reaches_a_remote_hosts_agent(lab: Any, settings: Any) -> None:
    """The fleet's focus on a VM of a host reached over ssh: the host's agent is told, and
    its sampler asks that VM everything (its guest memory comes over the wire), where before
    it asked only its state."""
    from tests.conftest import wait_for
    from tests.test_fleet_lab import agent_command
    from tui.agent.client import RemoteSource
    from tui.agent.hosts import RemoteHost
    from tui.feed.fleet import FleetSource

    host = RemoteHost("far", tuple(lab.sshd.ssh_args()), agent_command(lab))
    source = FleetSource({"far": RemoteSource(host, interval=settings.interval)})
    try:

        def web(focus: str | None) -> VMSample | None:
            snap = source.poll(focus)
            status = snap.hosts[0].snapshot
            if status is None or status.partial:
                return None
            s = snap.samples.get("far/web")
            return s if s is not None and s.qmp_status == "running" else None

        unfocused = wait_for(lambda: web(None), 60, what="far/web sampled")
        assert unfocused.reasons["mem_guest_visible_mib"] is Why.NOT_ASKED
        focused = wait_for(
            lambda: (s := web("far/web")) and s.mem_guest_visible_mib is not None and s,
            20,
            what="far/web's guest memory with it in focus",
        )
        assert focused.mem_guest_visible_mib == 256
    finally:
        source.close()
