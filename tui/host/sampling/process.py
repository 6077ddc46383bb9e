"""Fallback readings from the hypervisor process itself (the unit's MainPID).

Used when the unit's cgroup cannot be read, and for what only the process knows: per-thread
run and wait time (per-vCPU busy and steal), uptime, name, and which files it holds open.
Everything is read from /proc with plain file reads; psutil only for the process start time
and name (cached by the caller, they do not change).
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

import psutil

from tui.host.sampling.reading import Reading

PROC = "/proc"


@dataclass(frozen=True)
class ThreadTimes:
    run_ns: int  # time on a CPU (schedstat field 1)
    wait_ns: int  # time runnable but waiting for a CPU (field 2): steal, as the guest sees it


@dataclass(frozen=True)
class ProcessInfo:
    pid: int
    name: str
    create_time: float  # seconds since the epoch

    @property
    def uptime_s(self) -> float:
        return max(0.0, time.time() - self.create_time)


def _gone(pid: int) -> str:
    return f"process {pid} is gone"


def read_thread_times(pid: int, tids: list[int] | None = None) -> Reading[dict[int, ThreadTimes]]:
    """schedstat of the process's threads (all of them, or only TIDS)."""
    task_dir = f"{PROC}/{pid}/task"
    if tids is None:
        try:
            names = os.listdir(task_dir)
        except FileNotFoundError:
            return Reading.fail(_gone(pid))
        except PermissionError:
            return Reading.fail(f"permission denied: {task_dir}")
        tids = [int(n) for n in names if n.isdigit()]
    times: dict[int, ThreadTimes] = {}
    for tid in tids:
        try:
            with open(f"{task_dir}/{tid}/schedstat", "rb") as fh:
                fields = fh.read().split()
        except FileNotFoundError:
            continue  # the thread ended between listdir and open
        except PermissionError:
            return Reading.fail(f"permission denied: {task_dir}/{tid}/schedstat")
        except OSError as exc:
            return Reading.fail(f"cannot read {task_dir}/{tid}/schedstat: {exc.strerror}")
        if len(fields) >= 2:
            times[tid] = ThreadTimes(int(fields[0]), int(fields[1]))
    if not times and not os.path.isdir(task_dir):
        return Reading.fail(_gone(pid))
    return Reading.of(times, "schedstat")


def read_cpu_ns(pid: int) -> Reading[int]:
    """CPU time of the live threads of PID (sum of /proc/PID/task/*/schedstat field 1).

    Time of threads that already ended is not in the sum, so the total can step down when a
    worker thread exits; the sampler treats a negative delta as "no rate this time".
    """
    threads = read_thread_times(pid)
    if threads.value is None:
        return Reading.fail(threads.reason or _gone(pid))
    if not threads.value:
        return Reading.fail(_gone(pid))
    return Reading.of(sum(t.run_ns for t in threads.value.values()), "process schedstat")


def parse_status_memory(text: str) -> int | None:
    """RssAnon + RssShmem, in bytes, from /proc/PID/status text."""
    kib: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in ("RssAnon", "RssShmem"):
            parts = rest.split()
            if parts:
                kib[key] = int(parts[0])
    if "RssAnon" not in kib:
        return None
    return (kib["RssAnon"] + kib.get("RssShmem", 0)) * 1024


def read_memory_bytes(pid: int) -> Reading[int]:
    path = f"{PROC}/{pid}/status"
    try:
        with open(path, encoding="ascii", errors="replace") as fh:
            text = fh.read()
    except FileNotFoundError:
        return Reading.fail(_gone(pid))
    except PermissionError:
        return Reading.fail(f"permission denied: {path}")
    except OSError as exc:
        return Reading.fail(f"cannot read {path}: {exc.strerror}")
    value = parse_status_memory(text)
    if value is None:
        return Reading.fail(f"no RssAnon in {path} (a kernel thread?)")
    return Reading.of(value, "process RssAnon+RssShmem")


def read_process_info(pid: int) -> Reading[ProcessInfo]:
    try:
        proc = psutil.Process(pid)
        with proc.oneshot():
            info = ProcessInfo(pid=pid, name=proc.name(), create_time=proc.create_time())
    except psutil.NoSuchProcess:
        return Reading.fail(_gone(pid))
    except psutil.AccessDenied:
        return Reading.fail(f"permission denied reading process {pid}")
    return Reading.of(info, "psutil")


_QEMU_VCPU = re.compile(r"^CPU (\d+)/\w+$")  # qemu: "CPU 0/KVM", "CPU 1/TCG"
_OTHER_VCPU = re.compile(r"vcpu[ _-]?(\d+)$", re.IGNORECASE)  # "vcpu0", "fc_vcpu 0", ...


def vcpu_index_from_comm(comm: str) -> int | None:
    for pattern in (_QEMU_VCPU, _OTHER_VCPU):
        match = pattern.search(comm.strip())
        if match:
            return int(match.group(1))
    return None


def vcpu_threads_by_name(pid: int) -> dict[int, int]:
    """vCPU index -> thread id, recognised by thread name; {} when none is recognised.

    For when the control socket cannot tell (QMP busy, or a hypervisor without a thread-id
    query): qemu names its vCPU threads "CPU N/KVM", cloud-hypervisor "vcpuN", firecracker
    "fc_vcpu N", kvmtool "kvm-vcpu-N".
    """
    task_dir = f"{PROC}/{pid}/task"
    found: dict[int, int] = {}
    try:
        names = os.listdir(task_dir)
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"{task_dir}/{name}/comm", encoding="utf-8", errors="replace") as fh:
                comm = fh.read()
        except OSError:
            continue
        index = vcpu_index_from_comm(comm)
        if index is not None:
            found.setdefault(index, int(name))
    return found


def open_files(pid: int) -> Reading[set[str]]:
    """Targets of /proc/PID/fd/* (paths, plus things like "socket:[123]"). Not cheap for a
    process with many descriptors: call it only when someone looks."""
    fd_dir = f"{PROC}/{pid}/fd"
    try:
        fds = os.listdir(fd_dir)
    except FileNotFoundError:
        return Reading.fail(_gone(pid))
    except PermissionError:
        return Reading.fail(f"permission denied: {fd_dir}")
    targets: set[str] = set()
    for fd in fds:
        try:
            targets.add(os.readlink(f"{fd_dir}/{fd}"))
        except OSError:
            continue  # closed meanwhile
    return Reading.of(targets, "/proc/PID/fd")


def files_open(pid: int, paths: list[str]) -> Reading[dict[str, bool]]:
    """For each of PATHS: does process PID hold it open? Compared after resolving symlinks."""
    targets = open_files(pid)
    if targets.value is None:
        return Reading.fail(targets.reason or _gone(pid))
    result: dict[str, bool] = {}
    for path in paths:
        real = os.path.realpath(path)
        result[path] = real in targets.value or path in targets.value
    return Reading.of(result, targets.source)
