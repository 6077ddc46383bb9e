"""Unit state from one list-units plus `show` for loaded units only, against the lab's real
systemd manager: what `list` says equals what `systemctl show` says, a unit that is not loaded
is never loaded by us, chunking changes nothing, and the app shows the state dirs first."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import pytest

from tests.conftest import until_in_app, wait_for
from tui.host.inventory import list_vms
from tui.host.model import PENDING, UnitState
from tui.host.systemd import PATTERNS, Systemctl, unit_states

pytestmark = pytest.mark.lab

COMPARED = ("active", "sub", "main_pid", "restarts", "control_group")


def loaded_units(lab: Any) -> set[str]:
    """Every unit of ours the lab's manager has loaded, as `systemctl list-units --all` says."""
    out = lab.manager.systemctl("list-units", "--all", "--output=json", "--", *PATTERNS)
    return {row["unit"] for row in json.loads(out.stdout)}


def shown(lab: Any, units: Sequence[str]) -> dict[str, dict[str, Any]]:
    """What `systemctl show` says about UNITS, in UnitState's terms (loading them if need be)."""
    props = "Id,ActiveState,SubState,MainPID,NRestarts,ControlGroup"
    out = lab.manager.systemctl("show", "-p", props, "--", *units)
    states = {}
    for block in out.stdout.strip().split("\n\n"):
        kv = dict(line.split("=", 1) for line in block.splitlines() if "=" in line)
        states[kv["Id"]] = {
            "active": kv["ActiveState"],
            "sub": kv["SubState"],
            "main_pid": int(kv["MainPID"]) or None,
            "restarts": int(kv["NRestarts"]),
            "control_group": kv["ControlGroup"] or None,
        }
    return states


def words(unit: UnitState) -> dict[str, Any]:
    return {k: getattr(unit, k) for k in COMPARED}


class Recorder:
    """The real systemctl client, recording every name it is asked to `show`."""

    def __init__(self, settings: Any) -> None:
        self.client = Systemctl(settings)
        self.shown: list[str] = []
        self.calls = 0

    def list_units(self, patterns: Sequence[str]) -> dict[str, UnitState]:
        return self.client.list_units(patterns)

    def show(self, units: Sequence[str]) -> dict[str, UnitState]:
        self.calls += 1
        self.shown += units
        return self.client.show(units)


def lab_units(lab: Any) -> tuple[list[str], list[str]]:
    vms = list_vms(lab.settings, links=False).vms
    mains = [vm.unit.name for vm in vms if vm.unit is not None and vm.name_valid]
    helpers = [h.name for vm in vms for h in vm.helper_units]
    return mains, helpers


def test_list_equals_systemctl_show_for_loaded_and_not_loaded_units(lab: Any) -> None:
    mains, helpers = lab_units(lab)

    def agree() -> tuple[dict[str, UnitState], set[str]] | None:
        # crashy restarts every few seconds: look until one listing and one show agree.
        before = loaded_units(lab)
        report = unit_states(Systemctl(lab.settings), mains, helpers)
        truth = shown(lab, [*mains, *helpers])
        ours = {
            n: words(u) if n in mains else {"active": u.active, "sub": u.sub}
            for n, u in report.units.items()
        }
        theirs = {
            n: t if n in mains else {"active": t["active"], "sub": t["sub"]}
            for n, t in truth.items()
        }
        return (report.units, before) if ours == theirs and report.error is None else None

    units, loaded = wait_for(agree, timeout=60, interval=0.5, what="list and show to agree")
    # Both kinds were compared: running VMs' units are loaded, idle's and broken's are not.
    assert "microvm@web.service" in loaded and units["microvm@web.service"].main_pid
    not_loaded = [n for n in mains if n not in loaded]
    assert {"microvm@idle.service", "microvm@broken.service"} <= set(not_loaded)
    for name in not_loaded:
        unit = units[name]
        assert (unit.active, unit.sub, unit.restarts, unit.main_pid) == (
            "inactive",
            "dead",
            0,
            None,
        )


def test_a_unit_that_is_not_loaded_is_never_loaded_to_ask(lab: Any) -> None:
    before = loaded_units(lab)
    assert "microvm@idle.service" not in before
    recorder = Recorder(lab.settings)
    inv = list_vms(lab.settings, links=False)
    from tui.host.inventory import attach_units

    assert attach_units(lab.settings, inv.vms, client=recorder) is None
    after = loaded_units(lab)
    idle = next(vm for vm in inv.vms if vm.name == "idle")
    assert (idle.unit.active, idle.unit.sub, idle.unit.restarts) == ("inactive", "dead", 0)
    assert all(h.active == "inactive" and h.sub == "dead" for h in idle.helper_units)
    # Never named to `show` (which would load it), and still not loaded afterwards.
    asked = set(recorder.shown)
    assert not asked & {u.name for u in [idle.unit, *idle.helper_units]}
    assert asked <= before | after, asked - (before | after)
    assert "microvm@idle.service" not in after
    # Quiet helpers (oneshots that ran) are not asked either: list-units said all there is.
    web = next(vm for vm in inv.vms if vm.name == "web")
    booted = next(h for h in web.helper_units if h.name.startswith("microvm-set-booted@"))
    assert (booted.active, booted.sub) == ("active", "exited")
    assert booted.name not in asked
    assert "microvm@web.service" in asked


def test_the_cli_list_reports_not_loaded_units_and_loads_none(lab: Any) -> None:
    before = loaded_units(lab)
    proc = subprocess.run(
        [sys.executable, "-m", "tui", "list", "--json", "--config", str(lab.config_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    vms = {vm["name"]: vm for vm in json.loads(proc.stdout)["vms"]}
    assert "microvm@idle.service" not in loaded_units(lab) | before
    unit = vms["idle"]["unit"]
    assert (unit["active"], unit["sub"], unit["restarts"], unit["main_pid"]) == (
        "inactive",
        "dead",
        0,
        None,
    )
    assert unit["error"] is None


@pytest.mark.parametrize("chunk,workers", [(1, 4), (2, 2), (3, 1)])
def test_chunks_give_what_one_call_gives(lab: Any, chunk: int, workers: int) -> None:
    mains, helpers = lab_units(lab)

    def same() -> bool:
        one = Recorder(lab.settings)
        many = Recorder(lab.settings)
        a = unit_states(one, mains, helpers, chunk=10_000, workers=1)
        b = unit_states(many, mains, helpers, chunk=chunk, workers=workers)
        assert one.calls == 1 and many.calls == -(-len(many.shown) // chunk) > 1
        # crashy may restart between the two (and its helpers with it): look again.
        return a == b and sorted(one.shown) == sorted(many.shown)

    wait_for(same, timeout=60, interval=0.5, what="chunked and single answers to agree")


async def test_the_app_shows_the_state_dirs_while_systemd_is_slow(lab: Any) -> None:
    """The lab's manager is stopped (SIGSTOP: a real manager that does not answer): the table
    lists every VM with its state-dir facts and "asking systemd"; once the manager runs again
    the unit states fill in."""
    from tui.app import MicroVMApp
    from tui.config import Settings
    from tui.feed import LiveSource, Prefetched
    from tui.widgets.vm_table import VMTable

    pid = lab.manager.pid()
    assert pid is not None
    # VMs, not dot files (a VM's job lock, `.NAME.lock`, stays after its job)
    names = {p.name for p in lab.settings.state_dir.iterdir() if not p.name.startswith(".")}
    os.kill(pid, signal.SIGSTOP)
    try:
        source = Prefetched(LiveSource(lab.settings))
        app = MicroVMApp(Settings(host=lab.settings), source, tty_watch=False)
        async with app.run_test(size=(160, 48)) as pilot:
            table = app.main_screen.query_one(VMTable)
            await until_in_app(pilot, lambda: app.polls >= 1, 30, what="the first look")
            snap = app.snapshot
            assert snap is not None and snap.partial
            assert {vm.name for vm in snap.inventory.vms} == names
            assert set(table.order) == names
            assert all(
                vm.unit is not None and vm.unit.active == PENDING
                for vm in snap.inventory.vms
                if vm.name_valid
            )
            web = next(vm for vm in snap.inventory.vms if vm.name == "web")
            assert web.hypervisor == "qemu" and web.runner and web.vcpu  # state-dir facts
            assert "asking systemd" in str(table.get_cell("web", "state"))
            os.kill(pid, signal.SIGCONT)
            await until_in_app(
                pilot,
                lambda: (
                    "running" in str(table.get_cell("web", "state"))
                    or "active" in str(table.get_cell("web", "state"))
                ),
                60,
                what="web's unit state to fill in",
            )
            # Shown with the units alone (partial: the links and samples come next), then whole.
            assert app.snapshot is not None and app.snapshot.inventory.systemd_error is None
            await until_in_app(
                pilot,
                lambda: app.snapshot is not None and not app.snapshot.partial,
                60,
                what="the first sampled poll",
            )
            assert app.snapshot.inventory.systemd_error is None
    finally:
        os.kill(pid, signal.SIGCONT)
