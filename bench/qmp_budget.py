"""What QMP through ``qemu.qmp`` costs the monitor, against a minimal raw-socket exchange
measured in the same run, and what the poll's cadence makes of it.

Usage: python bench/qmp_budget.py [--vms 9] [--rounds 15] [--per-round 18] [--polls 30]
                                  [--interval 1.0]
(a smoke run: --rounds 2 --per-round 4 --polls 4)

Starts VMS real paused qemus (TCG, 64 MiB, a balloon: tests/fakes/qemu.py), then:

1. CPU per session (this process, user + system), the variants taking turns in ROUNDS rounds
   of PER-ROUND sessions each (spread over the VMs), so that a change in the machine's load hits
   them alike; the median round is printed. Every variant asks what the sampler asks in a
   session (``qmp_capabilities``, ``query-status``, ``query-balloon``, the balloon's
   ``guest-stats``, ``query-blockstats``; "+sizes" adds ``query-cpus-fast`` and
   ``query-memory-size-summary``, asked every 10th session), all in one write:
   - raw: a blocking socket: connect, read the greeting, send, read and parse each reply,
     close. The reference (what the hand-written client did, without its deadline logic).
   - raw asyncio: the same over asyncio streams on an event loop: what any asyncio client
     pays before a QMP library does anything.
   - qemu.qmp stock: ``QMPClient`` as its documentation shows it: connect (greeting and
     negotiation), the queries gathered, disconnect; its loggers quiet.
   - qemu.qmp ours: ``query_qemu_async`` as the sampler runs it (``tui/host/qmp.py``).
   - status only (raw, and ours: ``query_qemu_async(full=False)``): ``qmp_capabilities`` +
     ``query-status`` (+sizes), what the sampler asks a VM not in focus on its turn.
2. The cadence: a real ``Sampler`` with the live source's ``remote_every``
   (``tui.feed.live.REMOTE_EVERY``), the VMS VMs, one of them in focus (the app passes the
   selected row), POLLS polls INTERVAL s apart. Printed: the QMP sessions the sampler started
   per poll (counted: full ones, for the VM in focus, and status-only ones, for the others on
   their turn), and the CPU of the host loop's thread (its own clock: it runs only the QMP
   sessions here) per second, as points of a core.
3. The budget: sessions per second of each kind (from 2) times the CPU of such a session
   (from 1, as the sampler asked them), for qemu.qmp and for the raw exchange, as points of a
   core, and their ratio. Then the issue's budget in a form that does not depend on the
   machine: the host loop thread's measured points (2) as a ratio to the raw exchange's points
   at the same cadence (3), beside the ratio the issue implies (half a point against 0.3 ms
   a session for a hand-written client at 3.67 sessions a second: about 4.5x).
4. The anatomy of one session (a loop in this thread, one qemu): loop turns and tasks per
   session (ours, ours with status only, raw asyncio), the qemu.qmp logger calls a session
   makes and what one costs at our level, and what building a ``QMPClient`` costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import socket
import statistics
import sys
import tempfile
import threading
import time
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from fakes.qemu import Qemu, start_qemu  # noqa: E402
from qemu.qmp import QMPClient  # noqa: E402

import tui.host.sampling.sampler as sampler_module  # noqa: E402
from tui.feed.live import REMOTE_EVERY  # noqa: E402
from tui.host.model import VM, UnitState  # noqa: E402
from tui.host.sampling import Sampler  # noqa: E402
from tui.host.sampling.qmp import BALLOON_PATH, query_qemu_async  # noqa: E402
from tui.host.settings import HostSettings  # noqa: E402

GUEST_STATS = {"path": BALLOON_PATH, "property": "guest-stats"}
SIZES = [("query-cpus-fast", None), ("query-memory-size-summary", None)]
QUERIES: list[tuple[str, dict[str, Any] | None]] = [
    ("query-status", None),
    ("query-balloon", None),
    ("qom-get", GUEST_STATS),
    ("query-blockstats", None),
]
STATUS_ONLY = QUERIES[:1]  # what a VM not in focus is asked
# The issue's budget: about half a point of a core for 9 VMs (1 in focus every poll, 8 every
# third: 3.67 sessions a second at 1 s), with a hand-written client at 0.3 ms a session.
ISSUE_POINTS, ISSUE_RAW_MS, ISSUE_SESSIONS_S = 0.5, 0.3, 1 + 8 / 3


def _commands(sizes: bool, full: bool = True) -> list[tuple[str, dict[str, Any] | None]]:
    return [
        ("qmp_capabilities", None),
        *(SIZES if sizes else []),
        *(QUERIES if full else STATUS_ONLY),
    ]


def _wire(commands: list[tuple[str, dict[str, Any] | None]]) -> bytes:
    out = []
    for i, (command, arguments) in enumerate(commands):
        msg: dict[str, Any] = {"execute": command, "id": i}
        if arguments is not None:
            msg["arguments"] = arguments
        out.append(json.dumps(msg).encode() + b"\n")
    return b"".join(out)


def raw_session(path: str, wire: bytes, replies: int) -> None:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(1.0)
        sock.connect(path)
        with sock.makefile("rb") as stream:
            assert "QMP" in json.loads(stream.readline())
            sock.sendall(wire)
            for _ in range(replies):
                assert "return" in json.loads(stream.readline())
    finally:
        sock.close()


async def raw_async_session(path: str, wire: bytes, replies: int) -> None:
    async with asyncio.timeout(1.0):
        reader, writer = await asyncio.open_unix_connection(path)
        try:
            assert "QMP" in json.loads(await reader.readline())
            writer.write(wire)
            for _ in range(replies):
                assert "return" in json.loads(await reader.readline())
        finally:
            writer.close()
            await writer.wait_closed()


async def stock_session(path: str, sizes: bool) -> None:
    client = QMPClient()
    await client.connect(path)
    try:
        queries = (SIZES if sizes else []) + QUERIES
        await asyncio.gather(*(client.execute(c, a) for c, a in queries))
    finally:
        await client.disconnect()


async def ours_session(path: str, sizes: bool, full: bool = True) -> None:
    info = await query_qemu_async(path, sizes=sizes, pipeline=True, full=full)
    assert info.error is None and info.status, info.error


Variant = Callable[[str], Any]  # one session against a socket path (a coroutine or not)


def variants() -> dict[str, tuple[Variant, bool]]:
    """name: (one session, is a coroutine)."""
    out: dict[str, tuple[Variant, bool]] = {}
    for sizes in (False, True):
        tag = " +sizes" if sizes else ""
        commands = _commands(sizes)
        wire = _wire(commands)
        n = len(commands)
        out["raw" + tag] = (lambda p, w=wire, n=n: raw_session(p, w, n), False)
        out["raw asyncio" + tag] = (lambda p, w=wire, n=n: raw_async_session(p, w, n), True)
        out["qemu.qmp stock" + tag] = (lambda p, s=sizes: stock_session(p, s), True)
        out["qemu.qmp ours" + tag] = (lambda p, s=sizes: ours_session(p, s), True)
    for sizes in (False, True):
        tag = ", status only" + (" +sizes" if sizes else "")
        commands = _commands(sizes, full=False)
        wire, n = _wire(commands), len(commands)
        out["raw" + tag] = (lambda p, w=wire, n=n: raw_session(p, w, n), False)
        out["qemu.qmp ours" + tag] = (lambda p, s=sizes: ours_session(p, s, False), True)
    return out


def per_session(qemus: list[Qemu], rounds: int, per_round: int) -> dict[str, float]:
    """Median CPU ms per session of each variant, over ROUNDS interleaved rounds."""
    loop = asyncio.new_event_loop()
    paths = [q.socket_path for q in qemus]
    table = variants()
    samples: dict[str, list[float]] = {name: [] for name in table}

    def block(fn: Variant, is_coro: bool, count: int) -> None:
        if is_coro:

            async def many() -> None:
                for i in range(count):
                    await fn(paths[i % len(paths)])

            loop.run_until_complete(many())
        else:
            for i in range(count):
                fn(paths[i % len(paths)])

    try:
        for fn, is_coro in table.values():
            block(fn, is_coro, 2 * len(paths))  # warm-up: imports, first contact, pools
        for _ in range(rounds):
            for name, (fn, is_coro) in table.items():
                c0 = time.process_time()
                block(fn, is_coro, per_round)
                samples[name].append((time.process_time() - c0) * 1000 / per_round)
    finally:
        loop.close()
    return {name: statistics.median(values) for name, values in samples.items()}


def _vm(name: str, qemu: Qemu) -> VM:
    unit = UnitState(name=f"microvm@{name}.service", main_pid=qemu.pid, restarts=0)
    path = Path(qemu.socket_path).parent
    return VM(name=name, path=path, hypervisor="qemu", socket=qemu.socket_path, unit=unit)


Kinds = dict[str, float]  # per poll: "full", "full+sizes", "status", "status+sizes"


def cadence(qemus: list[Qemu], polls: int, interval: float) -> tuple[Kinds, float, float]:
    """(sessions per poll by kind, host-loop thread CPU ms per second, wall s)."""
    counted = dict.fromkeys(("full", "full+sizes", "status", "status+sizes"), 0.0)
    real = sampler_module.query_qemu_async

    async def counting(*args: Any, **kw: Any) -> Any:
        kind = "full" if kw.get("full", True) else "status"
        counted[kind + ("+sizes" if kw.get("sizes", True) else "")] += 1
        return await real(*args, **kw)

    vms = [_vm(f"q{i}", q) for i, q in enumerate(qemus)]
    focus = (vms[0].name,)
    sampler_module.query_qemu_async = counting  # type: ignore[assignment]  # the bench's count
    try:
        with Sampler(remote_every=REMOTE_EVERY) as sampler:
            for _ in range(2 * REMOTE_EVERY):  # first contact (balloon set-up), then steady
                sampler.sample(vms, HostSettings(), focus=focus)
            loop_thread = next(t for t in threading.enumerate() if t.name == "mvtui-host-io")
            clock = time.pthread_getcpuclockid(loop_thread.ident)  # type: ignore[arg-type]
            counted.update(dict.fromkeys(counted, 0.0))
            c0, t0 = time.clock_gettime(clock), time.monotonic()
            for i in range(polls):
                sampler.sample(vms, HostSettings(), focus=focus)
                time.sleep(max(0.0, t0 + (i + 1) * interval - time.monotonic()))
            cpu = time.clock_gettime(clock) - c0
            wall = time.monotonic() - t0
    finally:
        sampler_module.query_qemu_async = real  # type: ignore[assignment]
    return {k: v / polls for k, v in counted.items()}, cpu * 1000 / wall, wall


def anatomy(qemu: Qemu) -> None:
    """Loop turns, tasks and logger calls per session; a logger call's and a client's cost."""
    path = qemu.socket_path
    wire = _wire(_commands(False))
    loop = asyncio.new_event_loop()
    count = {"turns": 0, "tasks": 0, "log": 0}
    select = loop._selector.select  # type: ignore[attr-defined]  # the bench's own loop

    def counted_select(timeout: float | None = None) -> Any:
        count["turns"] += 1
        return select(timeout)

    def counted_task(loop: asyncio.AbstractEventLoop, coro: Any, **kw: Any) -> Any:
        count["tasks"] += 1
        return asyncio.Task(coro, loop=loop, **kw)

    loop._selector.select = counted_select  # type: ignore[attr-defined]
    loop.set_task_factory(counted_task)
    debug = logging.Logger.debug

    def counted_debug(self: logging.Logger, *args: Any, **kw: Any) -> None:
        if self.name.startswith("qemu.qmp"):
            count["log"] += 1
        debug(self, *args, **kw)

    sessions = {
        "qemu.qmp ours": lambda: ours_session(path, False),
        "qemu.qmp ours, status only": lambda: ours_session(path, False, False),
        "raw asyncio": lambda: raw_async_session(path, wire, len(_commands(False))),
    }
    n = 20
    print("\nAnatomy of one session (a loop in this thread, one qemu):")
    logging.Logger.debug = counted_debug  # type: ignore[method-assign]  # the bench's count
    try:
        for name, session in sessions.items():
            loop.run_until_complete(session())  # warm-up

            async def many(session: Callable[[], Any] = session) -> None:
                for _ in range(n):
                    await session()

            count.update(turns=0, tasks=0, log=0)
            loop.run_until_complete(many())
            print(
                f"  {name:<34} {count['turns'] / n:5.1f} loop turns,"
                f" {(count['tasks'] - 1) / n:4.1f} tasks, {count['log'] / n:4.1f} qemu.qmp"
                " logger calls a session"
            )
    finally:
        logging.Logger.debug = debug  # type: ignore[method-assign]
        loop.close()
    logger = logging.getLogger("qemu.qmp.protocol")
    k = 100_000
    per_call = timeit.timeit(lambda: logger.debug("%s", 1), number=k) / k * 1e6
    build = timeit.timeit(QMPClient, number=2000) / 2000 * 1e6
    print(
        f"  a qemu.qmp logger call at our level (no record made): {per_call:.2f} us;"
        f" building a QMPClient: {build:.1f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--vms", type=int, default=9)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=18)
    parser.add_argument("--polls", type=int, default=30)
    parser.add_argument("--interval", type=float, default=1.0)
    args = parser.parse_args()
    # Whole turns of the VMs not in focus (they are all asked at the same poll): a count of
    # polls that is not a multiple of remote_every would over- or under-count them.
    args.polls = -(-args.polls // REMOTE_EVERY) * REMOTE_EVERY
    logging.getLogger("qemu.qmp").setLevel(logging.CRITICAL + 1)  # as tui.host.qmp sets it
    print(f"load average at start: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory(prefix="mvq-", dir="/tmp") as tmp:
        qemus: list[Qemu] = []
        try:
            for i in range(args.vms):
                qemus.append(start_qemu(f"{tmp}/q{i}.sock"))
            cpu = per_session(qemus, args.rounds, args.per_round)
            polls = cadence(qemus, args.polls, args.interval)
            anatomy(qemus[0])
        finally:
            for q in qemus:
                q.stop()
    print(
        f"\nCPU per session, {args.vms} paused qemus, median of {args.rounds} interleaved"
        f" rounds of {args.per_round} sessions:"
    )
    for name, ms in cpu.items():
        print(f"  {name:<34} {ms:7.3f} ms")
    marginal = (cpu["qemu.qmp ours"] - cpu["qemu.qmp ours, status only"]) / (len(QUERIES) - 1)
    print(f"  (one more command through qemu.qmp: {marginal:.3f} ms)")
    raw, streams = cpu["raw"], cpu["raw asyncio"]
    stock, ours = cpu["qemu.qmp stock"], cpu["qemu.qmp ours"]
    print(
        f"  whose: the exchange itself {raw:.3f}, asyncio's streams and loop"
        f" +{streams - raw:.3f}, qemu.qmp's session machinery +{stock - streams:.3f},"
        f" tui/host/qmp.py against stock qemu.qmp {ours - stock:+.3f} ms"
    )

    kinds, loop_ms, wall = polls
    per_poll = sum(kinds.values())
    full = kinds["full"] + kinds["full+sizes"]
    status = kinds["status"] + kinds["status+sizes"]
    sized = kinds["full+sizes"] + kinds["status+sizes"]
    measured = loop_ms / 10  # points of a core
    print(
        f"\nSampler, {args.vms} running VMs, 1 in focus, remote_every={REMOTE_EVERY},"
        f" {args.polls} polls {args.interval:g} s apart ({wall:.1f} s):"
        f" {per_poll:.2f} QMP sessions a poll: {full:.2f} full (the VM in focus) and"
        f" {status:.2f} status-only (the others, on their turn); {sized:.2f} of them with"
        f" sizes; the host loop's thread: {measured:.3f} points of a core"
        f" ({loop_ms / (per_poll / args.interval):.3f} ms a session)"
    )

    def at_cadence(kind: str) -> float:
        """KIND's CPU ms per second at the measured cadence (each session as the sampler
        asked it: full or status only, with or without sizes)."""
        ms = (
            kinds["full"] * cpu[kind]
            + kinds["full+sizes"] * cpu[kind + " +sizes"]
            + kinds["status"] * cpu[kind + ", status only"]
            + kinds["status+sizes"] * cpu[kind + ", status only +sizes"]
        )
        return ms / args.interval

    lib, raw_ms = at_cadence("qemu.qmp ours"), at_cadence("raw")
    per_s = per_poll / args.interval
    print(
        f"\nBudget at {per_s:.2f} sessions a second ({full / args.interval:.2f} full,"
        f" {status / args.interval:.2f} status-only; back to back): qemu.qmp"
        f" {lib / 10:.3f} points of a core; raw socket {raw_ms / 10:.3f} points;"
        f" ratio {lib / raw_ms:.1f}x"
    )
    issue_raw = ISSUE_RAW_MS * ISSUE_SESSIONS_S / 10
    print(
        f"The issue's budget, machine-independent: the host loop's measured"
        f" {measured:.3f} points / the raw exchange's {raw_ms / 10:.3f} points at the same"
        f" cadence = {measured / (raw_ms / 10):.1f}x; the issue implies {ISSUE_POINTS} points /"
        f" ({ISSUE_RAW_MS} ms x {ISSUE_SESSIONS_S:.2f} sessions/s = {issue_raw:.3f} points)"
        f" = {ISSUE_POINTS / issue_raw:.1f}x"
    )
    print(f"load average at end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
