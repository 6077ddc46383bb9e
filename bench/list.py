"""Whole-process time of `microvm-tui list --json` over synthetic state dirs of 10/100/1000 VMs.

Usage: python bench/list.py [--runs 5] [--config LAB_CONFIG]
With --config, systemd and the netns come from that config (e.g. the lab's), so the systemctl
call is real; without it, systemd is whatever this machine has (here: none, which answers fast).
Goal: under 250 ms for 100 VMs on a 2-core machine, growing linearly.

The runners are added to the real Nix store (``nix-store --add``), as on a host, so `list`
keeps their parses in its cache ($XDG_CACHE_HOME/microvm-tui, here a temporary one). "cold"
runs start with no cache file (the first `list` on a host, or after an upgrade of
microvm-tui); "warm" runs find the previous run's file (every later `list`). The store paths
have no GC root: `nix-collect-garbage` removes them.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.synthetic_host import make_host

# What an admin runs: the console script installed beside this Python (the venv's).
_SCRIPT = Path(sys.executable).parent / "microvm-tui"
COMMAND = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tui"]


def time_list(
    state_dir: Path, runs: int, config: Path | None, cache_home: Path, *, warm: bool
) -> list[float]:
    argv = [*COMMAND, "list", "--json", "--state-dir", str(state_dir)]
    if config:
        argv[len(COMMAND) + 1 : len(COMMAND) + 1] = ["--config", str(config)]
    env = {**os.environ, "XDG_CACHE_HOME": str(cache_home)}
    times = []
    for _ in range(runs):
        if not warm:
            shutil.rmtree(cache_home, ignore_errors=True)
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False, env=env)
        times.append((time.perf_counter() - start) * 1000)
        if proc.returncode != 0:
            sys.exit(f"list failed: {proc.stderr.decode(errors='replace')}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    print(f"{'VMs':>6} {'cache':>6} {'median ms':>10} {'min ms':>8} {'per VM ms':>10}")
    with tempfile.TemporaryDirectory(prefix="mvtui-bench-") as tmp:
        for count in (10, 100, 1000):
            state = make_host(Path(tmp) / str(count), count, nix_store=True)
            cache_home = Path(tmp) / f"cache-{count}"
            for warm in (False, True):
                times = time_list(state, args.runs, args.config, cache_home, warm=warm)
                median = statistics.median(times)
                label = "warm" if warm else "cold"
                print(
                    f"{count:>6} {label:>6} {median:>10.1f} {min(times):>8.1f} "
                    f"{median / count:>10.3f}"
                )


if __name__ == "__main__":
    main()
