"""The takeover's files in a VM's state dir, and the marker that remembers a takeover (with the
hypervisor's pid it applies to) so a later attach reattaches without asking."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from tui.host.model import VM
from tui.host.safefs import read_regular, write_file

# Files of a takeover, in the VM's state dir. A NixOS hostName has no '.', so these can never
# be the hypervisor's own "${hostName}.sock" (or a virtiofs "${hostName}-virtiofs-TAG.sock").
TAKEOVER_SOCKET = "microvm-tui.console.sock"
TAKEOVER_LOG = "microvm-tui.console.log"
TAKEOVER_MARKER = "microvm-tui.console.json"
MAX_MARKER_BYTES = 64 << 10  # a marker is ~300 bytes
STDIO_CHARDEV = "stdio"  # microvm.nix: -chardev stdio,id=stdio,signal=off -serial chardev:stdio


def takeover_paths(vm: VM) -> tuple[str, str]:
    """(socket, logfile) a takeover uses: absolute, or relative to the state dir (qemu's
    working directory under microvm@NAME) when the absolute socket path is too long."""
    sock = vm.path / TAKEOVER_SOCKET
    log = vm.path / TAKEOVER_LOG
    return str(sock), str(log)


@dataclass(frozen=True)
class TakeoverMarker:
    socket: str
    logfile: str
    main_pid: int | None
    chardev: str = STDIO_CHARDEV
    taken_at: float = 0.0
    # Where the history (console_log_dir/NAME.log) stood when the console was taken over, so
    # that after the VM's restart following it again starts with the new boot.
    history_path: str | None = None
    history_inode: int | None = None
    history_offset: int | None = None

    def to_json(self) -> str:
        return json.dumps(
            {
                "version": 1,
                "chardev": self.chardev,
                "socket": self.socket,
                "logfile": self.logfile,
                "main_pid": self.main_pid,
                "taken_at": self.taken_at,
                "history_path": self.history_path,
                "history_inode": self.history_inode,
                "history_offset": self.history_offset,
            },
            indent=2,
        )


def marker_path(vm: VM) -> Path:
    return vm.path / TAKEOVER_MARKER


def read_marker(vm: VM) -> TakeoverMarker | None:
    """The takeover marker, or None if absent or unreadable (a bad marker is as good as none)."""
    try:
        # Not through a link, never a FIFO or device, never more than the limit.
        raw = read_regular(marker_path(vm), MAX_MARKER_BYTES)
        data = json.loads(raw)
        pid = data.get("main_pid")

        def optional_int(key: str) -> int | None:
            value = data.get(key)
            return int(value) if value is not None else None

        history = data.get("history_path")
        return TakeoverMarker(
            socket=str(data["socket"]),
            logfile=str(data["logfile"]),
            main_pid=int(pid) if pid is not None else None,
            chardev=str(data.get("chardev") or STDIO_CHARDEV),
            taken_at=float(data.get("taken_at") or 0.0),
            history_path=str(history) if history else None,
            history_inode=optional_int("history_inode"),
            history_offset=optional_int("history_offset"),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_marker(vm: VM, marker: TakeoverMarker) -> None:
    """Write the marker into the VM's state dir (writable by group kvm): a random temporary
    name made exclusively at the dir's fd, renamed over the old marker; nothing planted
    there (a link at either name) is followed."""
    write_file(marker_path(vm), (marker.to_json() + "\n").encode("utf-8"), 0o644)
