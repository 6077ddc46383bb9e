"""Live figures for the monitor: one ``Sampler.sample()`` per poll, rates from the previous one.

Per running VM (unit MainPID set): CPU (cgroup, else the process's threads), per-vCPU busy and
steal, memory (configured, guest-visible, guest-used, host footprint), state, block and network
rates, share free space, virtiofsd liveness, uptime. Host totals go to ``Sampler.host``.

Time: local reads (/proc, /sys) run in the caller's thread, first; everything that may block
(control sockets, statvfs of share sources, netlink) then runs in a small thread pool with a
per-VM deadline, and ``sample()`` waits for the pool at most until the poll's deadline. A VM
that did not answer gets a reason ("QMP timeout after 1.0 s"); the others return normally. A
task still running from an earlier poll (a share on a dead NFS server) is not started again
while it hangs.

The pieces: ``samples`` (what the UI gets), ``local`` (the caller's thread's reads),
``rates`` (figures from two readings), ``timeline`` (history and crash loops); this module
schedules the reads and puts each VM's sample together.
"""

from __future__ import annotations

import concurrent.futures as cf
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from tui.host.crashloop import LOOP_WINDOW_S
from tui.host.links import Link, LinkReadError, LinkTable, read_links
from tui.host.model import VM
from tui.host.sampling import cgroup, process, rates
from tui.host.sampling.crosvm import query_crosvm
from tui.host.sampling.host import HostCPU, HostSample, host_ncpu, sample_host
from tui.host.sampling.http_api import query_cloud_hypervisor, query_firecracker
from tui.host.sampling.local import (
    FsResult,
    LocalReading,
    failed_fs,
    read_fs,
    read_local,
    socket_bound,
    unix_paths,
)
from tui.host.sampling.qmp import query_qemu, timeout_reason
from tui.host.sampling.rates import Counter
from tui.host.sampling.reading import RemoteInfo
from tui.host.sampling.samples import IORate, Reason, VMSample, Why
from tui.host.sampling.timeline import Timeline
from tui.host.settings import HostSettings

MIB = 1 << 20
QMP_HYPERVISORS = ("qemu", "stratovirt")
# What QMP says about vCPUs (count, thread ids) and configured memory rarely changes: it is
# asked on first contact with a process, then every SIZES_EVERY polls, and at once when a
# vCPU thread it named is gone; the polls in between reuse the answer.
SIZES_EVERY = 10
SIZE_FIELDS = ("vcpu_count", "vcpu_threads", "mem_configured_bytes")
LATE = object()  # what ``_result`` returns for a control socket query not done in time


# --- state kept between polls -------------------------------------------------------------


@dataclass
class _VMState:
    pid: int
    cpu: Counter | None = None
    threads: Counter | None = None  # {tid: ThreadTimes}
    block: Counter | None = None  # {device: BlockCounters}
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


class Sampler:
    """Keeps the previous raw counters per VM so each ``sample()`` can compute rates.

    ``timeout``: the per-VM deadline for its control socket (and the bound of a whole poll,
    plus ``grace``). ``remote_every``: ask the control socket of a VM that is not in focus
    every that many polls (its last good answer stands in between; a VM in focus, one that
    failed or is new is asked every poll). What is read locally (CPU, host memory, network)
    is read every poll for every VM. ``guest_stats_interval``: seconds; the qemu balloon is
    told to poll guest statistics at this interval on first contact (0 = leave it alone).
    """

    def __init__(
        self,
        *,
        timeout: float = 1.0,
        grace: float = 0.2,
        max_workers: int = 32,
        history_len: int = 300,
        guest_stats_interval: int = 5,
        crash_window_s: float = LOOP_WINDOW_S,
        remote_every: int = 1,
        layout: cgroup.CgroupLayout | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.timeout = timeout
        self.grace = grace
        self.guest_stats_interval = guest_stats_interval
        self.remote_every = max(1, remote_every)
        self.layout = layout
        self.clock = clock
        self.ncpu = host_ncpu()
        self.host: HostSample | None = None
        # Each VM's recent figures and the crash-looping VMs, for the live source's snapshots.
        self.timeline = Timeline(history_len, crash_window_s)
        self._pool = cf.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="sampler")
        self._host_cpu = HostCPU()
        self._state: dict[str, _VMState] = {}
        self._inflight: dict[tuple[str, str], cf.Future[Any]] = {}
        # Order of service next poll: 0 answered last time, 1 unknown, 2 timed out.
        self._priority: dict[str, int] = {}
        self._lock = threading.Lock()

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the poll ------------------------------------------------------------------------

    def sample(
        self,
        vms: list[VM],
        settings: HostSettings,
        *,
        open_files_for: Collection[str] = (),
        links: LinkTable | None = None,
        focus: Collection[str] = (),
    ) -> dict[str, VMSample]:
        """Sample every running VM of VMS. OPEN_FILES_FOR: names of the VMs whose volume
        images should be checked against the hypervisor's open files (costly; ask for the VM
        on screen only). LINKS: this poll's read of the links, made for the listing (covering
        every interface of VMS; its ``t`` on this sampler's clock); without it the links are
        read here. FOCUS: names of the VMs on screen, whose control socket is asked every
        poll."""
        with self._lock:
            return self._sample(vms, settings, set(open_files_for), links, set(focus))

    def _sample(
        self,
        vms: list[VM],
        settings: HostSettings,
        open_files_for: set[str],
        given_links: LinkTable | None = None,
        focus: frozenset[str] | set[str] = frozenset(),
    ) -> dict[str, VMSample]:
        now = self.clock()
        crash_looping = self.timeline.track_units(vms, now)
        running = [vm for vm in vms if vm.unit is not None and vm.unit.main_pid]
        for gone in set(self._state) - {vm.name for vm in running}:
            del self._state[gone]
        for gone in set(self._priority) - {vm.name for vm in running}:
            del self._priority[gone]
        for key in [k for k, f in self._inflight.items() if f.done()]:
            del self._inflight[key]  # only the ones still running matter (see _submit)

        # 1. Fast local reads first: done while the pool's threads would wake one after another
        # with their answers, they would fight them for the GIL (CPU spent on handing it over).
        self.host = sample_host(self._host_cpu, self.ncpu)
        local = {vm.name: read_local(vm, self.layout, self.clock) for vm in running}
        bound = unix_paths(running)

        # 2. Start everything that may block. VMs that answered last time go first, so a crowd
        # of hung ones cannot keep the pool from the healthy ones for more than one poll.
        deadline = self.clock() + self.timeout + self.grace
        remote: dict[str, cf.Future[RemoteInfo] | Why] = {}
        reused: set[str] = set()  # VMs whose last answer stands this poll
        stats_requested: dict[str, bool] = {}
        sizes_requested: dict[str, bool] = {}
        fs: dict[str, cf.Future[FsResult] | Why] = {}
        for vm in sorted(running, key=lambda v: self._priority.get(v.name, 1)):
            pid = vm.unit.main_pid  # type: ignore[union-attr]
            state = self._state.get(vm.name)
            if state is None or state.pid != pid:
                state = self._state[vm.name] = _VMState(pid=pid)
            enable_stats = not state.guest_stats_enabled and self.guest_stats_interval > 0
            stats_requested[vm.name] = enable_stats
            sizes = sizes_requested[vm.name] = self._sizes_due(state, local[vm.name])
            if (
                state.remote is not None
                and vm.name not in focus
                and state.remote_age + 1 < self.remote_every
            ):
                state.remote_age += 1
                reused.add(vm.name)
            else:
                remote[vm.name] = self._submit(
                    vm.name, "remote", self._timed_query, vm, deadline, enable_stats, sizes
                )
            check_open = vm.name in open_files_for and bool(vm.volumes)
            if vm.shares or check_open:
                fs[vm.name] = self._submit(vm.name, "fs", read_fs, vm, pid, check_open)
        ifnames = sorted({i.id for vm in running for i in vm.interfaces})
        links_future: cf.Future[dict[str, Link]] | Why | None = None
        if ifnames and given_links is None:
            links_future = self._submit("", "links", read_links, ifnames, settings.netns)

        # 3. Wait for the pool, at most until the deadline.
        pending = [f for f in (*remote.values(), *fs.values(), links_future) if _is_future(f)]
        cf.wait(pending, timeout=max(0.0, deadline - self.clock()))

        links: dict[str, Link] = {}
        links_reason: str | None = None
        links_t: float | None = None  # when they were read; None: now
        if given_links is not None:
            links, links_reason, links_t = given_links.links, given_links.error, given_links.t
        elif links_future is not None:
            links_value = self._result(links_future, "network counters did not come in time")
            if isinstance(links_value, str):
                links_reason = links_value
            else:
                links = links_value

        samples: dict[str, VMSample] = {}
        for vm in running:
            state = self._state[vm.name]
            fs_result = None
            if vm.name in fs:
                fs_value = self._result(fs[vm.name], "share check did not finish in time")
                fs_result = fs_value if isinstance(fs_value, FsResult) else failed_fs(vm, fs_value)
            remembered = state.remote if vm.name in reused else None
            if remembered is not None:
                samples[vm.name] = self._assemble(
                    vm,
                    now,
                    local[vm.name],
                    remembered,
                    fs_result,
                    links,
                    links_reason,
                    bound,
                    crash_looping,
                    links_t,
                    reused=True,
                )
                samples[vm.name].remote_age = state.remote_age
                continue
            info = self._result(remote[vm.name], LATE)
            if info is LATE:
                info = _failed_remote(self._late_reason(vm))
                info.timed_out = True
            elif isinstance(info, str):
                info = _failed_remote(info)
            if info.error is None:
                self._priority[vm.name] = 0
            elif info.timed_out:
                self._priority[vm.name] = 2
            else:
                self._priority[vm.name] = 1
            if stats_requested[vm.name] and info.error is None:
                self._state[vm.name].guest_stats_enabled = True
            if vm.hypervisor in QMP_HYPERVISORS and info.error is None:
                self._keep_sizes(state, info, sizes_requested[vm.name])
            state.remote, state.remote_age = (info if info.error is None else None), 0
            samples[vm.name] = self._assemble(
                vm,
                now,
                local[vm.name],
                info,
                fs_result,
                links,
                links_reason,
                bound,
                crash_looping,
                links_t,
            )
        self.timeline.record([vm.name for vm in vms], samples)
        return samples

    # -- pool plumbing -------------------------------------------------------------------

    def _submit(self, name: str, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        key = (name, kind)
        previous = self._inflight.get(key)
        if previous is not None and not previous.done():
            return Why.STILL_RUNNING
        future = self._pool.submit(fn, *args)
        self._inflight[key] = future
        return future

    @staticmethod
    def _result(future: Any, late: Any) -> Any:
        """FUTURE's value, or the reason it has none: LATE when it is not done by now."""
        if isinstance(future, str):
            return future
        if not future.done():
            future.cancel()  # not started yet: drop it; running: let it end on its own
            return late
        try:
            return future.result()
        except Exception as exc:  # a bug or an unexpected OS error: show it, do not crash
            if isinstance(exc, LinkReadError):
                return str(exc)
            return f"{type(exc).__name__}: {exc}"

    def _late_reason(self, vm: VM) -> str:
        if vm.hypervisor in QMP_HYPERVISORS:
            return timeout_reason(self.timeout)
        return f"API timeout after {self.timeout:.1f} s"

    # -- workers (run in the pool; no shared state is written here) ----------------------

    def _timed_query(
        self, vm: VM, deadline: float, enable_stats: bool, sizes: bool = True
    ) -> RemoteInfo:
        """``_query_remote``, marked ``timed_out`` when it failed after using all the time it
        had (a server that hangs), whatever words its reader found for that."""
        started = self.clock()
        allowed = min(self.timeout, deadline - self.grace - started)
        info = self._query_remote(vm, deadline, enable_stats, sizes)
        if info.error is not None and allowed > 0.05 and self.clock() - started >= allowed:
            info.timed_out = True
        return info

    def _query_remote(
        self, vm: VM, deadline: float, enable_stats: bool, sizes: bool = True
    ) -> RemoteInfo:
        timeout = min(self.timeout, deadline - self.grace - self.clock())
        if timeout <= 0.05:
            return _failed_remote(Why.DEADLINE_PASSED)
        hv = vm.hypervisor
        if not vm.socket:
            if hv in ("kvmtool", "alioth"):
                return _failed_remote(f"{hv} has no control socket")
            return _failed_remote("no control socket configured")
        if hv in QMP_HYPERVISORS:
            return query_qemu(
                vm.socket,
                timeout,
                guest_stats_interval=self.guest_stats_interval if enable_stats else None,
                sizes=sizes,
                pipeline=hv == "qemu",  # stratovirt's server: one command at a time
            )
        if hv == "cloud-hypervisor":
            return query_cloud_hypervisor(vm.socket, timeout)
        if hv == "firecracker":
            return query_firecracker(vm.socket, timeout)
        if hv == "crosvm":
            configured = vm.mem_mib * MIB if vm.mem_mib else None
            return query_crosvm(vm.socket, timeout, mem_configured_bytes=configured)
        return _failed_remote(f"no live query for {hv or 'an unknown hypervisor'}")

    # -- QMP sizes kept between polls ----------------------------------------------------

    @staticmethod
    def _sizes_due(state: _VMState, local: LocalReading) -> bool:
        """Ask QMP for vCPUs and memory size this poll? (Non-QMP hypervisors ignore it.)
        Also when a vCPU thread QMP named is not among the threads read just now."""
        kept = state.sizes
        if kept is None or state.sizes_age + 1 >= SIZES_EVERY:
            return True
        threads = local.threads.value
        if kept.vcpu_threads and threads is not None:
            return any(v.thread_id not in threads for v in kept.vcpu_threads)
        return False

    @staticmethod
    def _keep_sizes(state: _VMState, info: RemoteInfo, asked: bool) -> None:
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

    # -- putting one VM together ---------------------------------------------------------

    def _assemble(
        self,
        vm: VM,
        now: float,
        local: LocalReading,
        info: RemoteInfo,
        fs_result: FsResult | None,
        links: dict[str, Link],
        links_reason: str | None,
        bound: dict[int, set[str] | str],
        crash_looping: set[str],
        links_t: float | None = None,
        *,
        reused: bool = False,
    ) -> VMSample:
        """One VM's sample. REUSED: INFO is an earlier poll's answer (its block rates stand)."""
        unit = vm.unit
        assert unit is not None and unit.main_pid
        pid = unit.main_pid
        state = self._state[vm.name]
        s = VMSample(name=vm.name, pid=pid, hypervisor=vm.hypervisor, t=now)
        reasons = s.reasons
        s.restarts = unit.restarts
        s.crash_looping = vm.name in crash_looping
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
            cpu, why = rates.cpu_rates(prev, state.cpu, self.ncpu, s.vcpu_count)
            s.cpu_pct_of_host, s.cpu_pct_of_vcpus = cpu.pct_of_host, cpu.pct_of_vcpus
            reasons.update(why)

        # Per vCPU.
        self._vcpus(s, state, local, info)

        # Memory on the host.
        s.mem_host_bytes = local.mem.value
        s.mem_host_source = local.mem.source
        if local.cgroup_mem_reason and local.mem.ok:
            reasons["mem_host_cgroup"] = local.cgroup_mem_reason  # why not from the cgroup
        if local.mem.value is None:
            reasons["mem_host_bytes"] = local.mem.reason or Why.UNKNOWN

        # Block I/O.
        if reused:
            s.block = dict(state.block_rates)
            reasons.update(state.block_reasons)
        elif info.block is not None:
            prev = state.block
            state.block = Counter(info.read_at or now, info.block)
            s.block, why = rates.block_rates(prev, info.block, state.block.t)
            reasons.update(why)
        else:
            reasons["block"] = info.reasons.get("block") or info.error or Why.UNKNOWN
        if not reused:
            state.block_rates = dict(s.block)
            state.block_reasons = {k: v for k, v in reasons.items() if k.startswith("block")}

        # Network.
        self._net(s, vm, state, links, links_reason, links_t)

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

    def _vcpus(self, s: VMSample, state: _VMState, local: LocalReading, info: RemoteInfo) -> None:
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
            s.reasons["vcpus"] = (
                info.reasons.get("vcpu_threads") or info.error or Why.NO_VCPU_THREADS
            )
            return
        if threads is None:
            s.reasons["vcpus"] = local.threads.reason or Why.NO_THREAD_TIMES
            return
        s.vcpus, why = rates.vcpu_rates(prev, threads, local.cpu_t, mapping)
        if why is not None:
            s.reasons["vcpus"] = why

    def _net(
        self,
        s: VMSample,
        vm: VM,
        state: _VMState,
        links: dict[str, Link],
        links_reason: str | None,
        links_t: float | None = None,
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
        t = self.clock() if links_t is None else links_t
        state.net = Counter(t, current)
        s.net, why = rates.net_rates(prev, current, t, host_side)
        s.reasons.update(why)


# --- helpers ------------------------------------------------------------------------------


def _is_future(value: Any) -> bool:
    return isinstance(value, cf.Future)


def _failed_remote(reason: Reason) -> RemoteInfo:
    info = RemoteInfo(error=reason)
    info.fail_missing(reason)
    return info
