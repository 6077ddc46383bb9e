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

The pieces: ``samples`` (what the UI gets), ``local`` (the caller's thread's reads),
``assemble`` (one VM's sample from a poll's reads and what was kept of it), ``rates``
(figures from two readings), ``timeline`` (history and crash loops); this module schedules
the reads: the pool, its deadlines, the order of service.
"""

from __future__ import annotations

import concurrent.futures as cf
import inspect
import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from tui.host.crashloop import LOOP_WINDOW_S
from tui.host.hostloop import host_loop
from tui.host.links import Link, LinkReadError, LinkTable, read_links
from tui.host.model import VM
from tui.host.qmp import timeout_reason
from tui.host.sampling import cgroup
from tui.host.sampling.assemble import MIB, VMState, assemble, keep_sizes, sizes_due
from tui.host.sampling.crosvm import query_crosvm
from tui.host.sampling.host import HostCPU, HostSample, host_ncpu, sample_host
from tui.host.sampling.http_api import query_cloud_hypervisor, query_firecracker
from tui.host.sampling.local import (
    FsResult,
    failed_fs,
    read_fs,
    read_local,
    unix_paths,
)
from tui.host.sampling.qmp import query_qemu_async
from tui.host.sampling.reading import RemoteInfo
from tui.host.sampling.samples import Reason, VMSample
from tui.host.sampling.timeline import Timeline
from tui.host.settings import HostSettings

QMP_HYPERVISORS = ("qemu", "stratovirt")
LATE = object()  # what ``_result`` returns for a control socket query not done in time


class Sampler:
    """Keeps the previous raw counters per VM so each ``sample()`` can compute rates.

    ``timeout``: the per-VM deadline for its control socket (and the bound of a whole poll,
    plus ``grace``). ``remote_every``: ask the control socket of a VM that is not in focus
    every that many polls (its last good answer stands in between; a VM in focus, one that
    failed or is new is asked every poll). Above 1, a QMP VM not in focus is asked only what
    the table shows (its run state, and the sizes when due): its balloon, guest statistics
    and block counters are unknown (``Why.NOT_ASKED``) until it is in focus, and its block
    rates need two full answers at most ``2 * remote_every`` polls apart. What is read
    locally (CPU, host memory, network) is read every poll for every VM.
    ``guest_stats_interval``: seconds; the qemu balloon is told to poll guest statistics at
    this interval on first contact (0 = leave it alone).
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
        self._state: dict[str, VMState] = {}
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
        self.timeline.track_units(vms, now)
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
        remote: dict[str, cf.Future[RemoteInfo] | str] = {}
        reused: set[str] = set()  # VMs whose last answer stands this poll
        stats_requested: dict[str, bool] = {}
        sizes_requested: dict[str, bool] = {}
        fs: dict[str, cf.Future[FsResult] | str] = {}
        for vm in sorted(running, key=lambda v: self._priority.get(v.name, 1)):
            pid = vm.unit.main_pid  # type: ignore[union-attr]
            state = self._state.get(vm.name)
            if state is None or state.pid != pid:
                state = self._state[vm.name] = VMState(pid=pid)
            enable_stats = not state.guest_stats_enabled and self.guest_stats_interval > 0
            stats_requested[vm.name] = enable_stats
            sizes = sizes_requested[vm.name] = sizes_due(state, local[vm.name])
            full = self.remote_every == 1 or vm.name in focus
            if (
                state.remote is not None
                and vm.name not in focus
                and state.remote_age + 1 < self.remote_every
            ):
                state.remote_age += 1
                reused.add(vm.name)
            else:
                query = self._query_qmp if vm.hypervisor in QMP_HYPERVISORS else self._timed_query
                remote[vm.name] = self._submit(
                    vm.name, "remote", query, vm, deadline, enable_stats, sizes, full
                )
            check_open = vm.name in open_files_for and bool(vm.volumes)
            if vm.shares or check_open:
                fs[vm.name] = self._submit(vm.name, "fs", read_fs, vm, pid, check_open)
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

        def together(
            vm: VM, info: RemoteInfo, fs_result: FsResult | None, *, reused: bool = False
        ) -> VMSample:
            return assemble(
                vm,
                self._state[vm.name],
                now,
                local[vm.name],
                info,
                fs_result,
                links,
                links_reason,
                bound,
                links_t,
                ncpu=self.ncpu,
                clock=self.clock,
                reused=reused,
                block_window=2 * self.remote_every,
            )

        samples: dict[str, VMSample] = {}
        for vm in running:
            state = self._state[vm.name]
            fs_result = None
            if vm.name in fs:
                fs_value = self._result(fs[vm.name], "share check did not finish in time")
                fs_result = fs_value if isinstance(fs_value, FsResult) else failed_fs(vm, fs_value)
            remembered = state.remote if vm.name in reused else None
            if remembered is not None:
                samples[vm.name] = together(vm, remembered, fs_result, reused=True)
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
                keep_sizes(state, info, sizes_requested[vm.name])
            state.remote, state.remote_age = (info if info.error is None else None), 0
            samples[vm.name] = together(vm, info, fs_result)
        self.timeline.record([vm.name for vm in vms], samples)
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
        self, vm: VM, deadline: float, enable_stats: bool, sizes: bool = True, full: bool = True
    ) -> RemoteInfo:
        """A QMP session (qemu, stratovirt), on the host loop; marked ``timed_out`` as
        ``_timed_query`` marks the others. FULL: everything, else the state (and SIZES)."""
        timeout = self._remote_timeout(vm, deadline)
        if isinstance(timeout, RemoteInfo):
            return timeout
        started = self.clock()
        info = await query_qemu_async(
            vm.socket,
            timeout,
            guest_stats_interval=self.guest_stats_interval if enable_stats else None,
            sizes=sizes,
            full=full,
            pipeline=vm.hypervisor == "qemu",  # stratovirt's server: one command at a time
        )
        if info.error is not None and timeout > 0.05 and self.clock() - started >= timeout:
            info.timed_out = True
        return info

    def _timed_query(
        self, vm: VM, deadline: float, enable_stats: bool, sizes: bool = True, full: bool = True
    ) -> RemoteInfo:
        """``_query_remote``, marked ``timed_out`` when it failed after using all the time it
        had (a server that hangs), whatever words its reader found for that. (FULL: the HTTP
        APIs and crosvm answer everything in one request: always full.)"""
        started = self.clock()
        allowed = min(self.timeout, deadline - self.grace - started)
        info = self._query_remote(vm, deadline, enable_stats, sizes)
        if info.error is not None and allowed > 0.05 and self.clock() - started >= allowed:
            info.timed_out = True
        return info

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


# --- helpers ------------------------------------------------------------------------------


def _is_future(value: Any) -> bool:
    return isinstance(value, cf.Future)


def _failed_remote(reason: Reason) -> RemoteInfo:
    info = RemoteInfo(error=reason)
    info.fail_missing(reason)
    return info
