"""What the monitor asks a qemu (or stratovirt) over QMP, in one short session.

The session itself (``qemu.qmp``'s ``QMPClient`` on the host loop, one hard deadline for the
whole of it, the socket let go of at the end) is ``tui.host.qmp``; this module is the queries
and what their answers mean: run state, vCPU threads, memory sizes, balloon and guest memory,
block counters. Answers are untrusted: every number goes through ``int()`` on its way into
:class:`RemoteInfo`, and a reply of the wrong shape becomes a reason, never an exception.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tui.host.qmp import (
    DEFAULT_TIMEOUT,
    QMPCommandError,
    QMPError,
    QMPSession,
    qmp_session,
    run_session,
)
from tui.host.sampling.reading import BlockCounters, RemoteInfo, VcpuThread
from tui.host.sampling.samples import Why

BALLOON_PATH = "/machine/peripheral/balloon0"  # microvm.nix: -device virtio-balloon-...,id=balloon0
POLLING_INTERVAL = "guest-stats-polling-interval"  # the balloon's property, in seconds
_INVALID_STAT = (1 << 64) - 1  # qemu's "no value" in guest-stats
# What only the detail pane shows (balloon, guest statistics, block counters): a session
# that is not ``full`` leaves these unasked, unknown with ``Why.NOT_ASKED``.
FULL_ONLY_FIELDS = ("mem_guest_visible_bytes", "mem_guest_used_bytes", "block")


# --- the queries the monitor needs --------------------------------------------------------


def _guest_used(stats: dict[str, Any]) -> tuple[int | None, str | None]:
    """(bytes used by the guest, None) or (None, why not) from qom guest-stats."""
    if not stats or not stats.get("last-update"):
        return None, "the guest has not reported balloon statistics yet"
    values = stats.get("stats") or {}
    total = values.get("stat-total-memory")
    avail = values.get("stat-available-memory")
    if avail in (None, _INVALID_STAT):
        avail = values.get("stat-free-memory")
    if total in (None, _INVALID_STAT) or avail in (None, _INVALID_STAT):
        return None, "the guest's balloon driver reports no memory totals"
    return max(0, int(total) - int(avail)), None


def _block_counters(entries: list[dict[str, Any]]) -> dict[str, BlockCounters]:
    block: dict[str, BlockCounters] = {}
    for entry in entries:
        name = entry.get("device") or entry.get("qdev") or entry.get("node-name")
        stats = entry.get("stats") or {}
        if not name or "rd_bytes" not in stats:
            continue
        block[str(name)] = BlockCounters(int(stats["rd_bytes"]), int(stats.get("wr_bytes", 0)))
    return block


Execute = Callable[[str, "dict[str, Any] | None"], Awaitable[Any]]  # QMPSession.execute


def query_qemu(
    path: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    guest_stats_interval: int | None = None,
    balloon_path: str = BALLOON_PATH,
    sizes: bool = True,
    pipeline: bool = False,
    full: bool = True,
) -> RemoteInfo:
    """:func:`query_qemu_async` for a caller in a worker thread (never the host loop's)."""
    started = time.monotonic()
    try:
        return run_session(  # type: ignore[no-any-return]
            query_qemu_async(
                path,
                timeout,
                guest_stats_interval=guest_stats_interval,
                balloon_path=balloon_path,
                sizes=sizes,
                pipeline=pipeline,
                full=full,
            ),
            timeout,
        )
    except QMPError as exc:  # the waiting thread's own bound (the session keeps its own)
        info = RemoteInfo(error=str(exc))
        info.fail_missing(str(exc))
        info.elapsed_s = time.monotonic() - started
        return info


async def query_qemu_async(
    path: str,
    timeout: float = DEFAULT_TIMEOUT,
    *,
    guest_stats_interval: int | None = None,
    balloon_path: str = BALLOON_PATH,
    sizes: bool = True,
    pipeline: bool = False,
    full: bool = True,
) -> RemoteInfo:
    """Everything the monitor wants from one qemu, in one session of at most TIMEOUT seconds
    (on the host loop; never raises: a failure is ``error`` and the fields' reasons).

    GUEST_STATS_INTERVAL: when set, make sure the balloon polls guest statistics (sets
    ``guest-stats-polling-interval`` if it is 0, never lowers a value someone else chose).
    Pass it on the first contact with a qemu process, not on every poll.
    SIZES: also ask what rarely changes (``query-cpus-fast``: vCPU count and thread ids;
    ``query-memory-size-summary``: configured memory); without it those fields stay unset and
    without a reason, for a caller that keeps them from an earlier session.
    PIPELINE: send the negotiation and every query at once (qemu; not on the first contact,
    whose balloon set-up must come before the statistics are read, and not stratovirt, whose
    server takes one command at a time); the answers, and the reasons made of them, are the
    same as one command at a time.
    FULL: also ask what only the detail pane shows (``query-balloon``, the balloon's guest
    statistics, ``query-blockstats``); without it the session is ``qmp_capabilities`` and
    ``query-status`` (with the sizes when asked, and the balloon set-up on first contact),
    and those fields are unknown with ``Why.NOT_ASKED``.
    """
    started = time.monotonic()
    info = RemoteInfo()
    pipelined = pipeline and not guest_stats_interval
    guest_stats = {"path": balloon_path, "property": "guest-stats"}
    ahead: list[tuple[str, dict[str, Any] | None]] = [("query-status", None)]
    if sizes:
        ahead += [("query-cpus-fast", None), ("query-memory-size-summary", None)]
    if full:
        ahead += [("query-balloon", None), ("qom-get", guest_stats), ("query-blockstats", None)]

    async def optional(execute: Execute, fields: tuple[str, ...], command: str) -> Any:
        """Run a query that some QMP servers (older qemu, stratovirt) lack: an error reply
        becomes the reason for FIELDS and the session goes on."""
        try:
            return await execute(command, None)
        except QMPCommandError as exc:
            for name in fields:
                info.reasons.setdefault(name, f"{command}: {exc.desc or exc.error_class}")
            return None

    try:
        async with qmp_session(path, timeout, negotiate=not pipelined) as qmp:
            execute: Execute = qmp.execute
            if pipelined:
                caps, *answers = await qmp.batch([("qmp_capabilities", None), *ahead])
                if isinstance(caps, QMPCommandError):
                    raise caps  # as a failed negotiation in qmp_session() does
                execute = _answered(qmp, ahead, answers)
            status = await optional(execute, ("status",), "query-status")
            if status is not None:
                info.status = str(status.get("status"))

            if sizes:
                cpus = await optional(execute, ("vcpu_count", "vcpu_threads"), "query-cpus-fast")
                if cpus is not None:
                    info.vcpu_threads = [
                        VcpuThread(int(c.get("cpu-index", i)), int(c["thread-id"]))
                        for i, c in enumerate(cpus)
                        if "thread-id" in c
                    ]
                    info.vcpu_count = len(cpus)

                summary = await optional(
                    execute, ("mem_configured_bytes",), "query-memory-size-summary"
                )
                if summary and "base-memory" in summary:
                    info.mem_configured_bytes = int(summary["base-memory"]) + int(
                        summary.get("plugged-memory", 0)
                    )

            if full:
                await _balloon_and_block(info, qmp, execute, balloon_path, guest_stats_interval)
            else:
                # First contact: the guest's statistics ready for when the VM is selected. An
                # error reply: no balloon there, nothing to switch on (a full session says so).
                if guest_stats_interval:
                    with contextlib.suppress(QMPCommandError):
                        await _enable_guest_stats(qmp, balloon_path, guest_stats_interval)
                for name in FULL_ONLY_FIELDS:
                    info.reasons[name] = Why.NOT_ASKED
            info.read_at = time.monotonic()
    except QMPError as exc:
        info.error = str(exc)
        info.fail_missing(str(exc))
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
        # OverflowError: int() of a number JSON spelled as 1e400 (Python reads infinity)
        info.error = f"unexpected QMP reply: {exc!r}"
        info.fail_missing(info.error)
    info.elapsed_s = time.monotonic() - started
    return info


async def _enable_guest_stats(qmp: QMPSession, balloon_path: str, interval_s: int) -> None:
    """Make the balloon poll the guest's statistics every INTERVAL_S seconds, unless it
    already polls (never lowers a value someone else chose). Raises QMPCommandError."""
    interval = {"path": balloon_path, "property": POLLING_INTERVAL}
    if not await qmp.execute("qom-get", interval):
        await qmp.execute("qom-set", {**interval, "value": int(interval_s)})


async def _balloon_and_block(
    info: RemoteInfo,
    qmp: QMPSession,
    execute: Execute,
    balloon_path: str,
    guest_stats_interval: int | None,
) -> None:
    """A full session's questions after the state and sizes: guest-visible memory
    (``query-balloon``), guest-used memory (the balloon's guest statistics, switched on first
    when GUEST_STATS_INTERVAL is set) and the block counters, into INFO."""
    try:
        info.mem_guest_visible_bytes = int((await execute("query-balloon", None))["actual"])
    except QMPCommandError as exc:
        if exc.error_class == "DeviceNotActive":
            why = "no balloon device"
        else:
            why = f"query-balloon: {exc.desc or exc.error_class}"
        info.reasons["mem_guest_visible_bytes"] = why
        info.reasons["mem_guest_used_bytes"] = why
    else:
        try:
            if guest_stats_interval:
                await _enable_guest_stats(qmp, balloon_path, guest_stats_interval)
            guest_stats = {"path": balloon_path, "property": "guest-stats"}
            stats = await execute("qom-get", guest_stats)
            used, why = _guest_used(stats or {})
            if used is not None:
                info.mem_guest_used_bytes = used
            else:
                info.reasons["mem_guest_used_bytes"] = why or "no guest statistics"
        except QMPCommandError as exc:
            if exc.error_class == "DeviceNotFound":
                why = f"no balloon at {balloon_path}"
            else:
                why = f"balloon guest-stats: {exc.desc or exc.error_class}"
            info.reasons["mem_guest_used_bytes"] = why
    try:
        blockstats = await execute("query-blockstats", None)
    except QMPCommandError as exc:
        info.reasons.setdefault("block", f"query-blockstats: {exc.desc or exc.error_class}")
    else:
        info.block = _block_counters(blockstats)


def _answered(
    qmp: QMPSession, asked: list[tuple[str, dict[str, Any] | None]], answers: list[Any]
) -> Execute:
    """``execute`` for answers a batch already brought: returns (or raises) the answer to
    the same command and arguments; anything not asked ahead goes to the server."""
    ready = {
        (command, _key(arguments)): answer
        for (command, arguments), answer in zip(asked, answers, strict=True)
    }

    async def execute(command: str, arguments: dict[str, Any] | None = None) -> Any:
        key = (command, _key(arguments))
        if key not in ready:
            return await qmp.execute(command, arguments)
        answer = ready.pop(key)
        if isinstance(answer, QMPCommandError):
            raise answer
        return answer

    return execute


def _key(arguments: dict[str, Any] | None) -> Any:
    """A hashable key for ARGUMENTS, the same for equal ones (our own few flat ones: a sorted
    tuple of the items; anything nested falls back to canonical JSON)."""
    if arguments is None:
        return None
    try:
        key = tuple(sorted(arguments.items()))
        hash(key)
        return key
    except TypeError:  # an unhashable or unorderable value
        return json.dumps(arguments, sort_keys=True)
