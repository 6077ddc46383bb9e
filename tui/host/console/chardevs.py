"""QMP ``query-chardev`` answers: the hypervisor's character devices, and which of them is the
serial console. The reply is outside data: odd entries are skipped. No Textual here."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tui.host.console.marker import STDIO_CHARDEV
from tui.host.model import VM


@dataclass(frozen=True)
class Chardev:
    label: str
    filename: str
    frontend_open: bool | None = None

    @property
    def connected(self) -> bool:
        return not self.filename.startswith("disconnected:")

    @property
    def address(self) -> str:
        return self.filename.removeprefix("disconnected:")

    @property
    def backend(self) -> str:
        return self.address.split(":", 1)[0]

    def unix_path(self, base: Path) -> str | None:
        """``unix:PATH,server=on`` -> PATH (relative ones against BASE, the qemu's cwd)."""
        if self.backend != "unix":
            return None
        rest = self.address[len("unix:") :]
        # qemu prints ",server=on" (and ", ..." details on some versions) after the path.
        for marker in (",server", ",wait", ",nowait", " "):
            cut = rest.find(marker)
            if cut >= 0:
                rest = rest[:cut]
        return str(base / rest) if rest and not os.path.isabs(rest) else rest or None

    @property
    def server(self) -> bool:
        return ",server" in self.address and ",server=off" not in self.address

    @property
    def pty_path(self) -> str | None:
        if self.backend != "pty":
            return None
        return self.address[len("pty:") :] or None


def parse_chardevs(reply: Any) -> list[Chardev]:
    """The ``query-chardev`` return value as Chardevs (odd entries are skipped)."""
    found = []
    for entry in reply if isinstance(reply, list) else []:
        if not isinstance(entry, dict):
            continue
        label, filename = entry.get("label"), entry.get("filename")
        if isinstance(label, str) and isinstance(filename, str):
            opened = entry.get("frontend-open")
            found.append(Chardev(label, filename, opened if isinstance(opened, bool) else None))
    return found


def same_path(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return os.path.normpath(a) == os.path.normpath(b)


def serial_chardev(vm: VM, chardevs: list[Chardev]) -> Chardev | None:
    """Which chardev is the serial console: matched by the runner's idea of it first."""
    spec = vm.serial
    if spec is not None and spec.kind == "unix" and spec.path:
        for dev in chardevs:
            if same_path(dev.unix_path(vm.path), spec.path):
                return dev
    if spec is not None and spec.kind == "stdio":
        for dev in chardevs:
            if dev.label == STDIO_CHARDEV and dev.frontend_open is not False:
                return dev
    if spec is not None and spec.kind == "pty":
        ptys = [d for d in chardevs if d.backend == "pty"]
        for dev in ptys:
            if dev.label.startswith("serial"):
                return dev
        if ptys:
            return ptys[0]
    # Unknown runner: qemu's names for -serial without a chardev are serial0, serial1, ...
    for dev in chardevs:
        if dev.label == "serial0":
            return dev
    for dev in chardevs:
        if dev.label == STDIO_CHARDEV and dev.frontend_open:
            return dev
    return None
