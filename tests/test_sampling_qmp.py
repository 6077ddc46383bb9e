"""The QMP client (qemu.qmp's QMPClient on the host loop) against real qemu processes (TCG,
paused, no kernel) and QMP doubles: hung, drip-feeding, flooding, huge and broken servers."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.qemu import QEMU, Qemu, read_greeting, start_qemu
from tests.fakes.qmp import FakeQMPServer, HungQMPListener, PushingQMPServer
from tui.host import qmp
from tui.host.hostloop import host_loop
from tui.host.qmp import (
    MAX_MESSAGE,
    MAX_SESSION_BYTES,
    MAX_SESSION_MESSAGES,
    QMPCommandError,
    QMPError,
    qmp_execute,
)
from tui.host.sampling.qmp import FULL_ONLY_FIELDS, query_qemu, query_qemu_async
from tui.host.sampling.reading import RemoteInfo
from tui.host.sampling.samples import Why

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
    interval = qmp_execute(
        qemu.socket_path,
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


# --- hostile servers: one deadline for the whole session, bounded messages --------------------

EVENT = json.dumps({"event": "NIC_RX_FILTER_CHANGED", "data": {}}).encode() + b"\r\n"


def timed_query(path: str, timeout: float, **kw: Any) -> tuple[RemoteInfo, float]:
    start = time.monotonic()
    info = query_qemu(path, timeout, **kw)
    return info, time.monotonic() - start


@pytest.mark.parametrize("pipeline", [False, True])
def test_an_event_every_half_second_does_not_keep_the_session_alive(
    tmp_path: Path, pipeline: bool
) -> None:
    # The deadline is the session's, not a read's: events keep coming, no reply ever does.
    server = PushingQMPServer(str(tmp_path / "drip.sock"), EVENT, every=0.5)
    try:
        info, elapsed = timed_query(server.path, 1.2, pipeline=pipeline)
    finally:
        server.close()
    assert info.error is not None and info.error.startswith("QMP timeout after 1.2 s"), info
    assert server.sent >= 2 * len(EVENT)  # it did keep talking
    # A read's deadline would never end (an event every 0.5 s); the slack above the session's
    # 1.2 s is for a loaded machine (a full CI run once took 1.68 s).
    assert 1.1 <= elapsed < 2.2


BIG_EVENT = json.dumps({"event": "X", "data": {"pad": "x" * (200 << 10)}}).encode() + b"\r\n"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (EVENT * 64, f"QMP sent more than {MAX_SESSION_MESSAGES} messages in one session"),
        (BIG_EVENT, f"QMP sent more than {MAX_SESSION_BYTES >> 20} MiB in one session"),
    ],
    ids=["small-events", "big-events"],
)
def test_an_event_flood_ends_the_session_and_delays_no_other_vm(
    tmp_path: Path, body: bytes, reason: str
) -> None:
    # Events as fast as the socket takes them, from four VMs at once, while a fifth answers.
    flood = PushingQMPServer(str(tmp_path / "flood.sock"), body, every=0)
    healthy = FakeQMPServer(str(tmp_path / "ok.sock"))

    async def together() -> tuple[list[RemoteInfo], RemoteInfo, float]:
        flooded = [asyncio.ensure_future(query_qemu_async(flood.path, 2.0)) for _ in range(4)]
        start = time.monotonic()
        ok = await query_qemu_async(healthy.path, 2.0)
        return await asyncio.gather(*flooded), ok, time.monotonic() - start

    try:
        start = time.monotonic()
        flooded, ok, ok_elapsed = host_loop().run(together(), 10.0)
        elapsed = time.monotonic() - start
    finally:
        flood.close()
        healthy.close()
    for info in flooded:
        assert info.error == reason
    assert elapsed < 1.0  # ended by the bound, long before the 2 s deadline
    assert ok.error is None and ok.status == "running"
    assert ok_elapsed < 0.5, ok_elapsed


def test_a_huge_reply_ends_the_session_at_once(tmp_path: Path) -> None:
    huge = b'{"return": "' + b"x" * (4 * MAX_MESSAGE) + b'"}\r\n'
    server = PushingQMPServer(str(tmp_path / "huge.sock"), huge)
    try:
        info, elapsed = timed_query(server.path, 2.0)
    finally:
        server.close()
    assert info.error == "QMP message too large"
    assert info.reasons["status"] == "QMP message too large"
    assert elapsed < 1.0  # told by the reader's limit, not by the deadline


@pytest.mark.parametrize(
    ("greeting", "body", "reason"),
    [
        (PushingQMPServer.GREETING, b"{not json}\r\n", "QMP sent something that is not JSON"),
        (PushingQMPServer.GREETING, b"[1, 2]\r\n", "QMP sent something that is not a JSON object"),
        (PushingQMPServer.GREETING, b"[" * 100000 + b"\r\n", "QMP sent JSON nested too deeply"),
        (b"\x1b[31mhello\r\n", b"", "QMP sent something that is not JSON"),
        (b'{"hello": 1}\r\n', b"", "not a QMP socket (no greeting)"),
        (b'{"QMP": {}}\r\n', b"", "not a QMP socket (no greeting)"),
    ],
    ids=["garbage", "array", "nested", "terminal-bytes", "no-QMP-key", "empty-QMP"],
)
def test_bad_json_is_a_reason(tmp_path: Path, greeting: bytes, body: bytes, reason: str) -> None:
    server = PushingQMPServer(str(tmp_path / "bad.sock"), body, greeting=greeting)
    try:
        info, elapsed = timed_query(server.path, 2.0)
        with pytest.raises(QMPError) as err:
            qmp_execute(server.path, "query-status", timeout=2.0)
    finally:
        server.close()
    assert info.error == reason == str(err.value)
    assert elapsed < 1.0


def test_a_hostile_error_text_is_sanitised(tmp_path: Path) -> None:
    server = FakeQMPServer(str(tmp_path / "evil.sock"))
    server.errors["query-balloon"] = {"class": "Generic\x1b]0;x\x07", "desc": "\x1b[2J\u202eboom"}
    try:
        info = query_qemu(server.path)
        with pytest.raises(QMPCommandError) as err:
            qmp_execute(server.path, "query-balloon")
    finally:
        server.close()
    assert info.reasons["mem_guest_visible_bytes"] == "query-balloon: \u241b[2J?boom"
    assert err.value.error_class == "Generic\u241b]0;x\u2407"
    assert str(err.value).isprintable()


def test_a_client_taken_again_starts_from_nothing(tmp_path: Path) -> None:
    # Finished sessions leave their (idle, socketless) client for the next one: the client of
    # a flooded session comes back with its message count past the bound, and the next
    # session through it must count from zero, hear no old reply and hold no old socket.
    flood = PushingQMPServer(str(tmp_path / "flood.sock"), EVENT * 64, every=0)
    healthy = FakeQMPServer(str(tmp_path / "ok.sock"))
    try:
        flooded = query_qemu(flood.path, 2.0)
        pool = qmp._pools.get(host_loop().loop, [])
        assert pool, "the flooded session's client did not come back idle"
        reused = pool[-1]
        assert reused.received_messages > MAX_SESSION_MESSAGES
        assert reused._writer is None and not reused._pending  # no socket, no reply kept
        ok = query_qemu(healthy.path, 2.0)
    finally:
        flood.close()
        healthy.close()
    assert flooded.error == f"QMP sent more than {MAX_SESSION_MESSAGES} messages in one session"
    assert ok.error is None and ok.status == "running", ok
    assert reused in qmp._pools[host_loop().loop]  # it served that session and came back
    assert reused.received_messages < 64  # this session's own, from zero


# --- a VM not in focus: its state only (full=False) -------------------------------------------


def record_commands(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    """Every command sent from now on, as (command, its qom property or None), recorded where
    the real session sends each one."""
    sent: list[tuple[str, Any]] = []
    real = qmp.QMPSession._one

    async def recording(self: Any, command: str, arguments: dict[str, Any] | None) -> Any:
        sent.append((command, (arguments or {}).get("property")))
        return await real(self, command, arguments)

    monkeypatch.setattr(qmp.QMPSession, "_one", recording)
    return sent


def test_a_status_only_session_asks_the_state_alone(
    qemu: Qemu, monkeypatch: pytest.MonkeyPatch
) -> None:
    sent = record_commands(monkeypatch)
    info = query_qemu(qemu.socket_path, sizes=False, pipeline=True, full=False)
    assert sent == [("qmp_capabilities", None), ("query-status", None)]
    assert info.error is None and info.status in ("paused", "prelaunch")
    for name in FULL_ONLY_FIELDS:
        assert getattr(info, name) is None
        assert info.reasons[name] is Why.NOT_ASKED
    assert info.vcpu_count is None and "vcpu_count" not in info.reasons  # the caller keeps them


def test_a_first_status_only_session_switches_the_guest_statistics_on(
    sockdir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh = start_qemu(os.path.join(sockdir, "fresh.sock"))
    try:
        sent = record_commands(monkeypatch)
        info = query_qemu(fresh.socket_path, guest_stats_interval=3, full=False)
        assert [c for c, _ in sent] == [
            "qmp_capabilities",
            "query-status",
            "query-cpus-fast",
            "query-memory-size-summary",
            "qom-get",
            "qom-set",
        ]
        assert sent[-1][1] == "guest-stats-polling-interval"
        assert info.error is None and info.vcpu_count == 1
        assert info.mem_configured_bytes == 64 << 20
        assert info.reasons["mem_guest_used_bytes"] is Why.NOT_ASKED
        interval = {"path": "/machine/peripheral/balloon0", "property": sent[-1][1]}
        assert qmp_execute(fresh.socket_path, "qom-get", interval) == 3
    finally:
        fresh.stop()


def test_a_status_only_session_without_a_balloon_is_fine(qemu_no_balloon: Qemu) -> None:
    info = query_qemu(qemu_no_balloon.socket_path, guest_stats_interval=2, full=False)
    assert info.error is None and info.status in ("paused", "prelaunch")
    assert info.reasons["mem_guest_visible_bytes"] is Why.NOT_ASKED
