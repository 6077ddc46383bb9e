"""One VM's ``VMSample`` put together from what a poll read (``local``, the control socket's
``RemoteInfo``, shares, links) and what the sampler kept of it since the previous poll
(``VMState``: readings for the rates, the last control socket answer, the QMP sizes)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tui.host.links import Link
from tui.host.model import VM
from tui.host.sampling import process, rates
from tui.host.sampling.local import FsResult, LocalReading, socket_bound
from tui.host.sampling.rates import Counter
from tui.host.sampling.reading import RemoteInfo
from tui.host.sampling.samples import IORate, Reason, VMSample, Why

MIB = 1 << 20
# What QMP says about vCPUs (count, thread ids) and configured memory rarely changes: it is
# asked on first contact with a process, then every SIZES_EVERY polls, and at once when a
# vCPU thread it named is gone; the polls in between reuse the answer.
SIZES_EVERY = 10
SIZE_FIELDS = ("vcpu_count", "vcpu_threads", "mem_configured_bytes")


@dataclass
class VMState:
    """What the sampler keeps of one VM process between polls."""

    pid: int
    cpu: Counter | None = None
    threads: Counter | None = None  # {tid: ThreadTimes}
    block: Counter | None = None  # {device: BlockCounters}
    block_age: int = 0  # polls since ``block`` was read
    net: Counter | None = None  # {ifname: (rx, tx)}
    guest_stats_enabled: bool = False
    info: process.ProcessInfo | None = None
    vcpu_names: dict[int, int] | None = None  # vCPU index -> tid, from thread names
    sizes: RemoteInfo | None = None  # the last QMP answer about vCPUs and memory size
    sizes_age: int = 0  # polls since
    # The last good answer of the control socket, reused between asks (``remote_every``),
    # with the block rates made of it.
    remote: RemoteInfo | None = None
    remote_age: int = 0  # polls since it was asked
    block_rates: dict[str, IORate] = field(default_factory=dict)
    block_reasons: dict[str, Reason] = field(default_factory=dict)


# --- QMP sizes kept between polls ---------------------------------------------------------


def sizes_due(state: VMState, local: LocalReading) -> bool:
    """Ask QMP for vCPUs and memory size this poll? (Non-QMP hypervisors ignore it.)
    Also when a vCPU thread QMP named is not among the threads read just now."""
    kept = state.sizes
    if kept is None or state.sizes_age + 1 >= SIZES_EVERY:
        return True
    threads = local.threads.value
    if kept.vcpu_threads and threads is not None:
        return any(v.thread_id not in threads for v in kept.vcpu_threads)
    return False


def keep_sizes(state: VMState, info: RemoteInfo, asked: bool) -> None:
    """After a successful QMP session: remember its sizes, or fill them in from the last
    session that asked (with the reasons it gave, for a server that lacks a query)."""
    if asked:
        kept = RemoteInfo()
        for name in SIZE_FIELDS:
            setattr(kept, name, getattr(info, name))
            if name in info.reasons:
                kept.reasons[name] = info.reasons[name]
        state.sizes, state.sizes_age = kept, 0
        return
    kept = state.sizes
    if kept is None:  # cannot happen: not asking needs an earlier answer
        return
    state.sizes_age += 1
    for name in SIZE_FIELDS:
        setattr(info, name, getattr(kept, name))
        if name in kept.reasons:
            info.reasons.setdefault(name, kept.reasons[name])


# --- putting one VM together ---------------------------------------------------------------


def assemble(
    vm: VM,
    state: VMState,
    now: float,
    local: LocalReading,
    info: RemoteInfo,
    fs_result: FsResult | None,
    links: dict[str, Link],
    links_reason: str | None,
    bound: dict[int, set[str] | str],
    links_t: float | None,
    *,
    ncpu: int,
    clock: Callable[[], float],
    reused: bool = False,
    block_window: int | None = None,
) -> VMSample:
    """One VM's sample from what the poll read, and the rates from STATE (the previous
    poll's readings, updated here). REUSED: INFO is an earlier poll's answer (its block rates
    stand). LINKS_T: when LINKS were read (None: now, on CLOCK). BLOCK_WINDOW: block rates
    only from two readings at most this many polls apart (a VM asked for its counters only
    while in focus: an older reading would make an average over minutes look current);
    further apart, the first reading again (``Why.NEEDS_TWO``). None: any."""
    unit = vm.unit
    assert unit is not None and unit.main_pid
    pid = unit.main_pid
    s = VMSample(name=vm.name, pid=pid, hypervisor=vm.hypervisor, t=now)
    reasons = s.reasons
    s.remote_ms = info.elapsed_s * 1000 if info.elapsed_s else None

    # State and sizes from the control socket.
    s.qmp_status = info.status
    if info.status is None:
        reasons["qmp_status"] = info.reasons.get("status") or info.error or Why.UNKNOWN
    s.vcpu_count = info.vcpu_count or vm.vcpu
    if s.vcpu_count is None:
        reasons["vcpu_count"] = info.reasons.get("vcpu_count", Why.UNKNOWN)
    configured = info.mem_configured_bytes
    if configured is None and vm.mem_mib:
        configured = vm.mem_mib * MIB  # as the runner declares it
    s.mem_configured_mib = round(configured / MIB) if configured is not None else None
    if configured is None:
        reasons["mem_configured_mib"] = info.reasons.get("mem_configured_bytes", Why.UNKNOWN)
    for src, dst in (
        ("mem_guest_visible_bytes", "mem_guest_visible_mib"),
        ("mem_guest_used_bytes", "mem_guest_used_mib"),
    ):
        value = getattr(info, src)
        if value is not None:
            setattr(s, dst, round(value / MIB))
        else:
            reasons[dst] = info.reasons.get(src) or info.error or Why.UNKNOWN

    # CPU.
    s.cpu_source = local.cpu.source
    if local.cgroup_cpu_reason and local.cpu.ok:
        reasons["cpu_cgroup"] = local.cgroup_cpu_reason  # why not from the cgroup
    if local.cpu.value is None:
        reasons["cpu_pct_of_host"] = reasons["cpu_pct_of_vcpus"] = local.cpu.reason or "?"
    else:
        prev = state.cpu
        state.cpu = Counter(local.cpu_t, local.cpu.value, local.cpu.source)
        cpu, why = rates.cpu_rates(prev, state.cpu, ncpu, s.vcpu_count)
        s.cpu_pct_of_host, s.cpu_pct_of_vcpus = cpu.pct_of_host, cpu.pct_of_vcpus
        reasons.update(why)

    # Per vCPU.
    _vcpus(s, state, local, info)

    # Memory on the host.
    s.mem_host_bytes = local.mem.value
    s.mem_host_source = local.mem.source
    if local.cgroup_mem_reason and local.mem.ok:
        reasons["mem_host_cgroup"] = local.cgroup_mem_reason  # why not from the cgroup
    if local.mem.value is None:
        reasons["mem_host_bytes"] = local.mem.reason or Why.UNKNOWN

    # Block I/O.
    state.block_age += 1
    if reused:
        s.block = dict(state.block_rates)
        reasons.update(state.block_reasons)
    elif info.block is not None:
        prev = state.block
        if block_window is not None and state.block_age > block_window:
            prev = None
        state.block, state.block_age = Counter(info.read_at or now, info.block), 0
        s.block, why = rates.block_rates(prev, info.block, state.block.t)
        reasons.update(why)
    else:
        reasons["block"] = info.reasons.get("block") or info.error or Why.UNKNOWN
    if not reused:
        state.block_rates = dict(s.block)
        state.block_reasons = {k: v for k, v in reasons.items() if k.startswith("block")}

    # Network.
    _net(s, vm, state, links, links_reason, clock() if links_t is None else links_t)

    # Shares and volumes.
    if fs_result is not None:
        s.share_free_bytes = fs_result.free
        s.share_total_bytes = fs_result.total
        s.volume_open = fs_result.volume_open
        reasons.update(fs_result.reasons)
    virtiofs = [sh for sh in vm.shares if sh.proto == "virtiofs"]
    if virtiofs:
        paths = bound.get(pid, set())
        for sh in virtiofs:
            if not sh.socket:
                reasons[f"virtiofsd_alive:{sh.tag}"] = Why.NO_SHARE_SOCKET
            elif isinstance(paths, str):
                reasons[f"virtiofsd_alive:{sh.tag}"] = paths
            else:
                s.virtiofsd_alive[sh.tag] = socket_bound(sh.socket, str(vm.path), paths)

    # Process.
    if state.info is None:
        got = process.read_process_info(pid)
        if got.value is not None:
            state.info = got.value
        else:
            reasons["uptime_s"] = reasons["process_name"] = got.reason or Why.UNKNOWN
    if state.info is not None:
        s.uptime_s = state.info.uptime_s
        s.process_name = state.info.name
    return s


def _vcpus(s: VMSample, state: VMState, local: LocalReading, info: RemoteInfo) -> None:
    threads = local.threads.value
    prev = state.threads
    if threads is not None:
        state.threads = Counter(local.cpu_t, threads)
    if info.vcpu_threads:
        mapping = {v.index: v.thread_id for v in info.vcpu_threads}
    else:
        # Thread names, cached per process; looked up again when a vCPU thread is gone or
        # none was found yet (the hypervisor may still be starting).
        known = state.vcpu_names
        if not known or (threads is not None and not set(known.values()) <= set(threads)):
            state.vcpu_names = process.vcpu_threads_by_name(state.pid)
        mapping = state.vcpu_names or {}
    if not mapping:
        s.reasons["vcpus"] = info.reasons.get("vcpu_threads") or info.error or Why.NO_VCPU_THREADS
        return
    if threads is None:
        s.reasons["vcpus"] = local.threads.reason or Why.NO_THREAD_TIMES
        return
    s.vcpus, why = rates.vcpu_rates(prev, threads, local.cpu_t, mapping)
    if why is not None:
        s.reasons["vcpus"] = why


def _net(
    s: VMSample,
    vm: VM,
    state: VMState,
    links: dict[str, Link],
    links_reason: str | None,
    t: float,
) -> None:
    if not vm.interfaces:
        return
    current: dict[str, tuple[int, int]] = {}
    host_side: dict[str, bool] = {}  # counters seen from the host's end (a tap)
    for iface in vm.interfaces:
        if links_reason is not None:
            s.reasons[f"net:{iface.id}"] = links_reason
            continue
        link = links.get(iface.id)
        if link is None:
            s.reasons[f"net:{iface.id}"] = Why.IFACE_NOT_FOUND
        elif link.rx_bytes is None or link.tx_bytes is None:
            s.reasons[f"net:{iface.id}"] = Why.NO_BYTE_COUNTERS
        else:
            current[iface.id] = (link.rx_bytes, link.tx_bytes)
            host_side[iface.id] = rates.counts_host_side(link.kind, iface.type)
    prev = state.net
    state.net = Counter(t, current)
    s.net, why = rates.net_rates(prev, current, t, host_side)
    s.reasons.update(why)
