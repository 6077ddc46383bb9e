"""The Sampler: isolation of hung VMs, rates, shares, restarts, history."""

from __future__ import annotations

import os
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.fakes.qemu import QEMU, Qemu, start_qemu
from tests.fakes.qmp import FakeQMPServer, HungQMPListener
from tui.host.model import VM, Interface, Share, UnitState, Volume
from tui.host.sampling import Sampler, Timeline, VMSample
from tui.host.sampling import local as local_mod
from tui.host.sampling.local import socket_bound
from tui.host.settings import HostSettings

SETTINGS = HostSettings()
needs_qemu = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")


@pytest.fixture(scope="module")
def sockdir() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="mvs-", dir="/tmp") as tmp:
        yield tmp


@pytest.fixture(scope="module")
def qemu(sockdir: str) -> Iterator[Qemu]:
    vm = start_qemu(os.path.join(sockdir, "real.sock"))
    yield vm
    vm.stop()


def make_vm(
    name: str,
    pid: int | None,
    *,
    hypervisor: str | None = "qemu",
    socket_path: str | None = None,
    restarts: int | None = 0,
    **kw: object,
) -> VM:
    unit = UnitState(name=f"microvm@{name}.service", main_pid=pid, restarts=restarts)
    return VM(
        name=name,
        path=Path("/nonexistent") / name,
        hypervisor=hypervisor,
        socket=socket_path,
        unit=unit,
        **kw,  # type: ignore[arg-type]
    )


@needs_qemu
def test_hung_vm_does_not_delay_the_real_one(tmp_path: Path, qemu: Qemu) -> None:
    hung = HungQMPListener(str(tmp_path / "hung.sock"))
    vms = [
        make_vm("hung", os.getpid(), socket_path=hung.path),
        make_vm("real", qemu.pid, socket_path=qemu.socket_path, vcpu=1, mem_mib=64),
    ]
    try:
        with Sampler(timeout=1.0) as sampler:
            start = time.monotonic()
            result = sampler.sample(vms, SETTINGS)
            elapsed = time.monotonic() - start
    finally:
        hung.close()
    assert elapsed < 1.5
    real = result["real"]
    assert real.qmp_status in ("paused", "prelaunch")
    assert real.mem_configured_mib == 64 and real.mem_guest_visible_mib == 64
    assert real.vcpus and real.vcpus[0].thread_id in {
        int(t) for t in os.listdir(f"/proc/{qemu.pid}/task")
    }
    assert real.remote_ms is not None and real.remote_ms < 500
    bad = result["hung"]
    assert bad.qmp_status is None
    assert bad.reasons["qmp_status"].startswith("QMP timeout after 1.0 s")
    assert bad.reasons["mem_guest_visible_mib"].startswith("QMP timeout after 1.0 s")
    # Local figures of the hung VM still come in.
    assert bad.mem_host_bytes is not None and bad.uptime_s is not None


@needs_qemu
def test_a_crowd_of_hung_vms_cannot_starve_a_healthy_one(tmp_path: Path, qemu: Qemu) -> None:
    # More hung VMs than workers: the first poll cannot reach the healthy VM listed last, the
    # second serves it before the ones that timed out.
    listeners = [HungQMPListener(str(tmp_path / f"h{i}.sock")) for i in range(3)]
    vms = [make_vm(f"h{i}", os.getpid(), socket_path=h.path) for i, h in enumerate(listeners)]
    vms.append(make_vm("real", qemu.pid, socket_path=qemu.socket_path))
    try:
        with Sampler(timeout=0.4, max_workers=2) as sampler:
            for _ in range(2):
                start = time.monotonic()
                result = sampler.sample(vms, SETTINGS)
                assert time.monotonic() - start < 0.4 + 0.2 + 0.2  # timeout + grace + slack
    finally:
        for h in listeners:
            h.close()
    # The second poll serves the VMs that answered before first.
    assert result["real"].qmp_status in ("paused", "prelaunch")
    for i in range(3):
        assert result[f"h{i}"].qmp_status is None and result[f"h{i}"].reasons["qmp_status"]


def test_block_rates_and_first_sample_reasons(tmp_path: Path) -> None:
    server = FakeQMPServer(str(tmp_path / "fake.sock"), thread_id=os.getpid())
    vm = make_vm("fake", os.getpid(), socket_path=server.path)
    try:
        with Sampler() as sampler:
            first = sampler.sample([vm], SETTINGS)["fake"]
            assert first.reasons["block"] == "needs a second sample"
            assert first.reasons["cpu_pct_of_vcpus"] == "needs a second sample"
            assert first.qmp_status == "running"
            server.replies["query-blockstats"][0]["stats"].update(rd_bytes=1 << 20, wr_bytes=0)
            start = time.monotonic()
            second = sampler.sample([vm], SETTINGS)["fake"]
            outer = time.monotonic() - start
    finally:
        server.close()
    assert "block" not in second.reasons
    rate = second.block["vd0"]
    assert rate.write_bps == 0
    # 1 MiB over a window no longer than the two polls took.
    assert rate.read_bps >= (1 << 20) / (outer + 1.0)
    assert second.cpu_pct_of_vcpus is not None
    assert [v.index for v in second.vcpus] == [0]
    assert second.vcpus[0].thread_id == os.getpid()
    assert second.vcpus[0].busy_pct is not None and second.vcpus[0].steal_pct is not None


def test_network_rates_from_links() -> None:
    vm = make_vm(
        "net",
        os.getpid(),
        hypervisor="kvmtool",
        interfaces=[Interface(id="lo", type="tap"), Interface(id="vm-absent", type="tap")],
    )
    receiver = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    receiver.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        with Sampler() as sampler:
            first = sampler.sample([vm], SETTINGS)["net"]
            assert first.reasons["net:lo"] == "needs a second sample"
            for _ in range(50):
                sender.sendto(b"x" * 1000, receiver.getsockname())
            second = sampler.sample([vm], SETTINGS)["net"]
    finally:
        sender.close()
        receiver.close()
    assert second.net["lo"].guest_rx_bps > 0 and second.net["lo"].guest_tx_bps > 0
    assert second.reasons["net:vm-absent"] == "interface not found"


def test_shares_virtiofsd_and_volumes(tmp_path: Path) -> None:
    live_sock = tmp_path / "web-virtiofs-home.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(live_sock))
    listener.listen(1)
    image = tmp_path / "var.img"
    image.write_bytes(b"\0" * 4096)
    unused = tmp_path / "unused.img"
    unused.write_bytes(b"")
    vm = make_vm(
        "web",
        os.getpid(),
        hypervisor="kvmtool",
        shares=[
            Share(tag="home", proto="virtiofs", source=str(tmp_path), socket=str(live_sock)),
            Share(tag="dead", proto="virtiofs", source=str(tmp_path), socket=str(tmp_path / "x")),
            Share(tag="ro-store", proto="9p", source=str(tmp_path / "missing")),
        ],
        volumes=[Volume(image=str(image)), Volume(image=str(unused))],
    )
    try:
        with Sampler() as sampler, image.open("rb"):
            asked = sampler.sample([vm], SETTINGS, open_files_for={"web"})["web"]
            not_asked = sampler.sample([vm], SETTINGS)["web"]
    finally:
        listener.close()
    assert asked.share_free_bytes["home"] > 0 and asked.share_total_bytes["home"] > 0
    assert asked.reasons["share_free_bytes:ro-store"].startswith("cannot stat")
    assert asked.virtiofsd_alive == {"home": True, "dead": False}
    assert asked.volume_open == {str(image): True, str(unused): False}
    assert not_asked.volume_open is None


def test_virtiofsd_socket_bound_by_a_relative_path() -> None:
    bound = {"web-virtiofs-home.sock", "/run/other.sock"}
    assert socket_bound("/var/lib/microvms/web/web-virtiofs-home.sock",
                                     "/var/lib/microvms/web", bound)  # fmt: skip
    assert not socket_bound("/var/lib/microvms/db/web-virtiofs-home.sock",
                                         "/var/lib/microvms/web", bound)  # fmt: skip


def test_a_hung_share_does_not_block_the_poll(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_statvfs = os.statvfs

    def stuck_statvfs(path: str) -> os.statvfs_result:
        if path.endswith("nfs"):
            release.wait(10)  # a dead NFS server
        return real_statvfs(path)

    monkeypatch.setattr(local_mod.os, "statvfs", stuck_statvfs)
    server = FakeQMPServer(str(tmp_path / "fake.sock"))
    vm = make_vm(
        "nfs",
        os.getpid(),
        socket_path=server.path,
        shares=[Share(tag="data", proto="9p", source=str(tmp_path / "nfs"))],
    )
    try:
        with Sampler(timeout=0.3) as sampler:
            start = time.monotonic()
            first = sampler.sample([vm], SETTINGS)["nfs"]
            second = sampler.sample([vm], SETTINGS)["nfs"]
            elapsed = time.monotonic() - start
            release.set()
    finally:
        server.close()
    assert elapsed < 2 * (0.3 + 0.2) + 0.3
    assert first.qmp_status == "running" and second.qmp_status == "running"
    assert first.reasons["share_free_bytes:data"] == "share check did not finish in time"
    assert second.reasons["share_free_bytes:data"] == (
        "the previous poll's query is still running (hung?)"
    )


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_crash_looping_needs_three_restarts_in_five_minutes() -> None:
    """One restart is not a crash loop (it used to flag a VM for a minute); three within the
    window are, whatever the unit's state of the moment."""
    clock = FakeClock()
    sampler = Sampler(clock=clock)
    try:
        looping = make_vm("loop", None, hypervisor="kvmtool", restarts=3)
        steady = make_vm("steady", os.getpid(), hypervisor="kvmtool", restarts=1)
        for vm in (looping, steady):
            vm.unit.active = "active"  # type: ignore[union-attr]
        sampler.sample([looping, steady], SETTINGS)
        assert sampler.timeline.crash_looping == set()
        clock.now += 6
        steady.unit.restarts = 2  # type: ignore[union-attr]  # one restart: not a loop
        looping.unit.restarts = 5  # type: ignore[union-attr]  # two
        sampler.sample([looping, steady], SETTINGS)
        assert sampler.timeline.crash_looping == set()
        clock.now += 6
        looping.unit.restarts = 6  # type: ignore[union-attr]  # the third within the window
        looping.unit.active, looping.unit.sub = "activating", "auto-restart"  # type: ignore[union-attr]
        result = sampler.sample([looping, steady], SETTINGS)
        assert sampler.timeline.crash_looping == {"loop"}
        assert "loop" not in result  # not running: flagged, not sampled
        clock.now += 300  # no restart since: the window has moved past all three
        sampler.sample([looping, steady], SETTINGS)
        assert sampler.timeline.crash_looping == set()
    finally:
        sampler.close()


def test_only_running_vms_are_sampled_and_pid_change_resets() -> None:
    stopped = make_vm("stopped", None, hypervisor="kvmtool")
    running = make_vm("running", os.getpid(), hypervisor="kvmtool", vcpu=1)
    with Sampler() as sampler:
        result = sampler.sample([stopped, running], SETTINGS)
        assert set(result) == {"running"}
        assert sampler.host is not None and sampler.host.mem_total_bytes > 0
        assert sampler.host.cpu_pct is None  # first poll
        # Host CPU totals move in clock ticks (10 ms): poll until one has passed.
        ticks = sum(psutil.cpu_times())
        deadline = time.monotonic() + 2
        while sum(psutil.cpu_times()) == ticks and time.monotonic() < deadline:
            time.sleep(0.005)
        result = sampler.sample([stopped, running], SETTINGS)
        assert result["running"].cpu_pct_of_vcpus is not None
        assert sampler.host.cpu_pct is not None and 0 <= sampler.host.cpu_pct <= 100
        running.unit.main_pid = os.getppid()  # type: ignore[union-attr]  # "restarted"
        result = sampler.sample([stopped, running], SETTINGS)
        assert result["running"].reasons["cpu_pct_of_vcpus"] == "needs a second sample"
        assert len(sampler.timeline.history["running"]) == 3
        sampler.sample([stopped], SETTINGS)
        assert "running" not in sampler.timeline.history


def test_timeline_keeps_the_last_points_and_forgets_vms_gone() -> None:
    timeline = Timeline(history_len=3)
    for i in range(5):
        s = VMSample(name="a", pid=1, hypervisor=None, t=float(i))
        s.cpu_pct_of_vcpus, s.mem_host_bytes = float(i * 10), i * 100
        timeline.record(["a", "b"], {"a": s})
    points = timeline.points()["a"]
    assert [p.cpu_pct for p in points] == [20.0, 30.0, 40.0]
    assert [p.mem_bytes for p in points[-2:]] == [300, 400] and points[-1].t == 4.0
    timeline.record(["a"], {"a": VMSample(name="a", pid=1, hypervisor=None, t=5.0)})  # a gap
    assert timeline.points()["a"][-1].cpu_pct is None and len(timeline.points()["a"]) == 3
    timeline.record(["b"], {})
    assert timeline.points() == {}
