"""Live sampling for the monitor: plain dataclasses out, no UI imports.

Entry point: ``Sampler.sample(vms, settings) -> dict[str, VMSample]`` (host totals in
``Sampler.host``, per-VM history and crash loops in ``Sampler.timeline``). Its pieces:
``samples`` (the types widgets read), ``rates`` (figures from two readings), ``timeline``,
``local`` (the caller's thread's reads); the readers (cgroup, process, qmp, http_api, crosvm)
can be used on their own.

A name is imported from its module when first asked for (PEP 562): the widgets' types come
without the sampler, psutil and qemu.qmp, which the app's first frame does not need (their
import is about a tenth of the launch's CPU) and the first sampling poll imports.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tui.host.sampling.reading import BlockCounters, Reading, RemoteInfo, VcpuThread
    from tui.host.sampling.sampler import Sampler
    from tui.host.sampling.samples import (
        HostSample,
        IORate,
        NetRate,
        Reason,
        VcpuSample,
        VMSample,
        Why,
    )
    from tui.host.sampling.timeline import Point, Timeline

_HOMES = {
    "BlockCounters": "reading",
    "HostSample": "samples",
    "IORate": "samples",
    "NetRate": "samples",
    "Point": "timeline",
    "Reading": "reading",
    "Reason": "samples",
    "RemoteInfo": "reading",
    "Sampler": "sampler",
    "Timeline": "timeline",
    "VMSample": "samples",
    "VcpuSample": "samples",
    "VcpuThread": "reading",
    "Why": "samples",
}
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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # asked once
    return value
