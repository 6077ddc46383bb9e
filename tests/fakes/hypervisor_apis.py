"""Fakes of the cloud-hypervisor and firecracker REST APIs, answering documented shapes only."""

from __future__ import annotations

import copy
from typing import Any

from .unix_http import UnixHTTPFake

MIB = 1 << 20


class FakeCloudHypervisorAPI(UnixHTTPFake):
    """cloud-hypervisor's API socket (``--api-socket``), routes under ``/api/v1``.

    Follows cloud-hypervisor's ``vmm/src/api/openapi/cloud-hypervisor.yaml`` (API 0.3.0):

    - ``GET /api/v1/vm.info`` -> ``VmInfo``: required ``config`` (``VmConfig``: ``cpus``
      ``CpusConfig`` {boot_vcpus, max_vcpus}, ``memory`` ``MemoryConfig`` {size (bytes),
      hotplug_size, hotplugged_size, shared, ...}, ``payload`` {kernel, cmdline}, ``disks``
      [``DiskConfig`` {path, readonly, id}], ``net`` [``NetConfig`` {tap, mac, id}],
      ``balloon`` ``BalloonConfig`` {size, deflate_on_oom}) and ``state`` (``VmState``: Created,
      Running, Shutdown, Paused, BreakPoint), optional ``memory_actual_size`` (bytes, RAM minus
      balloon, as vmm/src/lib.rs computes it). 404 when no VM is created.
    - ``GET /api/v1/vm.counters`` -> ``VmCounters``: {device id: {counter name: int64}}; the
      names are those of virtio-devices/src/block.rs (read_bytes, write_bytes, read_ops,
      write_ops) and net.rs (rx_bytes, tx_bytes, rx_frames, tx_frames).
    """

    def __init__(
        self,
        socket_path: str,
        *,
        boot_vcpus: int = 2,
        mem_bytes: int = 512 * MIB,
        balloon_bytes: int = 0,
        state: str = "Running",
    ) -> None:
        super().__init__(socket_path)
        self.vm_info: dict[str, Any] = {
            "config": {
                "cpus": {"boot_vcpus": boot_vcpus, "max_vcpus": boot_vcpus},
                "memory": {
                    "size": mem_bytes,
                    "hotplug_size": 0,
                    "hotplugged_size": 0,
                    "mergeable": False,
                    "shared": True,
                    "hugepages": False,
                },
                "payload": {"kernel": "/nix/store/fake-linux/bzImage", "cmdline": "console=ttyS0"},
                "disks": [
                    {"path": "/var/lib/microvms/web/var.img", "readonly": False, "id": "_disk0"}
                ],
                "net": [{"tap": "vm-web", "mac": "02:00:00:00:00:01", "id": "_net1"}],
                "balloon": {"size": balloon_bytes, "deflate_on_oom": True},
            },
            "state": state,
            "memory_actual_size": mem_bytes - balloon_bytes,
        }
        self.counters: dict[str, dict[str, int]] = {
            "_disk0": {"read_bytes": 0, "write_bytes": 0, "read_ops": 0, "write_ops": 0},
            "_net1": {"rx_bytes": 0, "tx_bytes": 0, "rx_frames": 0, "tx_frames": 0},
        }
        self.created = True
        self.refresh()

    def refresh(self) -> None:
        """Publish the current ``vm_info`` / ``counters`` (call after changing them)."""
        info = (200, copy.deepcopy(self.vm_info)) if self.created else (404, None)
        self.routes["/api/v1/vm.info"] = info
        self.routes["/api/v1/vm.counters"] = (200, copy.deepcopy(self.counters))


class FakeFirecrackerAPI(UnixHTTPFake):
    """firecracker's API socket (``--api-sock``).

    Follows firecracker's ``src/firecracker/swagger/firecracker.yaml`` (1.x):

    - ``GET /`` -> ``InstanceInfo`` {app_name, id, state ("Not started" | "Running" |
      "Paused"), vmm_version} (all required).
    - ``GET /machine-config`` -> ``MachineConfiguration`` {vcpu_count, mem_size_mib} required,
      plus smt, track_dirty_pages, huge_pages.
    - ``GET /balloon/statistics`` -> ``BalloonStats``: required target_pages, actual_pages,
      target_mib, actual_mib; optional guest figures in bytes (free_memory, total_memory,
      available_memory, disk_caches, swap_in, swap_out, major_faults, minor_faults, ...).
      400 with ``Error`` {fault_message} when the device or its statistics are not enabled.
    """

    def __init__(
        self,
        socket_path: str,
        *,
        vcpu_count: int = 2,
        mem_size_mib: int = 256,
        balloon_mib: int | None = 64,
        guest_total_bytes: int | None = 190 * MIB,
        guest_available_bytes: int | None = 150 * MIB,
        state: str = "Running",
    ) -> None:
        super().__init__(socket_path)
        self.routes["/"] = (
            200,
            {"app_name": "Firecracker", "id": "web", "state": state, "vmm_version": "1.12.0"},
        )
        self.routes["/machine-config"] = (
            200,
            {
                "vcpu_count": vcpu_count,
                "mem_size_mib": mem_size_mib,
                "smt": False,
                "track_dirty_pages": False,
                "huge_pages": "None",
            },
        )
        if balloon_mib is None:
            self.routes["/balloon/statistics"] = (
                400,
                {"fault_message": "Statistics for the balloon device are not enabled"},
            )
        else:
            stats: dict[str, int] = {
                "target_pages": balloon_mib * 256,
                "actual_pages": balloon_mib * 256,
                "target_mib": balloon_mib,
                "actual_mib": balloon_mib,
                "swap_in": 0,
                "swap_out": 0,
                "major_faults": 12,
                "minor_faults": 3400,
            }
            if guest_total_bytes is not None:
                stats["total_memory"] = guest_total_bytes
                stats["free_memory"] = (guest_available_bytes or 0) // 2
            if guest_available_bytes is not None:
                stats["available_memory"] = guest_available_bytes
            self.routes["/balloon/statistics"] = (200, stats)
