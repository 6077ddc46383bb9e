"""Host checks against the lab: each leftover provoked for real (a unit with no state dir in the
lab's systemd manager, GC roots of a VM that is gone, a tap in the lab's namespace no VM names, a
block device a VM's user cannot open), found by ``run_checks``, cleaned, and gone; the healthy
lab shows none of them."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tui.host.checks.clean import clean
from tui.host.checks.findings import CheckKind
from tui.host.checks.report import run_checks
from tui.host.inventory import list_vms
from tui.host.sampling.cgroup import host_layout

pytestmark = pytest.mark.lab


def _checks(lab):  # type: ignore[no-untyped-def]
    settings = lab.settings
    return run_checks(list_vms(settings), settings, host_layout())


def _kinds(report) -> set[CheckKind]:  # type: ignore[no-untyped-def]
    return {f.kind for f in report.findings}


def test_the_healthy_lab_has_no_leftovers(lab) -> None:  # type: ignore[no-untyped-def]
    report = _checks(lab)
    assert report.errors == []
    leftover = {CheckKind.ORPHAN_UNIT, CheckKind.STALE_GCROOT, CheckKind.ORPHAN_TAP}
    assert not (_kinds(report) & leftover), report.findings


def test_leftovers_are_found_and_cleaned(lab, wait_for) -> None:  # type: ignore[no-untyped-def]
    settings = lab.settings
    # A VM removed from the config whose unit still runs: started (a stand-in hypervisor
    # that only sleeps), then its state dir deleted under it, as the tracker reports.
    ghost = settings.state_dir / "ghost"
    (ghost / "runner" / "bin").mkdir(parents=True)
    (ghost / "current").symlink_to("runner")
    run = ghost / "runner" / "bin" / "microvm-run"
    run.write_text("#!/bin/sh\nexec /bin/sleep 600\n")
    run.chmod(0o755)
    lab.manager.systemctl("start", "microvm@ghost.service")
    shutil.rmtree(ghost)
    # Its GC roots, as `microvm -c` made them.
    for name in ("ghost", "booted-ghost"):
        (settings.gcroots_dir / name).symlink_to(settings.state_dir / "gone" / "current")
    # Its tap, still there after it was removed.
    subprocess.run(
        ["ip", "-n", lab.netns, "tuntap", "add", "dev", "vm-ghost", "mode", "tap"], check=True
    )
    try:
        wait_for(lambda: "microvm@ghost.service" in {f.subject for f in _checks(lab).findings})
        report = _checks(lab)
        subjects = {f.subject: f for f in report.findings}
        assert subjects["microvm@ghost.service"].kind is CheckKind.ORPHAN_UNIT
        assert subjects["ghost"].kind is CheckKind.STALE_GCROOT
        assert subjects["booted-ghost"].kind is CheckKind.STALE_GCROOT
        assert subjects["vm-ghost"].kind is CheckKind.ORPHAN_TAP
        assert lab.netns in subjects["vm-ghost"].message
        # The lab's own VMs, their roots and taps are not leftovers.
        assert not any(f.subject.startswith(("microvm@web", "vm-web")) for f in report.findings)
        for name in ("microvm@ghost.service", "ghost", "booted-ghost", "vm-ghost"):
            step = subjects[name].clean
            assert step is not None
            clean(step, settings)
        after = {f.subject for f in _checks(lab).findings}
        assert not after & {"microvm@ghost.service", "ghost", "booted-ghost", "vm-ghost"}
        state = lab.manager.systemctl("is-active", "microvm@ghost.service", check=False)
        assert state.stdout.strip() == "inactive"
    finally:
        lab.manager.systemctl("stop", "microvm@ghost.service", check=False)
        lab.manager.systemctl("reset-failed", "microvm@ghost.service", check=False)
        shutil.rmtree(settings.state_dir / "ghost", ignore_errors=True)
        for name in ("ghost", "booted-ghost"):
            (settings.gcroots_dir / name).unlink(missing_ok=True)
        subprocess.run(["ip", "-n", lab.netns, "link", "del", "vm-ghost"], check=False)
