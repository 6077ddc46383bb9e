"""Live sampling for the monitor: plain dataclasses out, no UI imports.

Entry point: ``Sampler.sample(vms, settings) -> dict[str, VMSample]`` (host totals in
``Sampler.host``, per-VM ``History`` in ``Sampler.history``). The readers it is built from
(cgroup, process, qmp, http_api, crosvm) can be used on their own.
"""

from tui.host.sampling.history import History, Point
from tui.host.sampling.host import HostSample
from tui.host.sampling.reading import BlockCounters, Reading, RemoteInfo, VcpuThread
from tui.host.sampling.sampler import IORate, NetRate, Sampler, VcpuSample, VMSample

__all__ = [
    "BlockCounters",
    "History",
    "HostSample",
    "IORate",
    "NetRate",
    "Point",
    "Reading",
    "RemoteInfo",
    "Sampler",
    "VMSample",
    "VcpuSample",
    "VcpuThread",
]
