"""Read a runner package's ``share/microvm/`` directory (written by lib/runner.nix).

Every file is optional (older runners write fewer of them, and most exist only when the VM
uses the feature), so a missing file is not a problem. Unreadable files, garbage lines,
dangling or looping symlinks are: each becomes a sentence in ``ShareDir.problems`` naming the
file. Nothing here raises on bad input.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from tui.host.model import HYPERVISORS, NicSpec, ShareSpec
from tui.host.runners._options import shown
from tui.host.safefs import NotRegularFile, TooLarge, read_regular

MAX_FILE_BYTES = 64 * 1024  # these files hold a few lines; more is garbage

# Linux interface names: 1-15 bytes, no '/', ':' or whitespace.
_IFNAME_RE = re.compile(r"[^/:\s]{1,15}")
_MAC_RE = re.compile(r"[0-9A-Fa-f]{2}(?::[0-9A-Fa-f]{2}){5}")
_MACVTAP_MODES = frozenset({"private", "vepa", "bridge", "passthru", "source"})
_TAP_FLAGS = frozenset({"vnet_hdr", "multi_queue"})
_PACKAGE_RE = re.compile(r"^[0-9a-z]{32}-microvm-(.+)$")


@dataclass
class ShareDir:
    """What ``share/microvm/`` of one runner says."""

    path: str  # the share/microvm directory that was read
    hypervisor: str | None = None  # from the hypervisor file, else from the package name
    tap_interfaces: list[str] = field(default_factory=list)
    tap_flags: list[str] = field(default_factory=list)
    macvtap_interfaces: list[NicSpec] = field(default_factory=list)
    virtiofs: list[ShareSpec] = field(default_factory=list)  # tag, socket, source
    pci_devices: list[str] = field(default_factory=list)
    usb_devices: list[str] = field(default_factory=list)
    vsock_cid: int | None = None
    system: str | None = None  # target of the ``system`` symlink (guest toplevel), as written
    problems: list[str] = field(default_factory=list)


class _Reader:
    """Reads small text files under one directory, turning every failure into a problem."""

    def __init__(self, root: Path, problems: list[str], present: set[str] | None = None) -> None:
        self.root = root
        self.problems = problems
        # Names in ROOT, listed once: most optional files are absent, and `list` reads
        # hundreds of these directories, so absent ones should cost no system call.
        self.present = present

    def name(self, path: Path) -> str:
        try:
            return shown(f"share/microvm/{path.relative_to(self.root).as_posix()}")
        except ValueError:
            return shown(str(path))

    def text(self, path: Path) -> str | None:
        """The file's text; None if it is absent (silently) or unreadable (a problem)."""
        if self.present is not None and path.parent == self.root:
            if path.name not in self.present:
                return None
        elif not os.path.lexists(path):
            return None
        shown = self.name(path)
        try:
            # Bounded, non-blocking, regular files only: a FIFO or device must not hang or
            # flood the reader. Links are followed: a runner package is a tree of them.
            data = read_regular(path, MAX_FILE_BYTES, follow=True)
        except TooLarge:
            self.problems.append(
                f"{shown} is larger than {MAX_FILE_BYTES} bytes, so it was not read"
            )
            return None
        except NotRegularFile as e:
            if (e.strerror or "").startswith("is a directory"):
                self.problems.append(f"{shown} is a directory, expected a file")
            else:
                self.problems.append(f"{shown} is not a regular file")
            return None
        except OSError as e:
            self.problems.append(self.describe_error(shown, path, e))
            return None
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            self.problems.append(f"{shown} is not UTF-8 text")
            return None
        if "\x00" in text:
            self.problems.append(f"{shown} contains NUL bytes, so it is not a text file")
            return None
        return text

    def lines(self, path: Path) -> list[tuple[int, str]] | None:
        """Non-blank lines with their numbers, stripped; None if absent or unreadable."""
        text = self.text(path)
        if text is None:
            return None
        return [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1) if line.strip()]

    def single_line(self, path: Path) -> str | None:
        found = self.lines(path)
        if found is None:
            return None
        if not found:
            self.problems.append(f"{self.name(path)} is empty")
            return None
        if len(found) > 1:
            self.problems.append(f"{self.name(path)} has {len(found)} lines, expected one")
        return found[0][1]

    @staticmethod
    def describe_error(shown: str, path: Path, e: OSError) -> str:
        if e.errno == errno.ELOOP:
            return f"{shown} is a symlink loop"
        if e.errno == errno.ENOENT and os.path.islink(path):
            return f"{shown} is a dangling symlink (to {_readlink(path)})"
        if e.errno == errno.EISDIR:
            return f"{shown} is a directory, expected a file"
        return f"{shown} could not be read: {e.strerror or e}"


def _readlink(path: Path) -> str:
    try:
        return shown(os.readlink(path))
    except OSError:
        return "?"


# --- the individual files -----------------------------------------------------------------


def _hypervisor(reader: _Reader, root: Path, share: ShareDir) -> None:
    value = reader.single_line(root / "hypervisor")
    if value is None:
        return
    if value not in HYPERVISORS:
        share.problems.append(
            f"share/microvm/hypervisor names an unknown hypervisor '{shown(value[:40])}'"
        )
    share.hypervisor = value


def hypervisor_from_package_name(runner: str | os.PathLike[str]) -> str | None:
    """``/nix/store/HASH-microvm-HYPERVISOR-HOSTNAME`` -> HYPERVISOR (for older runners
    that lack share/microvm/hypervisor)."""
    m = _PACKAGE_RE.match(os.path.basename(os.fspath(runner).rstrip("/")))
    if not m:
        return None
    rest = m.group(1)
    # longest first, so "cloud-hypervisor-x" is not taken for some shorter name
    for name in sorted(HYPERVISORS, key=len, reverse=True):
        if rest.startswith(name + "-"):
            return name
    return None


def _tap_interfaces(reader: _Reader, root: Path, share: ShareDir) -> None:
    path = root / "tap-interfaces"
    for n, line in reader.lines(path) or []:
        if _IFNAME_RE.fullmatch(line):
            share.tap_interfaces.append(line)
        else:
            share.problems.append(
                f"{reader.name(path)} line {n} is not an interface name: {line[:40]!r}"
            )


def _tap_flags(reader: _Reader, root: Path, share: ShareDir) -> None:
    path = root / "tap-flags"
    for n, line in reader.lines(path) or []:
        for flag in line.split():
            if flag in _TAP_FLAGS:
                share.tap_flags.append(flag)
            else:
                share.problems.append(
                    f"{reader.name(path)} line {n} has an unknown flag {flag[:40]!r}"
                )


def _macvtap_line(line: str) -> NicSpec | str:
    """``ID MAC LINK MODE`` -> NicSpec, or the reason it is not one."""
    fields = line.split()
    if len(fields) != 4:
        return f"has {len(fields)} fields, expected 4 (ID MAC LINK MODE)"
    ident, mac, link, mode = fields
    if not _IFNAME_RE.fullmatch(ident):
        return f"has an invalid interface name {ident[:40]!r}"
    if not _MAC_RE.fullmatch(mac):
        return f"has an invalid MAC address {mac[:40]!r}"
    if not _IFNAME_RE.fullmatch(link):
        return f"has an invalid parent link {link[:40]!r}"
    if mode not in _MACVTAP_MODES:
        return f"has an unknown macvtap mode {mode[:40]!r}"
    return NicSpec(id=ident, type="macvtap", mac=mac, link=link, mode=mode)


def _macvtap_interfaces(reader: _Reader, root: Path, share: ShareDir) -> None:
    path = root / "macvtap-interfaces"
    for n, line in reader.lines(path) or []:
        parsed = _macvtap_line(line)
        if isinstance(parsed, NicSpec):
            share.macvtap_interfaces.append(parsed)
        else:
            share.problems.append(f"{reader.name(path)} line {n} {parsed}")


def _virtiofs(reader: _Reader, root: Path, share: ShareDir) -> None:
    base = root / "virtiofs"
    if not os.path.lexists(base):
        return
    try:
        tags = sorted(entry.name for entry in os.scandir(base))
    except OSError as e:
        share.problems.append(reader.describe_error(reader.name(base), base, e))
        return
    for tag in tags:
        tag_dir = base / tag
        if not tag_dir.is_dir():
            share.problems.append(f"{reader.name(tag_dir)} is not a directory")
            continue
        socket = reader.single_line(tag_dir / "socket")
        source = reader.single_line(tag_dir / "source")
        for missing in ("socket", "source"):
            if not os.path.lexists(tag_dir / missing):
                share.problems.append(f"{reader.name(tag_dir / missing)} is missing")
        share.virtiofs.append(ShareSpec(tag=tag, proto="virtiofs", socket=socket, source=source))


def _device_list(reader: _Reader, path: Path) -> list[str]:
    found = []
    for n, line in reader.lines(path) or []:
        if any(c.isspace() for c in line) or not line.isprintable():
            reader.problems.append(f"{reader.name(path)} line {n} is not a device: {line[:40]!r}")
        else:
            found.append(line)
    return found


def _vsock_cid(reader: _Reader, root: Path, share: ShareDir) -> None:
    path = root / "vsock-cid"
    value = reader.single_line(path)
    if value is None:
        return
    if not (value.isascii() and value.isdigit()):
        share.problems.append(f"{reader.name(path)} is not a number: {value[:40]!r}")
        return
    cid = int(value)
    if not 3 <= cid < 0xFFFFFFFF:  # 0-2 are reserved, -1 means "any"
        share.problems.append(f"{reader.name(path)} holds {cid}, which is not a usable guest CID")
        return
    share.vsock_cid = cid


def _system(root: Path, share: ShareDir) -> None:
    path = root / "system"
    if os.path.islink(path):
        share.system = _readlink(path)
    elif os.path.lexists(path):
        share.problems.append("share/microvm/system is not a symlink")


def read_share_dir(runner: str | os.PathLike[str]) -> ShareDir:
    """Read ``RUNNER/share/microvm``; ``runner`` is the runner package (or a link to it)."""
    root = Path(runner) / "share" / "microvm"
    share = ShareDir(path=str(root))
    try:
        is_dir = stat.S_ISDIR(os.stat(root).st_mode)
    except OSError as exc:
        if exc.errno not in (errno.EACCES, errno.EPERM):  # absent, a loop: told below
            is_dir = False
        else:  # not readable without root: say what, keep going
            share.problems.append(f"{share.path} could not be read: {exc.strerror or exc}")
            share.hypervisor = hypervisor_from_package_name(os.path.realpath(runner))
            return share
    if not is_dir:
        if os.path.islink(runner) and not os.path.exists(runner):
            reason = "is a dangling or looping symlink"
        else:
            reason = "has no share/microvm directory"
        share.problems.append(f"the runner {shown(os.fspath(runner))} {reason}")
        share.hypervisor = hypervisor_from_package_name(os.path.realpath(runner))
        return share
    try:
        present: set[str] | None = set(os.listdir(root))
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EPERM):  # one line for the dir, not one per file
            share.problems.append(f"{share.path} could not be read: {exc.strerror or exc}")
            share.hypervisor = hypervisor_from_package_name(os.path.realpath(runner))
            return share
        present = None  # each file then says for itself why it cannot be read
    reader = _Reader(root, share.problems, present)
    _hypervisor(reader, root, share)
    if share.hypervisor is None:
        share.hypervisor = hypervisor_from_package_name(os.path.realpath(runner))
    _tap_interfaces(reader, root, share)
    _tap_flags(reader, root, share)
    _macvtap_interfaces(reader, root, share)
    _virtiofs(reader, root, share)
    share.pci_devices = _device_list(reader, root / "pci-devices")
    share.usb_devices = _device_list(reader, root / "usb-devices")
    _vsock_cid(reader, root, share)
    _system(root, share)
    return share
