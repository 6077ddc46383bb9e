"""The reads the ``Sampler`` makes for each running VM in the caller's thread, before it
starts the pool: cheap, bounded /proc and /sys reads (CPU time, thread times, host memory),
and the bound unix sockets that tell whether a share's virtiofsd is alive. Also the share and
volume checks that may block (``read_fs``), which the pool runs."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

from tui.host.model import VM
from tui.host.sampling import cgroup, process
from tui.host.sampling.reading import Reading
from tui.host.sampling.samples import Reason
from tui.host.unixsock import bound_unix_paths


@dataclass
class LocalReading:
    """What the caller's thread read for one VM (fast /proc and /sys reads)."""

    cpu: Reading[int]
    cpu_t: float
    threads: Reading[dict[int, process.ThreadTimes]]
    mem: Reading[int]
    cgroup_cpu_reason: str | None = None
    cgroup_mem_reason: str | None = None


def read_local(
    vm: VM, layout: cgroup.CgroupLayout | None, clock: Callable[[], float]
) -> LocalReading:
    """CPU time and host memory of a running VM: from its unit's cgroup, else from its
    process (the reason the cgroup could not be read is kept)."""
    assert vm.unit is not None and vm.unit.main_pid
    pid = vm.unit.main_pid
    cg = vm.unit.control_group
    threads = process.read_thread_times(pid)
    cpu = cgroup.read_cpu_usage_ns(cg, layout)
    cpu_t = clock()
    cg_cpu_reason = None
    if not cpu.ok:
        cg_cpu_reason = cpu.reason
        if threads.value:
            total = sum(t.run_ns for t in threads.value.values())
            cpu = Reading.of(total, "process schedstat")
        else:
            cpu = Reading.fail(threads.reason or cpu.reason or "unknown")
    mem = cgroup.read_memory_bytes(cg, layout, pid)
    cg_mem_reason = None
    if not mem.ok:
        cg_mem_reason = mem.reason
        fallback = process.read_memory_bytes(pid)
        mem = fallback if fallback.ok else Reading.fail(fallback.reason or mem.reason or "?")
    return LocalReading(cpu, cpu_t, threads, mem, cg_cpu_reason, cg_mem_reason)


def unix_paths(running: list[VM]) -> dict[int, set[str] | str]:
    """Bound unix socket paths per VM pid (or why they could not be read), read once per
    network namespace. Only for VMs with a virtiofs share."""
    wanted = [vm for vm in running if any(s.proto == "virtiofs" for s in vm.shares)]
    by_ns: dict[str, set[str] | str] = {}
    per_pid: dict[int, set[str] | str] = {}
    own_ns = netns_id("self")
    for vm in wanted:
        pid = vm.unit.main_pid  # type: ignore[union-attr]
        paths: set[str] = set()
        errors: list[str] = []
        # virtiofsd may share the hypervisor's namespace or ours: look in both.
        for who in dict.fromkeys(["self", str(pid)]):
            ns = netns_id(who) or who
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


def netns_id(who: str) -> str | None:
    try:
        st = os.stat(f"/proc/{who}/ns/net")
    except OSError:
        return None
    return f"{st.st_dev}:{st.st_ino}"


def socket_bound(socket_path: str, vm_dir: str, bound: set[str]) -> bool:
    """Is SOCKET_PATH among the bound unix socket paths? virtiofsd may have bound it by a
    path relative to the VM's state dir (its working directory)."""
    if socket_path in bound:
        return True
    target = os.path.normpath(socket_path)
    for path in bound:
        if not path.startswith("/") and os.path.normpath(os.path.join(vm_dir, path)) == target:
            return True
    return False


@dataclass
class FsResult:
    free: dict[str, int] = field(default_factory=dict)
    total: dict[str, int] = field(default_factory=dict)
    volume_open: dict[str, bool] | None = None
    reasons: dict[str, Reason] = field(default_factory=dict)


def read_fs(vm: VM, pid: int, check_open: bool) -> FsResult:
    """Free space of the VM's share sources (statvfs: may hang on a dead NFS server, so the
    pool runs it) and, when CHECK_OPEN, which volume images the hypervisor holds open."""
    result = FsResult()
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


def failed_fs(vm: VM, reason: Reason) -> FsResult:
    """The share and volume checks of VM could not be made: REASON for each."""
    result = FsResult()
    for share in vm.shares:
        if share.source:
            result.reasons[f"share_free_bytes:{share.tag}"] = reason
    if vm.volumes:
        result.reasons["volume_open"] = reason
    return result
