"""The Logs view on a big journal: time to the last screen, and the cost of following.

A journal directory with ENTRIES entries of microvm@big.service (plus other units' lines
between them) is written once by systemd-journal-remote from export format, then:

* open: the Logs screen is pushed in a headless app (Textual's run_test) and timed until its
  lines are on screen (journalctl reads the last 500 from the journal's end, our parse, the
  widget); median of RUNS. Reference: `journalctl -n 500 -u microvm@big.service` alone.
* follow: CPU of the app process and its journalctl children over WINDOW seconds with the
  Logs screen open and nothing new arriving, against the same app with an empty screen;
  the difference is what following costs (points of one core).

    python bench/logs.py [--entries 1000000] [--runs 5] [--window 20]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import stat
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil
from textual.app import App
from textual.screen import Screen

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import contextlib

from tui.host.model import VM
from tui.host.settings import HostSettings
from tui.lab.guest_journal import find_journal_remote
from tui.screens.logs import LogsScreen

ROOT = Path("/var/tmp/mvtui-bench-logs")
MID = "b" * 32
BOOT = "c" * 32


def own_dir(path: Path) -> None:
    """PATH as a directory of ours (the bench runs as root, /var/tmp is everyone's): made 0700,
    or, when it is there already, a real directory we own that nobody else can write."""
    try:
        path.mkdir(mode=0o700)
    except FileExistsError:
        st = os.lstat(path)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            raise SystemExit(f"{path} is not a directory of ours: remove it first") from None


def write_big_journal(directory: Path, entries: int) -> None:
    own_dir(ROOT)
    marker = directory / f".entries-{entries}"
    if marker.exists():
        return
    shutil.rmtree(directory, ignore_errors=True)
    (directory / MID).mkdir(parents=True)
    now = int(time.time() * 1_000_000) - entries * 1000
    proc = subprocess.Popen(
        [str(find_journal_remote()), f"--output={directory / MID / 'big.journal'}", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    assert proc.stdin is not None
    chunk: list[str] = []
    for i in range(entries):
        unit = "microvm@big.service" if i % 10 else "microvm@other.service"
        priority = 3 if i % 97 == 0 else 6
        chunk.append(
            f"__REALTIME_TIMESTAMP={now + i * 1000}\n__MONOTONIC_TIMESTAMP={i + 1}\n"
            f"_BOOT_ID={BOOT}\n_MACHINE_ID={MID}\n_TRANSPORT=stdout\n"
            f"_SYSTEMD_UNIT={unit}\nPRIORITY={priority}\nSYSLOG_IDENTIFIER=microvm\n"
            f"MESSAGE=guest line {i}: the quick brown fox jumps over the lazy dog\n\n"
        )
        if len(chunk) >= 10_000:
            proc.stdin.write("".join(chunk).encode())
            chunk.clear()
    proc.stdin.write("".join(chunk).encode())
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("systemd-journal-remote failed")
    marker.touch()


class BenchApp(App[None]):
    def __init__(self, settings: HostSettings, logs: bool) -> None:
        super().__init__()
        self.settings, self.logs = settings, logs

    def on_mount(self) -> None:
        vm = VM(name="big", path=ROOT / "big")
        self.push_screen(LogsScreen(vm, self.settings) if self.logs else Screen())


async def time_open(settings: HostSettings) -> float:
    app = BenchApp(settings, logs=False)
    async with app.run_test(size=(160, 48)) as pilot:
        await pilot.pause()
        t0 = time.perf_counter()
        screen = LogsScreen(VM(name="big", path=ROOT / "big"), settings)
        await app.push_screen(screen)
        while not (screen.settled and screen.view.entries):
            await asyncio.sleep(0.002)
        await pilot.pause()  # painted
        took = time.perf_counter() - t0
        assert len(screen.view.entries) == 500, len(screen.view.entries)
    return took


def cpu_seconds(proc: psutil.Process) -> float:
    total = sum(proc.cpu_times()[:2])
    for child in proc.children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess):
            total += sum(child.cpu_times()[:2])
    return total


async def follow_cost(settings: HostSettings, logs: bool, window: float) -> float:
    me = psutil.Process()
    app = BenchApp(settings, logs)
    async with app.run_test(size=(160, 48)) as pilot:
        if logs:
            while not (isinstance(app.screen, LogsScreen) and app.screen.settled):
                await pilot.pause(0.01)
        await pilot.pause(1.0)
        c0, t0 = cpu_seconds(me), time.monotonic()
        await asyncio.sleep(window)
        c1, t1 = cpu_seconds(me), time.monotonic()
    return 100 * (c1 - c0) / (t1 - t0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--window", type=float, default=20.0)
    args = parser.parse_args()
    directory = ROOT / "journal"
    t0 = time.monotonic()
    write_big_journal(directory, args.entries)
    print(f"journal: {args.entries} entries in {directory} ({time.monotonic() - t0:.1f} s)")
    settings = HostSettings(journal_dir=directory)
    ref = []
    for _ in range(args.runs):
        t = time.perf_counter()
        subprocess.run(
            [
                "journalctl",
                f"--directory={directory}",
                "-u",
                "microvm@big.service",
                "-n",
                "500",
                "-o",
                "json",
                "--no-pager",
            ],
            stdout=subprocess.DEVNULL,
            check=True,
        )
        ref.append(time.perf_counter() - t)
    opens = [asyncio.run(time_open(settings)) for _ in range(args.runs)]
    print(
        f"open the Logs view, last 500 of {args.entries} entries: median "
        f"{statistics.median(opens) * 1000:.0f} ms (min {min(opens) * 1000:.0f}, "
        f"max {max(opens) * 1000:.0f}; goal < 500 ms)"
    )
    print(f"reference, journalctl -n 500 alone: median {statistics.median(ref) * 1000:.0f} ms")
    idle = asyncio.run(follow_cost(settings, False, args.window))
    following = asyncio.run(follow_cost(settings, True, args.window))
    print(
        f"CPU over {args.window:.0f} s, app and children: empty screen {idle:.2f}% of a core, "
        f"Logs view following {following:.2f}%: following adds {following - idle:.2f} points "
        "(goal < 0.5)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
