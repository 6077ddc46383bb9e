"""Rates from two readings of a counter: CPU, per-vCPU, block and network.

Each function takes the previous reading (``None`` on first contact) and the current one, and
returns the figures it could make and, per figure it could not, a typed reason (mostly
``Why.NEEDS_TWO``: a first reading, or a counter that went backwards). No I/O, no state: the
``Sampler`` keeps the readings between polls.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui.host.sampling.process import ThreadTimes
from tui.host.sampling.reading import BlockCounters
from tui.host.sampling.samples import IORate, NetRate, Reason, VcpuSample, Why


@dataclass
class Counter:
    """One reading of a cumulative counter (or a dict of them) at time ``t``."""

    t: float
    value: Any
    source: str | None = None  # where it was read; a change of source restarts the rate


@dataclass
class CpuRates:
    pct_of_host: float | None = None
    pct_of_vcpus: float | None = None


def per_second(delta: float, dt: float) -> float:
    return delta / dt if dt > 0 else 0.0


def cpu_rates(
    prev: Counter | None, cur: Counter, ncpu: int, vcpu_count: int | None
) -> tuple[CpuRates, dict[str, Reason]]:
    """CPU % of the host and of the VM's vCPUs from two readings of its CPU time (ns)."""
    both = ("cpu_pct_of_host", "cpu_pct_of_vcpus")
    if prev is None or prev.source != cur.source:
        return CpuRates(), dict.fromkeys(both, Why.NEEDS_TWO)
    if cur.value < prev.value:
        return CpuRates(), dict.fromkeys(both, Why.CPU_BACKWARDS)
    ns_per_s = per_second(cur.value - prev.value, cur.t - prev.t)
    rates = CpuRates(pct_of_host=100.0 * ns_per_s / 1e9 / ncpu)
    if not vcpu_count:
        return rates, {"cpu_pct_of_vcpus": Why.VCPU_COUNT_UNKNOWN}
    rates.pct_of_vcpus = 100.0 * ns_per_s / 1e9 / vcpu_count
    return rates, {}


def vcpu_rates(
    prev: Counter | None, threads: dict[int, ThreadTimes], t: float, mapping: dict[int, int]
) -> tuple[list[VcpuSample], Reason | None]:
    """Busy and steal % per vCPU (MAPPING: vCPU index -> thread id) from two readings of the
    process's thread times (PREV.value, THREADS: {tid: ThreadTimes}) taken at PREV.t and T."""
    out = []
    for index in sorted(mapping):
        tid = mapping[index]
        v = VcpuSample(index=index, thread_id=tid)
        cur = threads.get(tid)
        old = prev.value.get(tid) if prev is not None else None
        if prev is not None and cur is not None and old is not None and cur.run_ns >= old.run_ns:
            dt = t - prev.t
            v.busy_pct = 100.0 * per_second(cur.run_ns - old.run_ns, dt) / 1e9
            v.steal_pct = 100.0 * per_second(max(0, cur.wait_ns - old.wait_ns), dt) / 1e9
        out.append(v)
    return out, (Why.NEEDS_TWO if prev is None else None)


def block_rates(
    prev: Counter | None, cur: dict[str, BlockCounters], t: float
) -> tuple[dict[str, IORate], dict[str, Reason]]:
    """Bytes read and written per second per block device, from the hypervisor's counters."""
    if prev is None:
        return {}, ({"block": Why.NEEDS_TWO} if cur else {})
    rates: dict[str, IORate] = {}
    reasons: dict[str, Reason] = {}
    dt = t - prev.t
    for dev, now in cur.items():
        old: BlockCounters | None = prev.value.get(dev)
        if old is None or now.rd_bytes < old.rd_bytes or now.wr_bytes < old.wr_bytes:
            reasons[f"block:{dev}"] = Why.NEEDS_TWO
            continue
        rates[dev] = IORate(
            per_second(now.rd_bytes - old.rd_bytes, dt),
            per_second(now.wr_bytes - old.wr_bytes, dt),
        )
    return rates, reasons


def net_rates(
    prev: Counter | None,
    cur: dict[str, tuple[int, int]],
    t: float,
    host_side: dict[str, bool],
) -> tuple[dict[str, NetRate], dict[str, Reason]]:
    """Each NIC's traffic as the guest sees it, from two readings of its link's (rx, tx)
    bytes. HOST_SIDE[ifname]: the counters look at the guest from the host's end (a tap), so
    rx is what the guest sent."""
    rates: dict[str, NetRate] = {}
    reasons: dict[str, Reason] = {}
    for ifname, (rx, tx) in cur.items():
        old = prev.value.get(ifname) if prev is not None else None
        if prev is None or old is None or rx < old[0] or tx < old[1]:
            reasons[f"net:{ifname}"] = Why.NEEDS_TWO
            continue
        dt = t - prev.t
        rx_bps, tx_bps = per_second(rx - old[0], dt), per_second(tx - old[1], dt)
        if host_side[ifname]:
            rates[ifname] = NetRate(guest_rx_bps=tx_bps, guest_tx_bps=rx_bps)
        else:
            rates[ifname] = NetRate(guest_rx_bps=rx_bps, guest_tx_bps=tx_bps)
    return rates, reasons


def counts_host_side(kind: str | None, declared: str) -> bool:
    """Do the link's counters look at the guest from the host's end?

    A tap (kernel kind "tun") is the host's end of a pipe: what the hypervisor writes into it
    (the guest sent) is the tap's rx, what the host sends the guest is its tx. A macvtap is
    the guest's own port on the lower link: frames for the guest are its rx (counted as the
    lower device hands them over), the guest's frames its tx. The kernel's kind decides; the
    runner's declared type when the kernel does not say."""
    if kind:
        return kind == "tun"
    return declared != "macvtap"
