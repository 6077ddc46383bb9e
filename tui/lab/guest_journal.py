"""A guest journal in the microvm.nix FAQ layout for a lab VM: ``STATE/NAME/journal/<machine-id>/``
holding real journal files, written by systemd-journal-remote from export format (the lab's
busybox guests run no journald), with entries of several priorities and identifiers."""

from __future__ import annotations

import hashlib
import subprocess
import time
from pathlib import Path

JOURNAL_REMOTE_BINARIES = (
    Path("/lib/systemd/systemd-journal-remote"),
    Path("/usr/lib/systemd/systemd-journal-remote"),
)

# (priority, identifier, message): what a small NixOS guest's journal might hold.
ENTRIES = (
    (6, "kernel", "Linux version 6.1.0 (lab guest journal)"),
    (6, "systemd", "Started Journal Service."),
    (4, "systemd-timesyncd", "No network connectivity, watching for changes."),
    (3, "nginx", "[emerg] bind() to 0.0.0.0:80 failed (98: Address already in use)"),
    (6, "sshd", "Server listening on 0.0.0.0 port 22."),
    (2, "kernel", "EXT4-fs error (device vdb): ext4_lookup: deleted inode referenced"),
    (5, "systemd-logind", "New seat seat0."),
)


def machine_id(root: Path, name: str) -> str:
    """A fixed machine-id per lab VM (as `microvm.machineId` would be)."""
    return hashlib.sha256(f"{root}\0{name}\0machine-id".encode()).hexdigest()[:32]


def find_journal_remote() -> Path:
    for path in JOURNAL_REMOTE_BINARIES:
        if path.exists():
            return path
    raise FileNotFoundError(
        "systemd-journal-remote is missing (apt-get install systemd-journal-remote)"
    )


def _export(mid: str, boot: str, hostname: str) -> bytes:
    now = int(time.time() * 1_000_000)
    blocks = []
    for i, (priority, ident, message) in enumerate(ENTRIES):
        fields = {
            "__REALTIME_TIMESTAMP": now - (len(ENTRIES) - i) * 1_000_000,
            "__MONOTONIC_TIMESTAMP": (i + 1) * 1_000_000,
            "_BOOT_ID": boot,
            "_MACHINE_ID": mid,
            "_HOSTNAME": hostname,
            "_TRANSPORT": "syslog",
            "PRIORITY": priority,
            "SYSLOG_IDENTIFIER": ident,
            "MESSAGE": message,
        }
        blocks.append("".join(f"{k}={v}\n" for k, v in fields.items()) + "\n")
    return "".join(blocks).encode()


def write_guest_journal(share_source: Path, root: Path, name: str) -> Path:
    """Make SHARE_SOURCE/<machine-id>/system.journal (once; kept across `lab up`)."""
    mid = machine_id(root, name)
    directory = share_source / mid
    target = directory / "system.journal"
    if target.is_file():
        return target
    directory.mkdir(parents=True, exist_ok=True)
    boot = hashlib.sha256(f"{mid}\0boot".encode()).hexdigest()[:32]
    subprocess.run(
        [str(find_journal_remote()), f"--output={target}", "-"],
        input=_export(mid, boot, name),
        capture_output=True,
        check=True,
        timeout=60,
    )
    return target
