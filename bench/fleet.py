"""The app's CPU watching a fleet of 3 hosts vs watching 1 local host, in the same run.

Usage: python bench/fleet.py [--lab DIR] [--extra-running N] [--seconds 20] [--rounds 2]

One lab, reached three ways: as this host (``LiveSource``) and twice over its own sshd (two
``RemoteSource`` hosts, each its own agent and ssh session), so the fleet is 3 hosts of the
lab's VMs. Without --lab a lab is brought up in a fresh dir under /var/tmp and brought down at
the end; with --lab an existing one is used and left up.

The app runs headless (Textual's test driver: layout and rendering still happen) at a 1 s
interval; after the first complete snapshots (a warm-up), this process's CPU (user+system,
its own threads only) is measured over SECONDS, alternating one local host and the fleet of 3
for ROUNDS rounds (so a drift of the machine's load hits both). Printed per window and as
medians: % of one core for the app, and for its child processes alive at both ends of the
window (the ssh clients, tools). The agents' CPU is on the host (see bench/agent.py).
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.agent.client import RemoteSource  # noqa: E402
from tui.agent.hosts import RemoteHost  # noqa: E402
from tui.app import MicroVMApp  # noqa: E402
from tui.config import load_settings  # noqa: E402
from tui.feed import LiveSource, Source  # noqa: E402
from tui.feed.fleet import FLEET_REMOTE, FleetSource  # noqa: E402
from tui.lab import Lab  # noqa: E402

WARMUP_TIMEOUT_S = 120.0


def agent_command(lab: Lab) -> str:
    return (
        f"cd {shlex.quote(str(ROOT))} && exec {shlex.quote(sys.executable)} -m tui "
        f"--config {shlex.quote(str(lab.config_path))} agent"
    )


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def children_cpu_s(me: psutil.Process) -> float:
    total = 0.0
    for child in me.children(recursive=True):
        try:
            total += cpu_s(child)
        except psutil.Error:
            continue
    return total


async def window(lab: Lab, fleet: bool, seconds: float) -> tuple[float, float]:
    """(app %, ssh clients %) of one core over SECONDS, after the warm-up."""
    settings = dataclasses.replace(load_settings(lab.config_path), interval=1.0)
    source: Source
    if fleet:
        sources: dict[str, Source] = {"local": LiveSource(settings.host)}
        for name in ("ssh-a", "ssh-b"):
            host = RemoteHost(name, tuple(lab.sshd.ssh_args()), agent_command(lab))
            sources[name] = RemoteSource(host, interval=1.0, persist="no")
        source = FleetSource(sources, local="local", interval=1.0)
    else:
        source = LiveSource(settings.host)
    app = MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE if fleet else None)
    me = psutil.Process()
    async with app.run_test(size=(160, 48)) as pilot:
        deadline = time.monotonic() + WARMUP_TIMEOUT_S

        def ready() -> bool:
            snap = app.snapshot
            if snap is None or snap.partial or app.polls < 3:
                return False
            hosts = getattr(snap, "hosts", None)
            return hosts is None or all(h.reachable and h.polls >= 2 for h in hosts)

        while not ready():
            if time.monotonic() > deadline:
                raise SystemExit("the hosts did not answer in time")
            await pilot.pause(0.2)
        polls0 = app.polls
        app0, kids0, t0 = cpu_s(me), children_cpu_s(me), time.monotonic()
        await asyncio.sleep(seconds)
        app1, kids1, t1 = cpu_s(me), children_cpu_s(me), time.monotonic()
        polls = app.polls - polls0
        vms = len(app.snapshot.inventory.vms) if app.snapshot else 0
    wall = t1 - t0
    app_pct = (app1 - app0) / wall * 100
    ssh_pct = (kids1 - kids0) / wall * 100
    label = "fleet of 3" if fleet else "1 local   "
    print(
        f"  {label}: app {app_pct:5.1f}% of a core, child processes {ssh_pct:4.1f}%, "
        f"{vms} VMs in the table, {polls} polls in {wall:.0f} s",
        flush=True,
    )
    return app_pct, ssh_pct


def measure(lab: Lab, seconds: float, rounds: int) -> None:
    running = sum(1 for s in lab.specs if s.role == "running")
    print(f"lab: {len(lab.specs)} VMs ({running} running); windows of {seconds:.0f} s at 1 s")
    local: list[float] = []
    fleet: list[float] = []
    ssh: list[float] = []
    for _ in range(rounds):
        local.append(asyncio.run(window(lab, False, seconds))[0])
        app_pct, ssh_pct = asyncio.run(window(lab, True, seconds))
        fleet.append(app_pct)
        ssh.append(ssh_pct)
    lm, fm = statistics.median(local), statistics.median(fleet)
    print(
        f"median: 1 local host {lm:.1f}% of a core; fleet of 3 hosts {fm:.1f}% "
        f"({fm / lm:.2f}x) + child processes (its ssh clients, tools) {statistics.median(ssh):.1f}%"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path)
    parser.add_argument("--extra-running", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.lab:
        lab = Lab(args.lab)
        lab.up()
        measure(lab, args.seconds, args.rounds)
        return 0
    lab = Lab(
        Path(tempfile.mkdtemp(prefix="mvtui-bench-fleet-", dir="/var/tmp")),
        extra_running=args.extra_running,
    )
    try:
        lab.up()
        measure(lab, args.seconds, args.rounds)
    finally:
        lab.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
