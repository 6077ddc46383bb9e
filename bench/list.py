"""Whole-process time of `microvm-tui list --json` over synthetic state dirs of 10/100/1000/2000
VMs, against a real systemd manager (the lab's user manager, see bench/systemd_host.py).

Usage: python bench/list.py [--runs 5] [--running 0.1] [--counts 10,100,1000,2000]
A share RUNNING of each state dir's VMs runs (microvm@NAME active, its helpers active/exited):
`list` asks `systemctl show` about those; the others are not loaded, as for stopped VMs.
Goals: under 250 ms for 100 VMs, under 2 s for 2000 warm, growing linearly (2 cores).
"CPU ms": user+system time of `list` and its systemctl children (not the manager's), the
median: what the run costs whatever else the machine is doing.

The runners are added to the real Nix store (``nix-store --add``), as on a host, so `list`
keeps their parses in its cache ($XDG_CACHE_HOME/microvm-tui, here a temporary one). "cold"
runs start with no cache file (the first `list` on a host, or after an upgrade of
microvm-tui); "warm" runs find the previous run's file (every later `list`). The store paths
have no GC root: `nix-collect-garbage` removes them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.systemd_host import start_vms, stop_all, systemd_host
from tests.synthetic_host import make_host

# What an admin runs: the console script installed beside this Python (the venv's).
_SCRIPT = Path(sys.executable).parent / "microvm-tui"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tui"]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_list(argv: list[str], env: dict[str, str]) -> tuple[float, float, dict]:
    """Wall ms, CPU ms (`list` and the systemctl it ran, not the manager), the JSON."""
    cpu0 = _children_cpu()
    start = time.perf_counter()
    proc = subprocess.run(argv, capture_output=True, check=False, env=env)
    took = (time.perf_counter() - start) * 1000
    cpu = (_children_cpu() - cpu0) * 1000
    if proc.returncode != 0:
        sys.exit(f"list failed: {proc.stderr.decode(errors='replace')}")
    return took, cpu, json.loads(proc.stdout)


def time_list(
    state_dir: Path, runs: int, config: Path, cache_home: Path, *, warm: bool, running: int
) -> tuple[list[float], list[float]]:
    argv = [*COMMAND, "list", "--json", "--config", str(config), "--state-dir", str(state_dir)]
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    times, cpus = [], []
    for _ in range(runs):
        if not warm:
            shutil.rmtree(cache_home, ignore_errors=True)
        took, cpu, data = run_list(argv, env)
        times.append(took)
        cpus.append(cpu)
        # The figures count only if systemd answered for every VM.
        if data.get("systemd_error"):
            sys.exit(f"systemd: {data['systemd_error']}")
        active = sum(1 for vm in data["vms"] if vm["unit"]["active"] == "active")
        if active != running or any(vm["unit"]["error"] for vm in data["vms"]):
            sys.exit(f"list saw {active} active units, {running} expected")
    return times, cpus


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--running", type=float, default=0.1, help="share of VMs running")
    parser.add_argument("--counts", default="10,100,1000,2000")
    args = parser.parse_args()
    counts = [int(c) for c in args.counts.split(",")]
    # As installed by pip: byte-compiled (this environment sets PYTHONDONTWRITEBYTECODE).
    root = Path(__file__).resolve().parent.parent
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(root / "tui")],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": ""},
        check=False,
        stdout=subprocess.DEVNULL,
    )
    with (
        tempfile.TemporaryDirectory(prefix="mvtui-bench-", dir="/var/tmp") as tmp,
        systemd_host(Path(tmp) / "systemd") as (manager, config),
    ):
        print(
            f"systemd: the lab's user manager (pid {manager.pid()}); "
            f"{args.running:.0%} of the VMs running; {os.cpu_count()} CPUs, "
            f"load {os.getloadavg()[0]:.2f}"
        )
        print(
            f"{'VMs':>6} {'running':>8} {'cache':>6} {'median ms':>10} {'min ms':>8} "
            f"{'per VM ms':>10} {'CPU ms':>8}"
        )
        for count in counts:
            state = make_host(Path(tmp) / str(count), count, nix_store=True)
            names = sorted(p.name for p in state.iterdir())
            running = names[:: max(1, round(1 / args.running))] if args.running else []
            stop_all(manager)
            start_vms(manager, running)
            cache_home = Path(tmp) / f"cache-{count}"
            for warm in (False, True):
                times, cpus = time_list(
                    state, args.runs, config, cache_home, warm=warm, running=len(running)
                )
                median = statistics.median(times)
                label = "warm" if warm else "cold"
                print(
                    f"{count:>6} {len(running):>8} {label:>6} {median:>10.1f} "
                    f"{min(times):>8.1f} {median / count:>10.3f} "
                    f"{statistics.median(cpus):>8.0f}",
                    flush=True,
                )
        stop_all(manager)


if __name__ == "__main__":
    main()
