"""Per-VM cost of one monitor poll (``Sampler.sample``) over N fake or real QMP VMs.

Usage: python bench/sampling.py [--fake 10,50,100] [--real 4] [--hung 0] [--polls 10]
                                [--sessions 300]

--fake N: N FakeQMPServer sockets (tests/fakes/qmp.py) served by a separate helper process,
  so the CPU figure counts only the sampler's own work; each fake VM's MainPID is a `sleep`
  child of its own (one thread, like a small hypervisor's /proc to read). The fakes' answer
  time ("qmp" columns) is that of one Python process serving N sockets, not qemu's.
--real N: N real paused qemu processes (TCG, 64 MiB, balloon), each a VM of its own.
--hung K: add K sockets that accept and never answer (they cost the poll its deadline,
  never more).
Printed per run: median wall time of one poll, that divided by N ("wall ms/VM"), the sampler
process's CPU time per VM per poll, and the median/p95 time one control-socket session took.
--sessions S: first, S QMP sessions one after another (``query_qemu``, what the sampler runs
  for one VM) against one real qemu and one fake, pipelined (qemu) and one command at a time
  (stratovirt), with and without the size queries; printed: this process's CPU time per session
  (every thread: the host loop's too) and the wall time per session.
--profile P: then P such sessions (real qemu, pipelined, no size queries) on an event loop in
  this thread under cProfile (CPU time): the turns of the loop and the function calls per
  session, and the top of the profile (where a session's CPU goes).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.qemu import start_qemu  # noqa: E402
from fakes.qmp import HungQMPListener  # noqa: E402

from tui.host.model import VM, UnitState  # noqa: E402
from tui.host.sampling import Sampler  # noqa: E402
from tui.host.sampling.qmp import query_qemu, query_qemu_async  # noqa: E402
from tui.host.settings import HostSettings  # noqa: E402

SERVE = """
import sys, time
sys.path.insert(0, {tests!r})
from fakes.qmp import FakeQMPServer
servers = [FakeQMPServer(p) for p in sys.argv[1:]]
print("ready", flush=True)
sys.stdin.read()
"""


def _vm(name: str, pid: int, sock: str) -> VM:
    unit = UnitState(name=f"microvm@{name}.service", main_pid=pid, restarts=0)
    return VM(name=name, path=Path(sock).parent, hypervisor="qemu", socket=sock, unit=unit)


def run(vms: list[VM], polls: int, label: str, n: int, hung: int) -> None:
    with Sampler() as sampler:
        sampler.sample(vms, HostSettings())  # warm-up: imports, first contact
        walls: list[float] = []
        cpus: list[float] = []
        remote: list[float] = []
        for _ in range(polls):
            c0, t0 = time.process_time(), time.perf_counter()
            result = sampler.sample(vms, HostSettings())
            walls.append((time.perf_counter() - t0) * 1000)
            cpus.append((time.process_time() - c0) * 1000)
            remote += [s.remote_ms for s in result.values() if s.remote_ms and s.qmp_status]
            answered = sum(1 for s in result.values() if s.qmp_status)
    wall = statistics.median(walls)
    cpu = statistics.median(cpus)
    remote.sort()
    p95 = remote[int(len(remote) * 0.95) - 1] if remote else float("nan")
    med = statistics.median(remote) if remote else float("nan")
    print(
        f"{label:>6} {n:>5} {hung:>6} {wall:>9.1f} {wall / n:>9.2f} {cpu / n:>9.2f}"
        f" {med:>9.2f} {p95:>9.2f} {answered:>8}"
    )


def sessions(kind: str, path: str, count: int) -> None:
    """COUNT sessions of one kind; the per-session CPU and wall time."""
    for pipeline in (True, False):
        for sizes in (False, True):
            query_qemu(path, pipeline=pipeline, sizes=sizes)  # warm-up
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(count):
                info = query_qemu(path, pipeline=pipeline, sizes=sizes)
                assert info.error is None, info.error
            cpu = (time.process_time() - c0) * 1000 / count
            wall = (time.perf_counter() - t0) * 1000 / count
            mode = ("pipelined" if pipeline else "one by one") + (" +sizes" if sizes else "")
            print(f"{kind:>6} {mode:>20} {cpu:>12.3f} {wall:>12.3f}")


def session_bench(tmp: str, count: int) -> None:
    print(f"{'kind':>6} {'QMP session':>20} {'cpu ms/sess':>12} {'wall ms/sess':>12}")
    sock = f"{tmp}/session-fake.sock"
    helper = subprocess.Popen(
        [sys.executable, "-c", SERVE.format(tests=str(ROOT / "tests")), sock],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert helper.stdout is not None and helper.stdout.readline().strip()
        sessions("fake", sock, count)
    finally:
        assert helper.stdin is not None
        helper.stdin.close()
        helper.wait(10)
    qemu = start_qemu(f"{tmp}/session-q.sock")
    try:
        sessions("real", qemu.socket_path, count)
    finally:
        qemu.stop()
    print()


def profile_sessions(tmp: str, count: int) -> None:
    """COUNT sessions on a loop of this thread (cProfile sees only its own thread), profiled."""
    qemu = start_qemu(f"{tmp}/profile-q.sock")
    loop = asyncio.new_event_loop()
    turns = 0
    select = loop._selector.select  # type: ignore[attr-defined]  # the bench's own loop

    def counted(timeout: float | None = None) -> object:
        nonlocal turns
        turns += 1
        return select(timeout)

    loop._selector.select = counted  # type: ignore[attr-defined]

    async def run(n: int) -> None:
        for _ in range(n):
            info = await query_qemu_async(qemu.socket_path, sizes=False, pipeline=True)
            assert info.error is None, info.error

    try:
        loop.run_until_complete(run(20))  # warm-up
        turns = 0
        c0 = time.process_time()
        loop.run_until_complete(run(count))
        cpu = (time.process_time() - c0) * 1000 / count
        profiler = cProfile.Profile(time.process_time)  # CPU, not time spent descheduled
        profiler.enable()
        loop.run_until_complete(run(count))
        profiler.disable()
    finally:
        loop.close()
        qemu.stop()
    stats = pstats.Stats(profiler, stream=(out := io.StringIO()))
    calls = stats.total_calls / count  # type: ignore[attr-defined]
    print(
        f"profile: {count} sessions, {cpu:.3f} ms CPU each unprofiled, {turns / count / 2:.1f}"
        f" loop turns and {calls:.0f} function calls each"
    )
    stats.sort_stats("cumulative").print_stats(r"qemu/qmp|tui/host|asyncio/(tasks|streams)", 22)
    body = out.getvalue()
    print(body[body.index("   ncalls") :].rstrip(), end="\n\n")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--fake", default="10,50,100")
    parser.add_argument("--real", type=int, default=4)
    parser.add_argument("--hung", type=int, default=0)
    parser.add_argument("--polls", type=int, default=10)
    parser.add_argument("--sessions", type=int, default=300)
    parser.add_argument("--profile", type=int, default=0)
    args = parser.parse_args()
    if args.sessions:
        with tempfile.TemporaryDirectory(prefix="mvb-", dir="/tmp") as tmp:
            session_bench(tmp, args.sessions)
    if args.profile:
        with tempfile.TemporaryDirectory(prefix="mvb-", dir="/tmp") as tmp:
            profile_sessions(tmp, args.profile)
    print(
        f"{'kind':>6} {'VMs':>5} {'+hung':>6} {'poll ms':>9} {'wall/VM':>9} {'cpu/VM':>9}"
        f" {'qmp med':>9} {'qmp p95':>9} {'answered':>8}"
    )
    with tempfile.TemporaryDirectory(prefix="mvb-", dir="/tmp") as tmp:
        hung = [HungQMPListener(f"{tmp}/hung{i}.sock") for i in range(args.hung)]
        hung_vms = [_vm(f"hung{i}", os.getpid(), h.path) for i, h in enumerate(hung)]
        try:
            for count in [int(c) for c in args.fake.split(",") if c]:
                socks = [f"{tmp}/f{count}-{i}.sock" for i in range(count)]
                helper = subprocess.Popen(
                    [sys.executable, "-c", SERVE.format(tests=str(ROOT / "tests")), *socks],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                )
                sleepers: list[subprocess.Popen[bytes]] = []
                try:
                    assert helper.stdout is not None and helper.stdout.readline().strip()
                    for _ in socks:
                        sleepers.append(subprocess.Popen(["sleep", "3600"]))
                    vms = [_vm(f"f{i}", sleepers[i].pid, s) for i, s in enumerate(socks)]
                    run(vms + hung_vms, args.polls, "fake", count, len(hung_vms))
                finally:
                    for child in sleepers:  # ours, ended by pid
                        child.kill()
                        child.wait(5)
                    assert helper.stdin is not None
                    helper.stdin.close()
                    helper.wait(10)
            if args.real:
                qemus = []
                try:
                    for i in range(args.real):
                        qemus.append(start_qemu(f"{tmp}/q{i}.sock"))
                    vms = [_vm(f"q{i}", q.pid, q.socket_path) for i, q in enumerate(qemus)]
                    run(vms + hung_vms, args.polls, "real", args.real, len(hung_vms))
                finally:
                    for q in qemus:
                        q.stop()
        finally:
            for h in hung:
                h.close()


if __name__ == "__main__":
    main()
