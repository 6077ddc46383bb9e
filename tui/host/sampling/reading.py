"""Result types shared by the samplers: a value or the reason it could not be read.

Nothing in ``tui.host.sampling`` raises for a VM that misbehaves; every reader returns one of
these, and the reason is a short sentence the UI can show as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Reading(Generic[T]):
    """One value read from the host, or why it could not be read.

    Exactly one of ``value`` and ``reason`` is set. ``source`` says where a value came from
    (e.g. "cgroup v2 cpu.stat"), so the UI can tell a precise figure from a fallback.
    """

    value: T | None = None
    reason: str | None = None
    source: str | None = None

    @property
    def ok(self) -> bool:
        return self.reason is None and self.value is not None

    @classmethod
    def of(cls, value: T, source: str | None = None) -> Reading[T]:
        return cls(value=value, source=source)

    @classmethod
    def fail(cls, reason: str) -> Reading[T]:
        return cls(reason=reason)


@dataclass(frozen=True)
class VcpuThread:
    index: int
    thread_id: int


@dataclass(frozen=True)
class BlockCounters:
    """Cumulative bytes one block device has read and written (from the hypervisor)."""

    rd_bytes: int
    wr_bytes: int


@dataclass
class RemoteInfo:
    """What one hypervisor's control socket said in one short session.

    Hypervisor-neutral: QMP, the cloud-hypervisor and firecracker HTTP APIs and the crosvm CLI
    all fill this. A field is ``None`` when it could not be read, and ``reasons`` then holds
    why, keyed by the field name. ``error`` is set when the session failed as a whole (every
    unread field then carries the same reason).
    """

    status: str | None = None  # "running", "paused", "prelaunch", "created", "shutdown", ...
    vcpu_count: int | None = None
    vcpu_threads: list[VcpuThread] | None = None
    mem_configured_bytes: int | None = None
    mem_guest_visible_bytes: int | None = None  # RAM minus balloon
    mem_guest_used_bytes: int | None = None  # from balloon guest statistics, when valid
    block: dict[str, BlockCounters] | None = None
    error: str | None = None
    # The session failed after using all the time it had (a server that hangs): such a VM is
    # served last next poll. Set by the sampler, never read from ``error``'s words.
    timed_out: bool = False
    reasons: dict[str, str] = field(default_factory=dict)
    elapsed_s: float = 0.0
    read_at: float = 0.0  # time.monotonic() when the answers were in (for block rates)

    FIELDS = (
        "status",
        "vcpu_count",
        "vcpu_threads",
        "mem_configured_bytes",
        "mem_guest_visible_bytes",
        "mem_guest_used_bytes",
        "block",
    )

    def fail_missing(self, reason: str) -> None:
        """Give every field still unread (and without a reason) REASON."""
        for name in self.FIELDS:
            if getattr(self, name) is None:
                self.reasons.setdefault(name, reason)
