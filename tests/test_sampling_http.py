"""cloud-hypervisor / firecracker API clients against fakes of their documented answers."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.hypervisor_apis import FakeCloudHypervisorAPI, FakeFirecrackerAPI
from tui.host.sampling.crosvm import query_crosvm
from tui.host.sampling.http_api import http_get, query_cloud_hypervisor, query_firecracker

MIB = 1 << 20


@pytest.fixture
def ch(tmp_path: Path) -> Iterator[FakeCloudHypervisorAPI]:
    with FakeCloudHypervisorAPI(
        str(tmp_path / "ch.sock"), boot_vcpus=2, mem_bytes=512 * MIB, balloon_bytes=128 * MIB
    ) as fake:
        yield fake


@pytest.fixture
def fc(tmp_path: Path) -> Iterator[FakeFirecrackerAPI]:
    with FakeFirecrackerAPI(str(tmp_path / "fc.sock")) as fake:
        yield fake


def test_cloud_hypervisor(ch: FakeCloudHypervisorAPI) -> None:
    ch.counters["_disk0"].update(read_bytes=1 << 20, write_bytes=4096)
    ch.refresh()
    info = query_cloud_hypervisor(ch.socket_path)
    assert info.error is None, info
    assert info.status == "running"
    assert info.vcpu_count == 2
    assert info.mem_configured_bytes == 512 * MIB
    assert info.mem_guest_visible_bytes == 384 * MIB
    assert (
        info.mem_guest_used_bytes is None
        and "no guest memory" in (info.reasons["mem_guest_used_bytes"])
    )
    assert info.block is not None and set(info.block) == {"_disk0"}  # nets have no read_bytes
    assert info.block["_disk0"].rd_bytes == 1 << 20 and info.block["_disk0"].wr_bytes == 4096
    assert ch.requests == ["/api/v1/vm.info", "/api/v1/vm.counters"]


def test_cloud_hypervisor_paused_and_not_created(ch: FakeCloudHypervisorAPI) -> None:
    ch.vm_info["state"] = "Paused"
    ch.refresh()
    assert query_cloud_hypervisor(ch.socket_path).status == "paused"
    ch.created = False
    ch.refresh()
    info = query_cloud_hypervisor(ch.socket_path)
    assert info.status == "not created"
    assert info.reasons["vcpu_count"] == "the VM is not created yet"


def test_firecracker(fc: FakeFirecrackerAPI) -> None:
    info = query_firecracker(fc.socket_path)
    assert info.error is None, info
    assert info.status == "running"
    assert info.vcpu_count == 2
    assert info.mem_configured_bytes == 256 * MIB
    assert info.mem_guest_visible_bytes == (256 - 64) * MIB
    assert info.mem_guest_used_bytes == 40 * MIB
    assert "metrics" in info.reasons["block"]


def test_firecracker_without_balloon(tmp_path: Path) -> None:
    with FakeFirecrackerAPI(str(tmp_path / "fc.sock"), balloon_mib=None, state="Paused") as fc:
        info = query_firecracker(fc.socket_path)
    assert info.status == "paused"
    assert info.mem_configured_bytes == 256 * MIB
    assert info.mem_guest_visible_bytes is None
    assert info.reasons["mem_guest_visible_bytes"] == (
        "no balloon statistics: Statistics for the balloon device are not enabled"
    )


def test_hung_api_times_out(tmp_path: Path) -> None:
    with FakeCloudHypervisorAPI(str(tmp_path / "ch.sock")) as ch:
        ch.hang = True
        start = time.monotonic()
        info = query_cloud_hypervisor(ch.socket_path, timeout=0.5)
        elapsed = time.monotonic() - start
    assert info.error == "API timeout after 0.5 s"
    assert elapsed < 0.7


def test_missing_socket(tmp_path: Path) -> None:
    assert query_firecracker(str(tmp_path / "none.sock")).error == "socket missing"
    assert query_cloud_hypervisor(str(tmp_path / "none.sock")).reasons["status"] == (
        "socket missing"
    )


def test_http_get_404(ch: FakeCloudHypervisorAPI) -> None:
    resp = http_get(ch.socket_path, "/api/v1/nope", time.monotonic() + 1, 1.0)
    assert resp.status == 404 and resp.body == b""


def test_crosvm_cli_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    info = query_crosvm(str(tmp_path / "crosvm.sock"), mem_configured_bytes=512 * MIB)
    assert info.error == "crosvm CLI not installed"
    assert info.reasons["mem_guest_visible_bytes"] == "crosvm CLI not installed"


def test_crosvm_cli_output(tmp_path: Path) -> None:
    # A stand-in crosvm that prints what `crosvm balloon_stats` prints.
    fake = tmp_path / "crosvm"
    fake.write_text(
        "#!/bin/sh\n"
        'test "$1" = balloon_stats || exit 2\n'
        'echo \'{"BalloonStats":{"stats":{"total_memory":1073741824,'
        '"available_memory":536870912,"free_memory":268435456},"balloon_actual":268435456}}\'\n'
    )
    os.chmod(fake, 0o755)
    info = query_crosvm("/nonexistent.sock", mem_configured_bytes=1024 * MIB, binary=str(fake))
    assert info.error is None, info
    assert info.mem_guest_visible_bytes == 768 * MIB
    assert info.mem_guest_used_bytes == 512 * MIB
