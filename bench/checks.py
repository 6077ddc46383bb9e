"""What the host checks cost the monitor: CPU of one full check run against the lab (our
process, its children, and the lab's systemd manager answering our queries), and so the share
of a core at the app's pace of one run a minute.

    python bench/checks.py [--runs 20] [--lab DIR]

Brings up a lab of its own (or uses the running one at --lab) with its VMs running.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.conftest import lab_root
from tui.host.checks.report import run_checks
from tui.host.inventory import list_vms
from tui.host.sampling.cgroup import host_layout
from tui.lab import Lab

EVERY_S = 60.0  # the app runs the checks once a minute


def cpu_of(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def measure(lab: Lab, runs: int) -> None:
    settings = lab.settings
    layout = host_layout()
    me = psutil.Process()
    manager = psutil.Process(lab.manager.pid())
    inventory = list_vms(settings)  # the poll's listing: the checks reuse it, not measured
    run_checks(inventory, settings, layout)  # warm: imports, pyroute2's first socket
    walls, cpus, managers = [], [], []
    for _ in range(runs):
        c0, m0, w0 = cpu_of(me), cpu_of(manager), time.perf_counter()
        report = run_checks(inventory, settings, layout)
        walls.append(time.perf_counter() - w0)
        cpus.append(cpu_of(me) - c0)
        managers.append(cpu_of(manager) - m0)
    cpu = statistics.median(cpus) + statistics.median(managers)
    print(f"host checks, {len(inventory.vms)} VMs, {runs} runs (median):")
    print(f"  wall {statistics.median(walls) * 1000:.0f} ms per run; found {len(report.findings)}")
    print(
        f"  CPU {statistics.median(cpus) * 1000:.1f} ms ours + children, "
        f"{statistics.median(managers) * 1000:.1f} ms the systemd manager"
    )
    print(f"  at one run per {EVERY_S:.0f} s: {cpu / EVERY_S * 100:.3f} points of a core")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--lab", type=Path, help="a lab that is up already")
    args = parser.parse_args()
    if args.lab:
        measure(Lab(args.lab), args.runs)
        return
    lab = Lab(lab_root("mvtui-bench-checks-"))
    try:
        lab.up()
        measure(lab, args.runs)
    finally:
        lab.down()


if __name__ == "__main__":
    main()
