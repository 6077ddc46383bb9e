"""The agent protocol's cost on a lab host reached over real ssh (the lab's own sshd).

Usage: python bench/agent.py [--lab DIR] [--extra-running N] [--seconds 30]

Without --lab a lab is brought up in a fresh dir under /var/tmp and brought down at the end;
with --lab an existing one is used and left up.

Printed:
- first snapshot: from starting ssh (no shared connection) to the first decoded snapshot
  (the state dirs, before systemd answers), to the agent's hello, and to the first complete
  snapshot, medians of 3 sessions;
- wire: protocol bytes per second from the agent over SECONDS at a 1 s interval, after the
  first snapshots (whose size is printed too); nothing changes on the lab meanwhile;
  and what the ssh client read from its socket meanwhile (the network's bytes: encrypted,
  after ssh's compression; its /proc/PID/io rchar, less the protocol bytes it read from us);
- agent CPU: the agent process's CPU (user+system) over the window, % of one core, on the host;
- app side: this process's CPU while it only polls the RemoteSource once a second (reading,
  patching, decoding, the history), and the ssh client's, % of one core.
"""

from __future__ import annotations

import argparse
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
from tui.lab import Lab  # noqa: E402


def agent_command(lab: Lab) -> str:
    return (
        f"cd {shlex.quote(str(ROOT))} && exec {shlex.quote(sys.executable)} -m tui "
        f"--config {shlex.quote(str(lab.config_path))} agent"
    )


def agent_process(lab: Lab) -> psutil.Process:
    """The agent: a process under the lab's sshd whose command line is ours."""
    sshd = psutil.Process(lab.sshd.pid())
    for proc in sshd.children(recursive=True):
        try:
            cmd = proc.cmdline()
        except psutil.Error:
            continue
        if "agent" in cmd and str(lab.config_path) in cmd:
            return proc
    raise SystemExit("the agent process was not found under the lab's sshd")


def ssh_client(source: RemoteSource) -> psutil.Process | None:
    proc = source._proc  # the bench looks inside: the ssh client the source started
    return psutil.Process(proc.pid) if proc is not None else None


def bytes_read(proc: psutil.Process | None) -> int:
    return proc.io_counters().read_chars if proc is not None else 0


def cpu(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return t.user + t.system


def measure(lab: Lab, seconds: float) -> None:
    host = RemoteHost("lab", tuple(lab.sshd.ssh_args()), agent_command(lab))
    firsts, completes, hellos = [], [], []
    for _ in range(3):
        t0 = time.monotonic()
        src = RemoteSource(host, interval=1.0, persist="no")
        src.poll()
        firsts.append(time.monotonic() - t0)
        src.poll_complete()
        completes.append(time.monotonic() - t0)
        hellos.append(src.rtt_s or 0.0)
        src.close()
    median = statistics.median(firsts) * 1000
    each = ", ".join(f"{f * 1000:.0f}" for f in firsts)
    print(f"first snapshot over a new ssh connection: median {median:.0f} ms ({each} ms)")
    print(
        f"... of which the agent's hello: median {statistics.median(hellos) * 1000:.0f} ms; "
        f"the first complete one (systemd, sampling): {statistics.median(completes) * 1000:.0f} ms"
    )
    src = RemoteSource(host, interval=1.0, persist="no")
    try:
        src.poll_complete()
        full = src.bytes_in
        for _ in range(5):  # warm-up: the sampler's rates, the journal summary's first read
            src.poll()
        agent = agent_process(lab)
        client = ssh_client(src)
        b0, a0, r0 = src.bytes_in, cpu(agent), bytes_read(client)
        c0 = cpu(client) if client else 0.0
        p0, t0 = time.process_time(), time.monotonic()
        polls = 0
        while time.monotonic() - t0 < seconds:
            src.poll()
            polls += 1
        wall = time.monotonic() - t0
        wire = (src.bytes_in - b0) / wall
        # the ssh client also reads what we write to it (focus messages: none here)
        network = (bytes_read(client) - r0) / wall
        agent_pct = (cpu(agent) - a0) / wall * 100
        app_pct = (time.process_time() - p0) / wall * 100
        ssh_pct = ((cpu(client) - c0) / wall * 100) if client else float("nan")
        vms = len(src.poll().inventory.vms)
    finally:
        src.close()
    running = sum(1 for s in lab.specs if s.role == "running")
    print(f"lab: {vms} VMs, {running} running; {polls} snapshots in {wall:.1f} s")
    print(f"first (whole) snapshot: {full} bytes")
    print(f"protocol while idle: {wire:.0f} B/s ({wire / 1024:.2f} KiB/s)")
    print(f"network while idle (the ssh client's socket reads): {network:.0f} B/s")
    print(f"agent CPU on the host: {agent_pct:.2f}% of a core")
    print(f"app side: RemoteSource {app_pct:.2f}% of a core, ssh client {ssh_pct:.2f}%")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lab", type=Path)
    parser.add_argument("--extra-running", type=int, default=0)
    parser.add_argument("--seconds", type=float, default=30.0)
    args = parser.parse_args()
    if args.lab:
        lab = Lab(args.lab)
        lab.up()
        measure(lab, args.seconds)
        return 0
    lab = Lab(
        Path(tempfile.mkdtemp(prefix="mvtui-bench-agent-", dir="/var/tmp")),
        extra_running=args.extra_running,
    )
    try:
        lab.up()
        measure(lab, args.seconds)
    finally:
        lab.down()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
