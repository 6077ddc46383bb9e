"""Live sampling for the monitor: plain dataclasses out, no UI imports.

Entry point: ``Sampler.sample(vms, settings) -> dict[str, VMSample]`` (host totals in
``Sampler.host``, per-VM history and crash loops in ``Sampler.timeline``). Its pieces:
``samples`` (the types widgets read), ``rates`` (figures from two readings), ``timeline``,
``local`` (the caller's thread's reads); the readers (cgroup, process, qmp, http_api, crosvm)
can be used on their own.
"""

from tui.host.sampling.host import HostSample
from tui.host.sampling.reading import BlockCounters, Reading, RemoteInfo, VcpuThread
from tui.host.sampling.sampler import Sampler
from tui.host.sampling.samples import IORate, NetRate, Reason, VcpuSample, VMSample, Why
from tui.host.sampling.timeline import Point, Timeline

__all__ = [
    "BlockCounters",
    "HostSample",
    "IORate",
    "NetRate",
    "Point",
    "Reading",
    "Reason",
    "RemoteInfo",
    "Sampler",
    "Timeline",
    "VMSample",
    "VcpuSample",
    "VcpuThread",
    "Why",
]
