"""Whole-process time of `microvm-tui list --json` over synthetic state dirs of 10/100/1000 VMs.

Usage: python bench/list.py [--runs 5] [--config LAB_CONFIG]
With --config, systemd and the netns come from that config (e.g. the lab's), so the systemctl
call is real; without it, systemd is whatever this machine has (here: none, which answers fast).
Goal: under 250 ms for 100 VMs on a 2-core machine, growing linearly.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.synthetic_host import make_host


def time_list(state_dir: Path, runs: int, config: Path | None) -> list[float]:
    argv = [sys.executable, "-m", "tui", "list", "--json", "--state-dir", str(state_dir)]
    if config:
        argv[3:3] = ["--config", str(config)]
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        proc = subprocess.run(argv, capture_output=True, check=False)
        times.append((time.perf_counter() - start) * 1000)
        if proc.returncode != 0:
            sys.exit(f"list failed: {proc.stderr.decode(errors='replace')}")
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--config", type=Path)
    args = parser.parse_args()
    print(f"{'VMs':>6} {'median ms':>10} {'min ms':>8} {'per VM ms':>10}")
    with tempfile.TemporaryDirectory(prefix="mvtui-bench-") as tmp:
        for count in (10, 100, 1000):
            state = make_host(Path(tmp) / str(count), count)
            times = time_list(state, args.runs, args.config)
            median = statistics.median(times)
            print(f"{count:>6} {median:>10.1f} {min(times):>8.1f} {median / count:>10.3f}")


if __name__ == "__main__":
    main()
