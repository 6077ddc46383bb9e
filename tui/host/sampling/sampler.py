"""Live figures for the monitor: one ``Sampler.sample()`` per poll, rates from the previous one.

Per running VM (unit MainPID set): CPU (cgroup, else the process's threads), per-vCPU busy and
steal, memory (configured, guest-visible, guest-used, host footprint), state, block and network
rates, share free space, virtiofsd liveness, uptime. Host totals go to ``Sampler.host``.

Time: local reads (/proc, /sys) run in the caller's thread, first; everything that may block
then runs with a per-VM deadline, QMP sessions on the host loop (``tui.host.hostloop``) and the
rest (the other control sockets, statvfs of share sources, netlink) in a small thread pool;
``sample()`` waits for them at most until the poll's deadline. A VM that did not answer gets a
reason ("QMP timeout after 1.0 s"); the others return normally. A task still running from an
earlier poll (a share on a dead NFS server) is not started again while it hangs.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import os
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from tui.host.crashloop import LOOP_WINDOW_S, CrashLoopTracker
from tui.host.hostloop import host_loop
from tui.host.links import Link, LinkReadError, LinkTable, read_links
from tui.host.model import VM
from tui.host.qmp import timeout_reason
from tui.host.sampling import cgroup, process
from tui.host.sampling.crosvm import query_crosvm
from tui.host.sampling.history import History
from tui.host.sampling.host import HostCPU, HostSample, host_ncpu, sample_host
from tui.host.sampling.http_api import query_cloud_hypervisor, query_firecracker
from tui.host.sampling.qmp import query_qemu_async
from tui.host.sampling.reading import BlockCounters, Reading, RemoteInfo
from tui.host.settings import HostSettings
from tui.host.unixsock import bound_unix_paths

MIB = 1 << 20
NEEDS_TWO = "needs a second sample"
QMP_HYPERVISORS = ("qemu", "stratovirt")
# What QMP says about vCPUs (count, thread ids) and configured memory rarely changes: it is
# asked on first contact with a process, then every SIZES_EVERY polls, and at once when a
# vCPU thread it named is gone; the polls in between reuse the answer.
SIZES_EVERY = 10
SIZE_FIELDS = ("vcpu_count", "vcpu_threads", "mem_configured_bytes")


# --- what the UI gets ---------------------------------------------------------------------


@dataclass
class VcpuSample:
    index: int
    thread_id: int
    busy_pct: float | None = None  # % of one host CPU the vCPU thread ran
    steal_pct: float | None = None  # % of the time it was runnable but waited for a CPU


@dataclass
class IORate:
    read_bps: float  # bytes per second
    write_bps: float


@dataclass
class NetRate:
    """One NIC's traffic as the guest sees it, in bytes per second."""

    guest_rx_bps: float  # toward the guest
    guest_tx_bps: float  # sent by the guest


@dataclass
class VMSample:
    """One VM at one poll. ``None``/missing = unknown; ``reasons[field]`` says why.

    ``reasons`` keys are field names, or ``"field:item"`` for one entry of a dict field
    (``"net:vm-a"``, ``"share_free_bytes:ro-store"``).
    """

    name: str
    pid: int
    hypervisor: str | None
    t: float  # time.monotonic() of the poll
    cpu_pct_of_vcpus: float | None = None  # 100 = every vCPU busy all the time
    cpu_pct_of_host: float | None = None  # 100 = every host CPU busy with this VM
    # Where CPU and host memory came from ("cgroup v2 cpu.stat", "process schedstat", ...);
    # when not from the unit's cgroup, reasons["cpu_cgroup"] / ["mem_host_cgroup"] say why.
    cpu_source: str | None = None
    vcpu_count: int | None = None
    vcpus: list[VcpuSample] = field(default_factory=list)
    mem_configured_mib: int | None = None
    mem_guest_visible_mib: int | None = None  # RAM minus the balloon
    mem_guest_used_mib: int | None = None  # guest's own view (balloon statistics)
    mem_host_bytes: int | None = None  # what the VM costs the host (cgroup or RSS)
    mem_host_source: str | None = None
    qmp_status: str | None = None  # the hypervisor's run state: "running", "paused", ...
    block: dict[str, IORate] = field(default_factory=dict)
    net: dict[str, NetRate] = field(default_factory=dict)
    share_free_bytes: dict[str, int] = field(default_factory=dict)  # by share tag
    share_total_bytes: dict[str, int] = field(default_factory=dict)
    virtiofsd_alive: dict[str, bool] = field(default_factory=dict)  # virtiofs shares by tag
    volume_open: dict[str, bool] | None = None  # image -> held open; None = not asked
    uptime_s: float | None = None
    process_name: str | None = None
    restarts: int | None = None
    crash_looping: bool = False
    remote_ms: float | None = None  # how long the control socket took this poll
    remote_age: int = 0  # polls since its control socket was asked (0: this one)
    reasons: dict[str, str] = field(default_factory=dict)


# --- state kept between polls -------------------------------------------------------------


@dataclass
class _Counter:
    t: float
    value: Any
    source: str | None = None


@dataclass
class _VMState:
    pid: int
    cpu: _Counter | None = None
    threads: _Counter | None = None  # {tid: ThreadTimes}
    block: _Counter | None = None  # {device: BlockCounters}
    net: _Counter | None = None  # {ifname: (rx, tx)}
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
    block_reasons: dict[str, str] = field(default_factory=dict)


@dataclass
class _FsResult:
    free: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    volume_open: dict[str, bool] | None = None
    reasons: dict[str, str] = field(default_factory=dict)


@dataclass
class _Local:
    """What the caller's thread read for one VM (fast /proc and /sys reads)."""

    cpu: Reading[int]
    cpu_t: float
    threads: Reading[dict[int, process.ThreadTimes]]
    mem: Reading[int]
    cgroup_cpu_reason: str | None = None
    cgroup_mem_reason: str | None = None


def _rate(delta: float, dt: float) -> float:
    return delta / dt if dt > 0 else 0.0


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
        self._loops = CrashLoopTracker(crash_window_s)
        self.remote_every = max(1, remote_every)
        self.layout = layout
        self.clock = clock
        self.ncpu = host_ncpu()
        self.host: HostSample | None = None
        self.history: dict[str, History] = {}
        self.history_len = history_len
        self.crash_looping: set[str] = set()
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
        self._track_restarts(vms, now)
        running = [vm for vm in vms if vm.unit is not None and vm.unit.main_pid]
        names = {vm.name for vm in vms}
        for gone in set(self.history) - names:
            del self.history[gone]
        for gone in set(self._state) - {vm.name for vm in running}:
            del self._state[gone]
        for gone in set(self._priority) - {vm.name for vm in running}:
            del self._priority[gone]
        for key in [k for k, f in self._inflight.items() if f.done()]:
            del self._inflight[key]  # only the ones still running matter (see _submit)

        # 1. Fast local reads first: done while the pool's threads would wake one after another
        # with their answers, they would fight them for the GIL (CPU spent on handing it over).
        self.host = sample_host(self._host_cpu, self.ncpu)
        local = {vm.name: self._read_local(vm) for vm in running}
        unix_paths = self._unix_paths(running)

        # 2. Start everything that may block. VMs that answered last time go first, so a crowd
        # of hung ones cannot keep the pool from the healthy ones for more than one poll.
        deadline = self.clock() + self.timeout + self.grace
        remote: dict[str, cf.Future[RemoteInfo] | str] = {}
        reused: set[str] = set()  # VMs whose last answer stands this poll
        stats_requested: dict[str, bool] = {}
        sizes_requested: dict[str, bool] = {}
        fs: dict[str, cf.Future[_FsResult] | str] = {}
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
                query = self._query_qmp if vm.hypervisor in QMP_HYPERVISORS else self._query_remote
                remote[vm.name] = self._submit(
                    vm.name, "remote", query, vm, deadline, enable_stats, sizes
                )
            check_open = vm.name in open_files_for and bool(vm.volumes)
            if vm.shares or check_open:
                fs[vm.name] = self._submit(vm.name, "fs", self._read_fs, vm, pid, check_open)
        ifnames = sorted({i.id for vm in running for i in vm.interfaces})
        links_future: cf.Future[dict[str, Link]] | str | None = None
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
                fs_result = (
                    fs_value if isinstance(fs_value, _FsResult) else _failed_fs(vm, fs_value)
                )
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
                    unix_paths,
                    links_t,
                    reused=True,
                )
                samples[vm.name].remote_age = state.remote_age
                continue
            info = self._result(remote[vm.name], self._late_reason(vm))
            if isinstance(info, str):
                info = _failed_remote(info)
            if info.error is None:
                self._priority[vm.name] = 0
            elif "timeout" in info.error:
                self._priority[vm.name] = 2
            else:
                self._priority[vm.name] = 1
            if stats_requested[vm.name] and info.error is None:
                self._state[vm.name].guest_stats_enabled = True
            if vm.hypervisor in QMP_HYPERVISORS and info.error is None:
                self._keep_sizes(state, info, sizes_requested[vm.name])
            state.remote, state.remote_age = (info if info.error is None else None), 0
            samples[vm.name] = self._assemble(
                vm, now, local[vm.name], info, fs_result, links, links_reason, unix_paths, links_t
            )
        for name, s in samples.items():
            hist = self.history.get(name)
            if hist is None:
                hist = self.history[name] = History(self.history_len)
            hist.append(s.t, s.cpu_pct_of_vcpus, s.mem_host_bytes)
        return samples

    # -- pool plumbing -------------------------------------------------------------------

    def _submit(self, name: str, kind: str, fn: Callable[..., Any], *args: Any) -> Any:
        key = (name, kind)
        previous = self._inflight.get(key)
        if previous is not None and not previous.done():
            return "the previous poll's query is still running (hung?)"
        if inspect.iscoroutinefunction(fn):  # a session on the host loop (QMP)
            future = host_loop().submit(fn(*args))
        else:
            future = self._pool.submit(fn, *args)
        self._inflight[key] = future
        return future

    @staticmethod
    def _result(future: Any, late_reason: str) -> Any:
        if isinstance(future, str):
            return future
        if not future.done():
            future.cancel()  # not started yet: drop it; running: let it end on its own
            return late_reason
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

    # -- workers (in the pool or on the host loop; no shared state is written here) ------

    def _remote_timeout(self, vm: VM, deadline: float) -> float | RemoteInfo:
        """The time VM's control socket may take this poll, or why it is not asked."""
        timeout = min(self.timeout, deadline - self.grace - self.clock())
        if timeout <= 0.05:
            return _failed_remote("not queried: the poll's deadline had passed")
        if not vm.socket:
            if vm.hypervisor in ("kvmtool", "alioth"):
                return _failed_remote(f"{vm.hypervisor} has no control socket")
            return _failed_remote("no control socket configured")
        return timeout

    async def _query_qmp(
        self, vm: VM, deadline: float, enable_stats: bool, sizes: bool = True
    ) -> RemoteInfo:
        """A QMP session (qemu, stratovirt), on the host loop."""
        timeout = self._remote_timeout(vm, deadline)
        if isinstance(timeout, RemoteInfo):
            return timeout
        return await query_qemu_async(
            vm.socket,
            timeout,
            guest_stats_interval=self.guest_stats_interval if enable_stats else None,
            sizes=sizes,
            pipeline=vm.hypervisor == "qemu",  # stratovirt's server: one command at a time
        )

    def _query_remote(
        self, vm: VM, deadline: float, enable_stats: bool, sizes: bool = True
    ) -> RemoteInfo:
        timeout = self._remote_timeout(vm, deadline)
        if isinstance(timeout, RemoteInfo):
            return timeout
        hv = vm.hypervisor
        if hv == "cloud-hypervisor":
            return query_cloud_hypervisor(vm.socket, timeout)
        if hv == "firecracker":
            return query_firecracker(vm.socket, timeout)
        if hv == "crosvm":
            configured = vm.mem_mib * MIB if vm.mem_mib else None
            return query_crosvm(vm.socket, timeout, mem_configured_bytes=configured)
        return _failed_remote(f"no live query for {hv or 'an unknown hypervisor'}")

    @staticmethod
    def _read_fs(vm: VM, pid: int, check_open: bool) -> _FsResult:
        result = _FsResult()
        for share in vm.shares:
            if not share.source:
                continue
            try:
                st = os.statvfs(share.source)
            except OSError as exc:
                result.reasons[f"share_free_bytes:{share.tag}"] = (
                    f"cannot stat {share.source}: {exc.strerror or exc}"
                )
                continue
            result.free[share.tag] = st.f_bavail * st.f_frsize
            result.total[share.tag] = st.f_blocks * st.f_frsize
        if check_open:
            opened = process.files_open(pid, [v.image for v in vm.volumes])
            if opened.value is not None:
                result.volume_open = opened.value
            else:
                result.reasons["volume_open"] = opened.reason or "unknown"
        return result

    # -- QMP sizes kept between polls ----------------------------------------------------

    @staticmethod
    def _sizes_due(state: _VMState, local: _Local) -> bool:
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

    # -- local reads (caller's thread) ---------------------------------------------------

    def _read_local(self, vm: VM) -> _Local:
        assert vm.unit is not None and vm.unit.main_pid
        pid = vm.unit.main_pid
        cg = vm.unit.control_group
        threads = process.read_thread_times(pid)
        cpu = cgroup.read_cpu_usage_ns(cg, self.layout)
        cpu_t = self.clock()
        cg_cpu_reason = None
        if not cpu.ok:
            cg_cpu_reason = cpu.reason
            if threads.value:
                total = sum(t.run_ns for t in threads.value.values())
                cpu = Reading.of(total, "process schedstat")
            else:
                cpu = Reading.fail(threads.reason or cpu.reason or "unknown")
        mem = cgroup.read_memory_bytes(cg, self.layout, pid)
        cg_mem_reason = None
        if not mem.ok:
            cg_mem_reason = mem.reason
            fallback = process.read_memory_bytes(pid)
            mem = fallback if fallback.ok else Reading.fail(fallback.reason or mem.reason or "?")
        return _Local(cpu, cpu_t, threads, mem, cg_cpu_reason, cg_mem_reason)

    def _unix_paths(self, running: list[VM]) -> dict[int, set[str] | str]:
        """Bound unix socket paths per VM pid, read once per network namespace."""
        wanted = [vm for vm in running if any(s.proto == "virtiofs" for s in vm.shares)]
        by_ns: dict[str, set[str] | str] = {}
        per_pid: dict[int, set[str] | str] = {}
        own_ns = _netns_id("self")
        for vm in wanted:
            pid = vm.unit.main_pid  # type: ignore[union-attr]
            paths: set[str] = set()
            errors: list[str] = []
            # virtiofsd may share the hypervisor's namespace or ours: look in both.
            for who in dict.fromkeys(["self", str(pid)]):
                ns = _netns_id(who) or who
                if who != "self" and ns == own_ns:
                    continue
                if ns not in by_ns:
                    try:
                        by_ns[ns] = bound_unix_paths(f"/proc/{who}/net/unix")
                    except OSError as exc:
                        by_ns[ns] = f"cannot read /proc/{who}/net/unix: {exc.strerror or exc}"
                found = by_ns[ns]
                if isinstance(found, str):
                    errors.append(found)
                else:
                    paths |= found
            per_pid[pid] = paths if paths or not errors else errors[0]
        return per_pid

    # -- putting one VM together ---------------------------------------------------------

    def _assemble(
        self,
        vm: VM,
        now: float,
        local: _Local,
        info: RemoteInfo,
        fs_result: _FsResult | None,
        links: dict[str, Link],
        links_reason: str | None,
        unix_paths: dict[int, set[str] | str],
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
        s.crash_looping = vm.name in self.crash_looping
        s.remote_ms = info.elapsed_s * 1000 if info.elapsed_s else None

        # State and sizes from the control socket.
        s.qmp_status = info.status
        if info.status is None:
            reasons["qmp_status"] = info.reasons.get("status") or info.error or "unknown"
        s.vcpu_count = info.vcpu_count or vm.vcpu
        if s.vcpu_count is None:
            reasons["vcpu_count"] = info.reasons.get("vcpu_count", "unknown")
        configured = info.mem_configured_bytes
        if configured is None and vm.mem_mib:
            configured = vm.mem_mib * MIB  # as the runner declares it
        s.mem_configured_mib = round(configured / MIB) if configured is not None else None
        if configured is None:
            reasons["mem_configured_mib"] = info.reasons.get("mem_configured_bytes", "unknown")
        for src, dst in (
            ("mem_guest_visible_bytes", "mem_guest_visible_mib"),
            ("mem_guest_used_bytes", "mem_guest_used_mib"),
        ):
            value = getattr(info, src)
            if value is not None:
                setattr(s, dst, round(value / MIB))
            else:
                reasons[dst] = info.reasons.get(src) or info.error or "unknown"

        # CPU.
        s.cpu_source = local.cpu.source
        if local.cgroup_cpu_reason and local.cpu.ok:
            reasons["cpu_cgroup"] = local.cgroup_cpu_reason  # why not from the cgroup
        if local.cpu.value is None:
            reasons["cpu_pct_of_host"] = reasons["cpu_pct_of_vcpus"] = local.cpu.reason or "?"
        else:
            prev = state.cpu
            state.cpu = _Counter(local.cpu_t, local.cpu.value, local.cpu.source)
            if prev is None or prev.source != local.cpu.source:
                reasons["cpu_pct_of_host"] = reasons["cpu_pct_of_vcpus"] = NEEDS_TWO
            elif local.cpu.value < prev.value:
                why = "the CPU counter went backwards (a thread ended); next poll"
                reasons["cpu_pct_of_host"] = reasons["cpu_pct_of_vcpus"] = why
            else:
                ns_per_s = _rate(local.cpu.value - prev.value, local.cpu_t - prev.t)
                s.cpu_pct_of_host = 100.0 * ns_per_s / 1e9 / self.ncpu
                if s.vcpu_count:
                    s.cpu_pct_of_vcpus = 100.0 * ns_per_s / 1e9 / s.vcpu_count
                else:
                    reasons["cpu_pct_of_vcpus"] = "vCPU count unknown"

        # Per vCPU.
        self._vcpus(s, state, local, info)

        # Memory on the host.
        s.mem_host_bytes = local.mem.value
        s.mem_host_source = local.mem.source
        if local.cgroup_mem_reason and local.mem.ok:
            reasons["mem_host_cgroup"] = local.cgroup_mem_reason  # why not from the cgroup
        if local.mem.value is None:
            reasons["mem_host_bytes"] = local.mem.reason or "unknown"

        # Block I/O.
        if reused:
            s.block = dict(state.block_rates)
            reasons.update(state.block_reasons)
        elif info.block is not None:
            prev = state.block
            state.block = _Counter(info.read_at or now, info.block)
            if prev is None:
                if info.block:
                    reasons["block"] = NEEDS_TWO
            else:
                dt = state.block.t - prev.t
                for dev, cur in info.block.items():
                    old: BlockCounters | None = prev.value.get(dev)
                    if old is None or cur.rd_bytes < old.rd_bytes or cur.wr_bytes < old.wr_bytes:
                        reasons[f"block:{dev}"] = NEEDS_TWO
                        continue
                    s.block[dev] = IORate(
                        _rate(cur.rd_bytes - old.rd_bytes, dt),
                        _rate(cur.wr_bytes - old.wr_bytes, dt),
                    )
        else:
            reasons["block"] = info.reasons.get("block") or info.error or "unknown"
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
            paths = unix_paths.get(pid, set())
            for sh in virtiofs:
                if not sh.socket:
                    reasons[f"virtiofsd_alive:{sh.tag}"] = "no socket path for this share"
                elif isinstance(paths, str):
                    reasons[f"virtiofsd_alive:{sh.tag}"] = paths
                else:
                    s.virtiofsd_alive[sh.tag] = _socket_bound(sh.socket, str(vm.path), paths)

        # Process.
        if state.info is None:
            got = process.read_process_info(pid)
            if got.value is not None:
                state.info = got.value
            else:
                reasons["uptime_s"] = reasons["process_name"] = got.reason or "unknown"
        if state.info is not None:
            s.uptime_s = state.info.uptime_s
            s.process_name = state.info.name
        return s

    def _vcpus(self, s: VMSample, state: _VMState, local: _Local, info: RemoteInfo) -> None:
        threads = local.threads.value
        prev = state.threads
        if threads is not None:
            state.threads = _Counter(local.cpu_t, threads)
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
                info.reasons.get("vcpu_threads") or info.error or "no vCPU threads found"
            )
            return
        if threads is None:
            s.reasons["vcpus"] = local.threads.reason or "cannot read thread times"
            return
        for index in sorted(mapping):
            tid = mapping[index]
            v = VcpuSample(index=index, thread_id=tid)
            cur = threads.get(tid)
            old = prev.value.get(tid) if prev is not None else None
            if cur is not None and old is not None and cur.run_ns >= old.run_ns:
                dt = local.cpu_t - prev.t  # type: ignore[union-attr]
                v.busy_pct = 100.0 * _rate(cur.run_ns - old.run_ns, dt) / 1e9
                v.steal_pct = 100.0 * _rate(max(0, cur.wait_ns - old.wait_ns), dt) / 1e9
            s.vcpus.append(v)
        if prev is None:
            s.reasons["vcpus"] = NEEDS_TWO

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
                s.reasons[f"net:{iface.id}"] = "interface not found"
            elif link.rx_bytes is None or link.tx_bytes is None:
                s.reasons[f"net:{iface.id}"] = "no byte counters"
            else:
                current[iface.id] = (link.rx_bytes, link.tx_bytes)
                host_side[iface.id] = _counts_host_side(link.kind, iface.type)
        prev = state.net
        t = self.clock() if links_t is None else links_t
        state.net = _Counter(t, current)
        for ifname, (rx, tx) in current.items():
            old = prev.value.get(ifname) if prev is not None else None
            if old is None or rx < old[0] or tx < old[1]:
                s.reasons[f"net:{ifname}"] = NEEDS_TWO
                continue
            dt = t - prev.t  # type: ignore[union-attr]
            rx_bps, tx_bps = _rate(rx - old[0], dt), _rate(tx - old[1], dt)
            if host_side[ifname]:
                s.net[ifname] = NetRate(guest_rx_bps=tx_bps, guest_tx_bps=rx_bps)
            else:
                s.net[ifname] = NetRate(guest_rx_bps=rx_bps, guest_tx_bps=tx_bps)

    # -- restarts ------------------------------------------------------------------------

    def _track_restarts(self, vms: list[VM], now: float) -> None:
        units = {vm.name: vm.unit for vm in vms}
        self.crash_looping = self._loops.update(units, now, time.time_ns() // 1000)


# --- helpers ------------------------------------------------------------------------------


def _is_future(value: Any) -> bool:
    return isinstance(value, cf.Future)


def _failed_remote(reason: str) -> RemoteInfo:
    info = RemoteInfo(error=reason)
    info.fail_missing(reason)
    return info


def _failed_fs(vm: VM, reason: str) -> _FsResult:
    result = _FsResult()
    for share in vm.shares:
        if share.source:
            result.reasons[f"share_free_bytes:{share.tag}"] = reason
    if vm.volumes:
        result.reasons["volume_open"] = reason
    return result


def _counts_host_side(kind: str | None, declared: str) -> bool:
    """Do the link's counters look at the guest from the host's end?

    A tap (kernel kind "tun") is the host's end of a pipe: what the hypervisor writes into it
    (the guest sent) is the tap's rx, what the host sends the guest is its tx. A macvtap is
    the guest's own port on the lower link: frames for the guest are its rx (counted as the
    lower device hands them over), the guest's frames its tx. The kernel's kind decides; the
    runner's declared type when the kernel does not say."""
    if kind:
        return kind == "tun"
    return declared != "macvtap"


def _netns_id(who: str) -> str | None:
    try:
        st = os.stat(f"/proc/{who}/ns/net")
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def _socket_bound(socket_path: str, vm_dir: str, bound: set[str]) -> bool:
    """Is SOCKET_PATH among the bound unix socket paths? virtiofsd may have bound it by a
    path relative to the VM's state dir (its working directory)."""
    if socket_path in bound:
        return True
    target = os.path.normpath(socket_path)
    for path in bound:
        if not path.startswith("/") and os.path.normpath(os.path.join(vm_dir, path)) == target:
            return True
    return False
