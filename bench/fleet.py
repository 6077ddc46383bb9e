"""The app's CPU watching a fleet of 3 lab hosts vs watching 1 local lab host, in the same run.

Usage: python bench/fleet.py [--lab DIR] [--extra-running N] [--seconds 20] [--rounds 2]

One lab (default: 12 VMs, 9 running: --extra-running 5), reached two ways: as this host
(``LiveSource``, the app run on the host), and as 3 hosts over its own sshd (three
``RemoteSource`` hosts, each its own agent, ssh client and ControlMaster: the lab's one
address would share one control socket, so each host here gets a ControlPath dir of its own,
as three hosts would have three). Without --lab a lab is brought up in a fresh dir under
/var/tmp and brought down at the end; with --lab an existing one is used and left up.

Each window runs the app headless (Textual's test driver: layout and rendering happen) at a
1 s interval in a process of its own (``--window``), so the lab's processes are not its
children. Measured there, per window:
- filled: from the start of the app (sources made, ssh not yet started; a fresh ControlPath
  dir, so a cold connection) until every host's VMs are rows of the table (the fleet table,
  or the monitor's snapshot for one host), and until every host's snapshot is complete;
- then after a warm-up, over SECONDS: the app's CPU (user+system of all its threads), and its
  children's: its ssh clients and their ControlMasters (found by the window's ControlPath
  dir, alive at both ends) and the short-lived tools it ran and reaped meanwhile;
- each agent's own CPU on the host (this process reads it from the lab's sshd's children).
Windows alternate for ROUNDS rounds (a drift of the machine's load hits all): one local host;
the fleet of 3 over ssh; and, as ``--all-hosts`` with two hosts configured runs it, this host
plus 2 over ssh. Medians and the ratios to one local host (app + children) are printed.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.lab import Lab  # noqa: E402
from tui.lab.lab import MARKER  # noqa: E402

WARMUP_TIMEOUT_S = 60.0
WARMUP_S = 3.0  # after every host's first complete snapshot: rates, the journal's first read
FLEET_HOSTS = ("host-a", "host-b", "host-c")


def agent_command(lab: Lab) -> str:
    return (
        f"cd {shlex.quote(str(ROOT))} && exec {shlex.quote(sys.executable)} -m tui "
        f"--config {shlex.quote(str(lab.config_path))} agent"
    )


def cpu_s(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def processes_naming(text: str) -> list[psutil.Process]:
    """Our ssh clients and ControlMasters: the processes whose command line names TEXT (the
    window's ControlPath dir)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info.get("cmdline") or []
        if any(text in arg for arg in cmd):
            found.append(proc)
    return found


def cpu_of(procs: list[psutil.Process], single_threaded: bool = False) -> dict[int, float]:
    """Each process's CPU seconds. A single-threaded one's (ssh) from the scheduler's
    nanoseconds (``/proc/PID/schedstat``, its one thread): an ssh client's few microseconds a
    second are below ``cpu_times``' 10 ms ticks."""
    out = {}
    for proc in procs:
        try:
            if single_threaded:
                with open(f"/proc/{proc.pid}/schedstat", "rb") as fh:
                    out[proc.pid] = int(fh.read(200).split()[0]) / 1e9
            else:
                out[proc.pid] = cpu_s(proc)
        except (OSError, ValueError, IndexError, psutil.Error):
            continue
    return out


def agents(lab: Lab, since: float) -> list[psutil.Process]:
    """The agents started after SINCE: processes under the lab's sshd running ours."""
    pid = lab.sshd.pid()
    if pid is None:
        return []
    found = []
    for proc in psutil.Process(pid).children(recursive=True):
        try:
            cmd = proc.cmdline()
            if "agent" in cmd and str(lab.config_path) in cmd and proc.create_time() >= since:
                found.append(proc)
        except psutil.Error:
            continue
    return found


# --- one window, in a process of its own -----------------------------------------------------


async def run_window(lab: Lab, kind: str, seconds: float) -> dict:
    from tui.agent.client import RemoteSource
    from tui.agent.hosts import RemoteHost
    from tui.agent.ssh import ssh_argv
    from tui.app import MicroVMApp
    from tui.config import load_settings
    from tui.feed import LiveSource, Source
    from tui.feed.fleet import FLEET_REMOTE, FleetSource
    from tui.screens.fleet import FleetScreen

    fleet = kind != "local"

    runtime = Path(tempfile.mkdtemp(prefix="mvf-"))  # short: a socket path is < 108 bytes
    control = str(runtime)

    class OwnMaster(RemoteSource):
        """A host with a ControlPath dir of its own (a fresh one: a cold connection)."""

        def argv(self) -> list[str]:
            path = runtime / self.host.name
            path.mkdir(mode=0o700, exist_ok=True)
            return ssh_argv(
                self.host.ssh,
                [self.host.agent],
                control=path,
                connect_timeout=self.connect_timeout,
                persist=self.persist,
            )

    settings = dataclasses.replace(load_settings(lab.config_path), interval=1.0)
    nvms = len(lab.specs)
    t_launch = time.monotonic()
    source: Source
    if fleet:
        sources: dict[str, Source] = {}
        remote = FLEET_HOSTS
        if kind == "mixed":  # this host and two over ssh (--all-hosts with two configured)
            sources["local"] = LiveSource(settings.host)
            remote = FLEET_HOSTS[:2]
        for name in remote:
            host = RemoteHost(name, tuple(lab.sshd.ssh_args()), agent_command(lab))
            sources[name] = OwnMaster(host, interval=1.0)
        source = FleetSource(sources, local="local" if kind == "mixed" else None, interval=1.0)
    else:
        source = LiveSource(settings.host)
    app = MicroVMApp(settings, source, tty_watch=False, remote=FLEET_REMOTE if fleet else None)
    want = nvms * (len(FLEET_HOSTS) if fleet else 1)
    filled = complete = None
    try:
        async with app.run_test(size=(160, 48)) as pilot:
            deadline = t_launch + WARMUP_TIMEOUT_S

            def rows() -> int:
                if fleet:
                    screen = app.screen
                    return screen.table.row_count if isinstance(screen, FleetScreen) else 0
                return len(app.snapshot.inventory.vms) if app.snapshot else 0

            def is_complete() -> bool:
                snap = app.snapshot
                if snap is None or snap.partial:
                    return False
                hosts = getattr(snap, "hosts", None)
                if hosts is None:
                    return True
                return all(
                    h.reachable and h.snapshot is not None and not h.snapshot.partial for h in hosts
                )

            while filled is None or complete is None or app.polls < 3:
                if time.monotonic() > deadline:
                    snap = app.snapshot
                    why = [
                        f"{h.name}: {h.error or 'no snapshot'}"
                        for h in getattr(snap, "hosts", [])
                        if not h.reachable
                    ]
                    raise SystemExit(
                        f"the hosts did not answer in time ({rows()} rows, {app.polls} polls; "
                        + "; ".join(why)
                        + ")"
                    )
                now = time.monotonic() - t_launch
                if filled is None and rows() >= want:
                    filled = now
                if complete is None and rows() >= want and is_complete():
                    complete = now
                await pilot.pause(0.02)
            await asyncio.sleep(WARMUP_S)
            ssh0 = cpu_of(processes_naming(control), single_threaded=True) if fleet else {}
            polls0 = app.polls
            own0, t0 = os.times(), time.monotonic()
            print("START", flush=True)
            await asyncio.sleep(seconds)
            own1, t1 = os.times(), time.monotonic()
            ssh1 = cpu_of(processes_naming(control), single_threaded=True) if fleet else {}
            print("END", flush=True)
            polls = app.polls - polls0
            shown = rows()
            ssh_n = len(ssh1)
    finally:
        for proc in processes_naming(control):  # the ControlMasters (ControlPersist)
            proc.kill()
        shutil.rmtree(runtime, ignore_errors=True)
    wall = t1 - t0
    app_s = (own1.user - own0.user) + (own1.system - own0.system)
    reaped_s = (own1.children_user - own0.children_user) + (
        own1.children_system - own0.children_system
    )
    ssh_s = sum(ssh1[p] - ssh0[p] for p in ssh1 if p in ssh0)
    return {
        "app": app_s / wall * 100,
        "ssh": ssh_s / wall * 100,
        "ssh_processes": ssh_n,
        "tools": reaped_s / wall * 100,
        "filled_s": filled,
        "complete_s": complete,
        "vms": shown,
        "polls": polls,
        "wall": wall,
    }


# --- the run: windows alternating, agents measured from outside ------------------------------


LABELS = {"local": "1 local   ", "fleet": "3 over ssh", "mixed": "local + 2 "}


def window(lab: Lab, kind: str, seconds: float) -> dict:
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--lab",
        str(lab.root),
        "--seconds",
        str(seconds),
        "--window",
        kind,
    ]
    fleet = kind != "local"
    started = time.time()
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    measured: dict[int, float] = {}
    agent_pct: list[float] = []
    t0 = 0.0
    result: dict | None = None
    for line in proc.stdout:
        if line.startswith("START"):
            t0 = time.monotonic()
            measured = cpu_of(agents(lab, started - 1)) if fleet else {}
        elif line.startswith("END"):
            wall = time.monotonic() - t0
            after = cpu_of(agents(lab, started - 1)) if fleet else {}
            agent_pct = [(after[p] - measured[p]) / wall * 100 for p in after if p in measured]
        elif line.startswith("{"):
            result = json.loads(line)
    if proc.wait() != 0 or result is None:
        raise SystemExit(f"the {kind} window failed")
    result["agents"] = sorted(agent_pct)
    label = LABELS[kind]
    total = result["app"] + result["ssh"] + result["tools"]
    kids = (
        f"ssh {result['ssh']:4.2f}% ({result['ssh_processes']} clients and masters), "
        if fleet
        else ""
    )
    agents_text = (
        "; agents " + ", ".join(f"{a:.1f}%" for a in result["agents"]) + " on the host"
        if fleet
        else ""
    )
    print(
        f"  {label}: app {result['app']:4.1f}% + {kids}tools {result['tools']:3.1f}% "
        f"= {total:4.1f}% of a core; {result['vms']} VMs in the table at "
        f"{result['filled_s']:.2f} s, complete at {result['complete_s']:.2f} s; "
        f"{result['polls']} polls in {result['wall']:.0f} s{agents_text}",
        flush=True,
    )
    result["total"] = total
    return result


def measure(lab: Lab, seconds: float, rounds: int) -> None:
    running = sum(1 for s in lab.specs if s.role == "running")
    print(
        f"lab: {len(lab.specs)} VMs ({running} running); windows of {seconds:.0f} s at 1 s; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        flush=True,
    )
    runs: dict[str, list[dict]] = {kind: [] for kind in LABELS}
    for _ in range(rounds):
        for kind in LABELS:
            runs[kind].append(window(lab, kind, seconds))

    def med(kind: str, key: str) -> float:
        return statistics.median(r[key] for r in runs[kind])

    lt, la = med("local", "total"), med("local", "app")
    parts = [f"median: 1 local host {lt:.1f}% of a core (app {la:.1f}%)"]
    for kind, what in (("fleet", "3 hosts over ssh"), ("mixed", "this host + 2 over ssh")):
        total, app = med(kind, "total"), med(kind, "app")
        parts.append(f"{what} {total:.1f}% (app {app:.1f}%): {total / lt:.2f}x")
    print("; ".join(parts))
    agent_all = [a for kind in ("fleet", "mixed") for r in runs[kind] for a in r["agents"]]
    print(
        f"fleet table filled (every host's VMs listed) in {med('fleet', 'filled_s'):.2f} s "
        f"(3 over ssh), {med('mixed', 'filled_s'):.2f} s (local + 2), medians; each agent "
        f"on its host: median {statistics.median(agent_all):.1f}% of a core; "
        f"load {' '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )


def recorded_extra(root: Path) -> int:
    try:
        return int(json.loads((root / MARKER).read_text()).get("extra_running", 0))
    except (OSError, ValueError, AttributeError):
        return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path)
    parser.add_argument("--extra-running", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--window", choices=tuple(LABELS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.window:
        lab = Lab(args.lab, extra_running=recorded_extra(args.lab))
        result = asyncio.run(run_window(lab, args.window, args.seconds))
        print(json.dumps(result), flush=True)
        return 0
    if args.lab:
        lab = Lab(args.lab, extra_running=recorded_extra(args.lab))
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
