"""What reading the links costs the monitor: ``LinkReader.read`` in a network namespace of
taps (as the lab's, or a host's whose taps live in a netns), and in our own namespace (sysfs).
For comparison, when the code has it (``tui.host.rtnl``): a held pyroute2 socket that dumps
every link in full each read (what the reader does once, then follows the links instead), and
a one-off read each time (a new socket made in the namespace by a thread that enters it).

Usage (root: it makes a namespace of its own, removed at the end):
    python bench/links.py [--taps 12] [--polls 200]

Printed: the first read (the namespace entered, imports included) and, over POLLS reads after
it, the median wall time and the CPU of one read, counted for the whole process (every thread)
and its reaped child processes; then the process's open fds and child processes before and
after, which must not grow with the polls.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tui.host.links import Link, LinkReader, LinkReadError, LinkTable  # noqa: E402

IP = "/usr/sbin/ip" if os.path.exists("/usr/sbin/ip") else "/sbin/ip"


def ip(*args: str) -> None:
    subprocess.run([IP, *args], check=True, capture_output=True)


def cpu_s() -> float:
    """CPU seconds of this process (all threads) and of its reaped children."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def children() -> int:
    mine = str(os.getpid())
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat", "rb") as f:
                    if f.read().rsplit(b")", 1)[1].split()[1].decode() == mine:
                        count += 1
            except OSError:
                continue
    return count


class FullDumps:
    """For comparison: one held pyroute2 ``AsyncIPRoute`` in the namespace (on the host loop)
    that dumps every link in full each read; or (ONE_OFF) a one-off read each time
    (``NamespaceLinks(follow=False)``: a socket made by a thread in the namespace, a dump,
    closed)."""

    def __init__(self, netns: str, one_off: bool) -> None:
        from tui.host import rtnl
        from tui.host.hostloop import host_loop

        self.rtnl, self.loop, self.netns, self.one_off = rtnl, host_loop(), netns, one_off
        self.ipr = None

    async def _dump(self) -> dict[str, Link]:
        from pyroute2 import AsyncIPRoute

        if self.ipr is None:
            self.ipr = AsyncIPRoute(netns=self.netns, flags=0)
        entries = {}
        for msg in [m async for m in await self.ipr.link("dump")]:
            index, link, master = self.rtnl.link_from_message(msg)
            entries[index] = (link, master)
        return self.rtnl.links_by_name(entries)

    def read(self, names: list[str]) -> LinkTable:
        try:
            if self.one_off:
                links = self.rtnl.NamespaceLinks(self.netns, follow=False).read()
            else:
                links = self.loop.run(self._dump(), 10)
            return LinkTable(links=links, t=time.monotonic())
        except LinkReadError as exc:
            return LinkTable(error=str(exc), t=time.monotonic())

    async def _close(self) -> None:
        if self.ipr is not None:
            self.ipr.close()

    def close(self) -> None:
        self.loop.run(self._close(), 10)


def measure(label: str, reader: LinkReader | FullDumps, names: list[str], polls: int) -> None:
    """Time READER's first read and POLLS reads after it."""
    before = (fds(), children())
    c0, t0 = cpu_s(), time.perf_counter()
    first = reader.read(names)
    first_wall, first_cpu = (time.perf_counter() - t0) * 1000, (cpu_s() - c0) * 1000
    if first.error:
        raise SystemExit(f"{label}: {first.error}")
    walls: list[float] = []
    cpus: list[float] = []
    for _ in range(polls):
        c0, t0 = cpu_s(), time.perf_counter()
        table = reader.read(names)
        walls.append((time.perf_counter() - t0) * 1000)
        cpus.append((cpu_s() - c0) * 1000)
        assert table.error is None, table.error
    after = (fds(), children())
    print(
        f"{label:<26} {len(first.links):>5} {first_wall:>9.1f} {first_cpu:>9.1f}"
        f" {statistics.median(walls):>9.3f} {statistics.median(cpus):>9.3f}"
        f" {sum(cpus) / polls:>9.3f}   {before[0]}->{after[0]} fds,"
        f" {before[1]}->{after[1]} children"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--taps", type=int, default=12)
    parser.add_argument("--polls", type=int, default=200)
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench/links.py makes a network namespace: run it as root")
    netns = f"mvtui-bench-{uuid.uuid4().hex[:8]}"
    ip("netns", "add", netns)
    try:
        ip("-n", netns, "link", "add", "br-bench", "type", "bridge")
        taps = [f"vm-b{i}" for i in range(args.taps)]
        for tap in taps:
            ip("-n", netns, "tuntap", "add", tap, "mode", "tap")
            ip("-n", netns, "link", "set", tap, "master", "br-bench")
        print(
            f"{'reader':<26} {'links':>5} {'1st ms':>9} {'1st cpu':>9}"
            f" {'wall ms':>9} {'cpu ms':>9} {'cpu mean':>9}   (median of {args.polls} reads)"
        )
        reader = LinkReader(netns)
        try:
            measure(f"netns, {args.taps} taps + bridge", reader, taps, args.polls)
        finally:
            reader.close()
        alternatives = (("... held, full dump a read", False), ("... one-off read each", True))
        for label, one_off in alternatives:
            try:
                full = FullDumps(netns, one_off)
            except ImportError:  # code before tui.host.rtnl
                break
            try:
                measure(label, full, taps, args.polls // 4 if one_off else args.polls)
            finally:
                full.close()
        own = LinkReader(None)
        try:
            measure("own namespace (sysfs), lo", own, ["lo"], args.polls)
        finally:
            own.close()
        print(f"after close: {fds()} fds, {children()} children")
    finally:
        subprocess.run([IP, "netns", "del", netns], capture_output=True)


if __name__ == "__main__":
    main()
