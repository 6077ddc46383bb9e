"""What the monitor's widgets read about one running VM at one poll: ``VMSample`` and its parts,
and the host's totals (``HostSample``).

Plain dataclasses (recorded to JSON and replayed by ``tui.feed``). A figure that could not be
had is ``None`` (or missing from its dict), and ``VMSample.reasons`` says why: a short
sentence shown as is. The sentences the sampler itself writes are ``Why`` members, which
code compares as values (the table shows "…" for ``Why.NEEDS_TWO``), never by their words.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class Why(StrEnum):
    """The sampler's own reasons. The value is the text the user sees."""

    NEEDS_TWO = "needs a second sample"
    CPU_BACKWARDS = "the CPU counter went backwards (a thread ended); next poll"
    VCPU_COUNT_UNKNOWN = "vCPU count unknown"
    NO_VCPU_THREADS = "no vCPU threads found"
    NO_THREAD_TIMES = "cannot read thread times"
    IFACE_NOT_FOUND = "interface not found"
    NO_BYTE_COUNTERS = "no byte counters"
    NO_SHARE_SOCKET = "no socket path for this share"
    # A VM not in focus is asked only its run state (the table's); the rest when selected.
    NOT_ASKED = "asked when the VM is selected"
    UNKNOWN = "unknown"


# A reason: a ``Why`` when code acts on it, else the sentence a reader gave (an OS error, a
# hypervisor's answer). A ``Why`` is a ``str``, so both show the same way.
Reason = Why | str


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
    remote_ms: float | None = None  # how long the control socket took this poll
    remote_age: int = 0  # polls since its control socket was asked (0: this one)
    reasons: dict[str, Reason] = field(default_factory=dict)


@dataclass
class HostSample:
    ncpu: int
    cpu_pct: float | None  # busy % of all CPUs since the previous sample; None at the first
    mem_total_bytes: int
    mem_used_bytes: int  # total - available
    mem_available_bytes: int
    load1: float | None = None
    t: float = 0.0
