"""Where a VM's serial console can be reached, in this order:

1. an interactive endpoint the VM already has: a unix socket server or a pty, read from QMP
   ``query-chardev`` (what the running qemu really uses) or, without QMP, from the runner's
   arguments (``VM.serial``);
2. for a QEMU VM whose serial is on stdio (microvm.nix's default): a *takeover*, QMP
   ``chardev-change`` of the ``stdio`` chardev to a unix socket server in the VM's state dir
   with a logfile transcript. One-way until the VM restarts (serial output stops going to the
   journal / log file), so :func:`discover_endpoint` only *proposes* it
   (``needs_confirmation``) and ``tui.host.console.takeover.take_over`` does it once the admin
   said yes. A marker file in the state dir (``tui.host.console.marker``) remembers it, with
   the hypervisor's pid it applies to, so a later attach reattaches without asking;
3. read-only history: the journal of ``microvm@NAME`` (``journalctl -o json -f``), or, where no
   journald runs (``settings.console_log_dir``), the file the unit appends its output to.

This module holds the answer's type; :mod:`~tui.host.console.discovery` finds it (from
:mod:`~tui.host.console.chardevs` or the runner's arguments), and
:mod:`~tui.host.console.history` builds the read-only fallbacks. Nothing there raises for an
ordinary situation (stopped VM, no QMP, no endpoint): the answer is a :class:`ConsoleEndpoint`
whose ``explanation`` says why. No Textual here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from tui.host.names import unit_name


class EndpointKind(StrEnum):
    UNIX = "unix"  # a unix socket server (the hypervisor's, or ours after a takeover)
    PTY = "pty"  # a pseudo-terminal the hypervisor opened
    TAKEOVER = "takeover"  # proposed: chardev-change of stdio to a socket (needs a yes first)
    LOGFILE = "logfile"  # read-only: follow the file the unit's output is appended to
    JOURNAL = "journal"  # read-only: follow journalctl -u microvm@NAME
    NONE = "none"  # nothing to attach to (stopped, broken, ...)


@dataclass(frozen=True)
class ConsoleEndpoint:
    """One answer to "where is NAME's console?".

    ``path``: the socket, pty or log file (for TAKEOVER: the socket it would create).
    ``explanation``: one or two sentences for the admin: where it comes from, or why it is
    read-only / unavailable. ``hint``: how to get an interactive console (config lines).
    ``fallback``: for TAKEOVER and NONE, the read-only history to show meanwhile (or None).
    """

    vm: str
    kind: EndpointKind
    path: str | None = None
    interactive: bool = False
    needs_confirmation: bool = False
    explanation: str = ""
    hint: str = ""
    source: str = ""  # "qmp", "runner", "takeover", "log", "journal", "state"
    transcript: str | None = None  # takeover logfile: the session so far, shown as history
    main_pid: int | None = None  # the hypervisor this applies to (None: unknown)
    chardev: str | None = None  # QMP chardev label of the serial port
    busy: bool = False  # the socket server already has a client (qemu serves one at a time)
    fallback: ConsoleEndpoint | None = None
    argv: tuple[str, ...] = ()  # JOURNAL: the journalctl command
    transient: bool = False  # may change soon (starting, stopping, QMP not answering yet)

    @property
    def read_only(self) -> bool:
        return not self.interactive

    def describe(self) -> str:
        """A short label for a title line: "unix socket /…/console.sock", "journal of …"."""
        match self.kind:
            case EndpointKind.UNIX:
                what = "takeover socket" if self.source == "takeover" else "unix socket"
                return f"{what} {self.path}"
            case EndpointKind.PTY:
                return f"pty {self.path}"
            case EndpointKind.TAKEOVER:
                return f"serial on stdio (takeover possible: {self.path})"
            case EndpointKind.LOGFILE:
                return f"log file {self.path} (read-only)"
            case EndpointKind.JOURNAL:
                return f"journal of {unit_name(self.vm)} (read-only)"
        return "no console"
