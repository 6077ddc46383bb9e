"""Process fallbacks, measured on real child processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tui.host.model import VM, UnitState
from tui.host.sampling import Sampler, process
from tui.host.settings import HostSettings


def _spawn(argv: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)


def _end(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.kill(proc.pid, signal.SIGKILL)
    proc.wait(5)


@pytest.fixture
def busy() -> Iterator[subprocess.Popen[bytes]]:
    # Named like a qemu vCPU thread (PR_SET_NAME) so the sampler also reports it per vCPU.
    code = "import ctypes; ctypes.CDLL(None).prctl(15, b'CPU 0/KVM', 0, 0, 0)\nwhile True: pass"
    proc = _spawn([sys.executable, "-c", code])
    yield proc
    _end(proc)


@pytest.fixture
def idle() -> Iterator[subprocess.Popen[bytes]]:
    proc = _spawn(["sleep", "60"])
    yield proc
    _end(proc)


def _vm(name: str, pid: int, **kw: object) -> VM:
    unit = UnitState(name=f"microvm@{name}.service", main_pid=pid, restarts=0)
    return VM(name=name, path=Path("/nonexistent"), unit=unit, **kw)  # type: ignore[arg-type]


def _cpu_ns(pid: int) -> int:
    value = process.read_cpu_ns(pid).value
    assert value is not None
    return value


def test_busy_child_is_one_core(busy: subprocess.Popen[bytes]) -> None:
    # kvmtool: no control socket, no cgroup -> the process fallback is all there is.
    vm = _vm("busy", busy.pid, hypervisor="kvmtool", vcpu=1)
    comm = Path(f"/proc/{busy.pid}/comm")
    deadline = time.monotonic() + 5
    while comm.read_text().strip() != "CPU 0/KVM" and time.monotonic() < deadline:
        time.sleep(0.01)  # poll: the child names itself once Python has started
    with Sampler() as sampler:
        first = sampler.sample([vm], HostSettings())["busy"]
        assert first.reasons["cpu_pct_of_vcpus"] == "needs a second sample"
        start = _cpu_ns(busy.pid)
        deadline = time.monotonic() + 5
        # Poll the child's real CPU time until it has run 0.4 s (or give up).
        while _cpu_ns(busy.pid) - start < 400_000_000 and time.monotonic() < deadline:
            time.sleep(0.02)
        second = sampler.sample([vm], HostSettings())["busy"]
    assert second.cpu_source is not None and second.cpu_source.startswith("process schedstat")
    cpu = second.cpu_pct_of_vcpus
    assert cpu is not None
    ncpu = os.cpu_count() or 1
    assert second.cpu_pct_of_host == pytest.approx(cpu / ncpu)
    # The vCPU thread (found by its name) is always runnable: on a CPU (busy) or waiting for
    # one (steal). Together that is one core, however loaded this 2-core machine is.
    [vcpu] = second.vcpus
    assert vcpu.thread_id == busy.pid and vcpu.busy_pct is not None and vcpu.steal_pct is not None
    assert 60 <= vcpu.busy_pct + vcpu.steal_pct <= 130, second
    assert abs(vcpu.busy_pct - cpu) < 15
    if vcpu.steal_pct < 15:  # it had a core to itself: ~100% of one core
        assert 60 <= cpu <= 130, second
    else:  # other work competed for the cores (e.g. other test runs)
        assert cpu >= 25, second
    assert second.mem_host_bytes and second.mem_host_bytes > 1 << 20
    assert second.process_name == "CPU 0/KVM"
    assert second.uptime_s is not None and 0 <= second.uptime_s < 60
    assert second.reasons["qmp_status"] == "kvmtool has no control socket"
    assert "vcpus" not in second.reasons


def test_idle_child_is_near_zero(idle: subprocess.Popen[bytes]) -> None:
    vm = _vm("idle", idle.pid, hypervisor="kvmtool", vcpu=1)
    with Sampler() as sampler:
        sampler.sample([vm], HostSettings())
        time.sleep(0.3)  # the measuring window (nothing to wait for: the child sleeps)
        sample = sampler.sample([vm], HostSettings())["idle"]
    assert sample.cpu_pct_of_vcpus is not None and sample.cpu_pct_of_vcpus < 5


def test_thread_times_and_memory_of_ourselves() -> None:
    pid = os.getpid()
    times = process.read_thread_times(pid)
    assert times.value and pid in times.value
    assert times.value[pid].run_ns > 0
    mem = process.read_memory_bytes(pid)
    assert mem.value and mem.value > 1 << 20


def test_status_parsing() -> None:
    text = (
        "Name:\tqemu\nVmRSS:\t  9000 kB\nRssAnon:\t  1000 kB\n"
        "RssFile:\t 8000 kB\nRssShmem:\t 24 kB\n"
    )
    assert process.parse_status_memory(text) == (1000 + 24) * 1024
    assert process.parse_status_memory("Name:\tkthreadd\n") is None


def test_gone_process() -> None:
    proc = _spawn(["true"])
    proc.wait(5)
    assert process.read_cpu_ns(proc.pid).reason == f"process {proc.pid} is gone"
    assert process.read_memory_bytes(proc.pid).reason == f"process {proc.pid} is gone"
    assert process.read_process_info(proc.pid).reason == f"process {proc.pid} is gone"
    assert process.open_files(proc.pid).reason == f"process {proc.pid} is gone"


@pytest.mark.parametrize(
    ("comm", "index"),
    [
        ("CPU 0/KVM", 0),
        ("CPU 3/TCG", 3),
        ("vcpu1", 1),
        ("fc_vcpu 2", 2),
        ("kvm-vcpu-3", 3),
        ("qemu-system-x86", None),
    ],
)
def test_vcpu_thread_names(comm: str, index: int | None) -> None:
    assert process.vcpu_index_from_comm(comm) == index


def test_open_files(tmp_path: Path) -> None:
    held = tmp_path / "var.img"
    held.write_bytes(b"\0" * 4096)
    other = tmp_path / "other.img"
    other.write_bytes(b"")
    link = tmp_path / "link.img"
    link.symlink_to(held)
    with held.open("rb"):
        result = process.files_open(os.getpid(), [str(held), str(other), str(link)])
    assert result.value == {str(held): True, str(other): False, str(link): True}
