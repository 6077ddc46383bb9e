"""Bulk restart: N running lab VMs restarted as one bulk job, one at a time and then CONC at a
time; what the admin waits for is the parent job (every `systemctl restart` returned: the VM is
stopped and started again). Between the two runs every guest is waited for to have booted, so
the second run does not pay for the first one's boots.

    python bench/bulk.py [--vms 20] [--concurrency 4] [--lab DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import lab_root
from tui.host.actions.bulk import plan_bulk
from tui.host.actions.jobs import JobRunner, JobState
from tui.host.inventory import list_vms
from tui.lab import Lab
from tui.lab.lab import guest_booted

BOOT_S = 900.0


def running(lab: Lab, count: int) -> list:  # type: ignore[type-arg]
    # The lab's running VMs (not crashy, whose unit is active for a second of each loop).
    vms = [
        vm
        for vm in list_vms(lab.settings).vms
        if lab.spec(vm.name).role == "running"
        and vm.unit is not None
        and vm.unit.active == "active"
    ]
    if len(vms) < count:
        raise SystemExit(f"only {len(vms)} VMs run in the lab, {count} asked")
    return sorted(vms, key=lambda v: v.name)[:count]


def wait_booted(lab: Lab, names: list[str], since: float) -> float:
    t0 = time.monotonic()
    left = set(names)
    while left:
        left = {n for n in left if not guest_booted(lab.settings, n, since)}
        if time.monotonic() - t0 > BOOT_S:
            raise SystemExit(f"guests did not boot again: {sorted(left)}")
        time.sleep(1.0)
    return time.monotonic() - t0


def restart_all(lab: Lab, vms: list, concurrency: int) -> float:  # type: ignore[type-arg]
    runner = JobRunner(lab.settings)
    plan = plan_bulk("restart", vms)
    since = time.time()
    t0 = time.monotonic()
    parent = runner.submit_bulk(plan, builds=1, restarts=concurrency)
    done = runner.wait(parent.id)
    took = time.monotonic() - t0
    if done.state is not JobState.SUCCEEDED:
        raise SystemExit(f"the bulk restart failed: {done.result}")
    # A guest whose serial console is a socket (the lab's `console`) says nothing in the
    # journal: it is not waited for (as `lab up` does not).
    journal = [vm.name for vm in vms if not lab.spec(vm.name).serial_socket]
    boot = wait_booted(lab, journal, since)
    print(
        f"  concurrency {concurrency}: {took:.1f} s ({done.result});"
        f" guests booted {boot:.0f} s later"
    )
    return took


def measure(lab: Lab, count: int, concurrency: int) -> None:
    vms = running(lab, count)
    print(f"bulk restart of {len(vms)} lab VMs (QEMU under TCG, 2 cores):")
    serial = restart_all(lab, vms, 1)
    parallel = restart_all(lab, vms, concurrency)
    print(f"  concurrency {concurrency} takes {parallel / serial:.2f} of the serial time")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--vms", type=int, default=20)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--lab", type=Path, help="a lab that is up already")
    args = parser.parse_args()
    if args.lab:
        measure(Lab(args.lab), args.vms, args.concurrency)
        return
    # web, db, decl and console run in the default lab: the rest are vm01…
    lab = Lab(lab_root("mvtui-bench-bulk-"), extra_running=max(0, args.vms - 4))
    try:
        lab.up()
        measure(lab, args.vms, args.concurrency)
    finally:
        lab.down()


if __name__ == "__main__":
    main()
