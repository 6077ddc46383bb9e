"""What the lab needs on this machine. Missing pieces are reported, never silently skipped."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from tui.lab import guest, guest_journal
from tui.lab.sshd import SSH, SSH_KEYGEN, SSHD
from tui.lab.systemd import DBUS_DAEMON_BINARIES, JOURNALD_BINARIES, SYSTEMD_BINARIES


def missing_prerequisites() -> list[str]:
    problems: list[str] = []
    if os.geteuid() != 0:
        problems.append("the lab must run as root (network namespaces, taps, cgroups, /nix/store)")
    for prog, pkg in (
        ("qemu-system-x86_64", "qemu-system-x86"),
        ("nix", "nix-bin"),
        ("ip", "iproute2"),
        ("socat", "socat"),
        ("unshare", "util-linux"),
        ("systemctl", "systemd"),
        ("bash", "bash"),
    ):
        if shutil.which(prog) is None:
            problems.append(f"{prog} is missing (apt-get install {pkg})")
    if not any(p.exists() for p in SYSTEMD_BINARIES):
        problems.append("/lib/systemd/systemd is missing (apt-get install systemd)")
    if not any(p.exists() for p in JOURNALD_BINARIES):
        problems.append("systemd-journald is missing (apt-get install systemd)")
    for path, pkg in (
        (SSHD, "openssh-server"),
        (SSH, "openssh-client"),
        (SSH_KEYGEN, "openssh-client"),
    ):
        if not path.exists():
            problems.append(f"{path} is missing (apt-get install {pkg})")
    if not any(p.exists() for p in DBUS_DAEMON_BINARIES):
        problems.append("dbus-daemon is missing (apt-get install dbus-daemon)")
    try:
        guest_journal.find_journal_remote()
    except FileNotFoundError as e:
        problems.append(str(e))
    if not Path("/dev/net/tun").exists():
        problems.append("/dev/net/tun is missing (taps cannot be made)")
    try:
        guest.find_busybox()
    except FileNotFoundError as e:
        problems.append(str(e))
    try:
        guest.find_kernel()
    except FileNotFoundError as e:
        problems.append(str(e))
    return problems
