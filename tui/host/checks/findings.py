"""What a host check finds: one line, the fix in words, and what cleaning it would do."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class CheckKind(StrEnum):
    BLOCK_DEVICE_ACCESS = "block-device-access"
    VIRTIOFS_REPLACED = "virtiofs-source-replaced"
    JOURNAL_MACHINE_ID = "journal-machine-id"
    ORPHAN_UNIT = "orphan-unit"
    STALE_GCROOT = "stale-gcroot"
    ORPHAN_TAP = "orphan-tap"
    STALE_SOCKET = "stale-socket"


class CleanKind(StrEnum):
    STOP_UNIT = "stop-unit"  # systemctl stop + reset-failed
    REMOVE_GCROOT = "remove-gcroot"  # unlink the link in the GC roots dir
    DELETE_LINK = "delete-link"  # delete the network interface
    REMOVE_SOCKET = "remove-socket"  # unlink the socket file in the VM's state dir


@dataclass(frozen=True)
class CleanStep:
    """What cleaning a leftover does; ``describe`` says it in the confirmation."""

    kind: CleanKind
    target: str  # unit name, link name, or file name inside ``directory``
    directory: str | None = None  # GC roots dir or the VM's state dir
    netns: str | None = None  # the namespace of a link

    def describe(self) -> str:
        if self.kind is CleanKind.STOP_UNIT:
            return f"stop {self.target} and reset its failed state"
        if self.kind is CleanKind.REMOVE_GCROOT:
            return f"remove the GC root {self.directory}/{self.target}"
        if self.kind is CleanKind.DELETE_LINK:
            where = f" in network namespace {self.netns}" if self.netns else ""
            return f"delete the interface {self.target}{where}"
        return f"remove the socket file {self.directory}/{self.target}"


@dataclass(frozen=True)
class Finding:
    kind: CheckKind
    subject: str  # what it is about: a VM name, a unit, a link, a file
    message: str  # one line: what is wrong
    fix: str  # the fix, in words
    vm: str | None = None  # the VM it belongs to (None: the host)
    clean: CleanStep | None = None  # leftovers only


@dataclass
class CheckReport:
    findings: list[Finding] = field(default_factory=list)
    # Checks that could not run, one line each (systemd unreachable, netns gone...).
    errors: list[str] = field(default_factory=list)
    took_ms: float = 0.0

    def for_vm(self, name: str) -> list[Finding]:
        return [f for f in self.findings if f.vm == name]

    def host_wide(self) -> list[Finding]:
        return [f for f in self.findings if f.vm is None]
