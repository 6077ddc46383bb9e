"""The QMP client against real qemu processes (TCG, paused, no kernel) and QMP doubles."""

from __future__ import annotations

import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.qemu import QEMU, Qemu, read_greeting, start_qemu
from tests.fakes.qmp import FakeQMPServer, HungQMPListener
from tui.host.sampling.qmp import QMPCommandError, QMPSession, qmp_execute, query_qemu

pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")


@pytest.fixture(scope="module")
def sockdir() -> Iterator[str]:
    # Short: qemu cannot bind a unix socket path longer than 107 bytes.
    with tempfile.TemporaryDirectory(prefix="mvs-", dir="/tmp") as tmp:
        yield tmp


@pytest.fixture(scope="module")
def qemu(sockdir: str) -> Iterator[Qemu]:
    vm = start_qemu(os.path.join(sockdir, "balloon.sock"))
    yield vm
    vm.stop()


@pytest.fixture(scope="module")
def qemu_no_balloon(sockdir: str) -> Iterator[Qemu]:
    vm = start_qemu(os.path.join(sockdir, "plain.sock"), balloon=False)
    yield vm
    vm.stop()


def test_real_qemu_queries(qemu: Qemu) -> None:
    info = query_qemu(qemu.socket_path, guest_stats_interval=2)
    assert info.error is None, info
    assert info.status in ("paused", "prelaunch")
    assert info.vcpu_count == 1 and info.vcpu_threads
    tasks = set(os.listdir(f"/proc/{qemu.pid}/task"))
    for vcpu in info.vcpu_threads:
        assert str(vcpu.thread_id) in tasks
    assert info.mem_configured_bytes == 64 << 20
    assert info.mem_guest_visible_bytes == 64 << 20  # balloon "actual": nothing inflated
    # No guest kernel runs, so the balloon has no statistics: reason, not a number.
    assert info.mem_guest_used_bytes is None
    assert info.reasons["mem_guest_used_bytes"] == (
        "the guest has not reported balloon statistics yet"
    )
    assert info.block == {}
    assert info.elapsed_s < 1.0
    # guest-stats polling was switched on, once.
    with QMPSession(qemu.socket_path) as qmp:
        interval = qmp.execute(
            "qom-get",
            {"path": "/machine/peripheral/balloon0", "property": "guest-stats-polling-interval"},
        )
    assert interval == 2


def test_never_holds_the_socket(qemu: Qemu) -> None:
    query_qemu(qemu.socket_path)
    start = time.monotonic()
    greeting = read_greeting(qemu.socket_path, timeout=1.0)
    assert greeting is not None and "QMP" in greeting
    assert time.monotonic() - start < 1.0
    # And again after an error reply inside the session.
    with pytest.raises(QMPCommandError) as err:
        qmp_execute(qemu.socket_path, "no-such-command")
    assert err.value.error_class == "CommandNotFound"
    assert read_greeting(qemu.socket_path, timeout=1.0) is not None


def test_busy_monitor_times_out_within_the_deadline(qemu: Qemu) -> None:
    # qemu serves one QMP client at a time: while another holds the socket we get no greeting.
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    holder.connect(qemu.socket_path)
    try:
        holder.settimeout(1.0)
        assert b"QMP" in holder.recv(4096)
        start = time.monotonic()
        info = query_qemu(qemu.socket_path, timeout=0.5)
        elapsed = time.monotonic() - start
    finally:
        holder.close()
    assert info.error is not None and info.error.startswith("QMP timeout after 0.5 s")
    assert info.reasons["status"] == info.error
    assert elapsed < 0.7
    assert query_qemu(qemu.socket_path).status in ("paused", "prelaunch")  # free again


def test_no_balloon_device(qemu_no_balloon: Qemu) -> None:
    info = query_qemu(qemu_no_balloon.socket_path, guest_stats_interval=2)
    assert info.error is None
    assert info.mem_configured_bytes == 64 << 20
    assert info.mem_guest_visible_bytes is None
    assert info.reasons["mem_guest_visible_bytes"] == "no balloon device"
    assert info.reasons["mem_guest_used_bytes"] == "no balloon device"


def test_hung_listener_times_out(tmp_path: Path) -> None:
    hung = HungQMPListener(str(tmp_path / "hung.sock"))
    try:
        start = time.monotonic()
        info = query_qemu(hung.path, timeout=1.0)
        elapsed = time.monotonic() - start
    finally:
        hung.close()
    assert info.error is not None and info.error.startswith("QMP timeout after 1.0 s")
    assert 0.9 <= elapsed < 1.2


def test_socket_missing_and_refused(tmp_path: Path) -> None:
    assert query_qemu(str(tmp_path / "nothing.sock")).error == "socket missing"
    stale = tmp_path / "stale.sock"
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(stale))
    s.close()  # bound, never listened: what a dead qemu leaves behind
    info = query_qemu(str(stale))
    assert info.error is not None and info.error.startswith("connection refused")
    plain = tmp_path / "file.sock"
    plain.write_text("")
    assert query_qemu(str(plain)).error is not None


def test_fake_server_events_are_skipped_and_blockstats_read(tmp_path: Path) -> None:
    server = FakeQMPServer(str(tmp_path / "fake.sock"), thread_id=os.getpid())
    server.replies["query-blockstats"][0]["stats"].update(rd_bytes=4096, wr_bytes=512)
    server.replies["qom-get"] = {
        "stats": {
            "stat-total-memory": 1000 << 20,
            "stat-available-memory": 600 << 20,
            "stat-free-memory": 500 << 20,
        },
        "last-update": 1700000000,
    }
    try:
        info = query_qemu(server.path)
    finally:
        server.close()
    assert info.error is None, info
    assert info.status == "running"
    assert info.block is not None and info.block["vd0"].rd_bytes == 4096
    assert info.block["vd0"].wr_bytes == 512
    assert info.mem_guest_used_bytes == 400 << 20


def test_long_socket_path(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    path = str(deep / "x.sock")
    assert len(path) > 108
    # Bind through a relative path (the kernel limit applies to the name we pass).
    cwd = os.getcwd()
    os.chdir(deep)
    try:
        server = FakeQMPServer("x.sock")
    finally:
        os.chdir(cwd)
    try:
        assert query_qemu(path).status == "running"
    finally:
        server.close()
        if os.path.exists(path):
            os.unlink(path)


def test_missing_queries_become_reasons(tmp_path: Path) -> None:
    # A QMP server without some queries (older qemu, stratovirt): the session goes on.
    server = FakeQMPServer(str(tmp_path / "old.sock"))
    del server.replies["query-memory-size-summary"]
    server.errors["query-balloon"] = {"class": "GenericError", "desc": "weird"}
    try:
        info = query_qemu(server.path)
    finally:
        server.close()
    assert info.error is None
    assert info.status == "running" and info.block is not None
    assert info.mem_configured_bytes is None
    assert info.reasons["mem_configured_bytes"].startswith("query-memory-size-summary:")
    assert info.reasons["mem_guest_visible_bytes"] == "query-balloon: weird"
