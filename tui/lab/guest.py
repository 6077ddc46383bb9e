"""The guest kernel and initramfs the lab boots: generated at `up` time from files on this machine.

Nothing binary is committed: the kernel is the host's own (Debian cloud) kernel, the initramfs is
written here from the static busybox and the few virtio modules the guest needs.
"""

from __future__ import annotations

import lzma
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

BUSYBOX_CANDIDATES = (Path("/bin/busybox"), Path("/usr/bin/busybox"))
# Modules the guest loads, in addition to their dependencies (from modules.dep).
GUEST_MODULES = (
    "virtio_pci",
    "virtio_blk",
    "virtio_net",
    "virtio_balloon",
    "virtio-rng",
    "virtio_console",
)

BOOT_MARKER = "microvm-lab guest {name} up"

# The guest's PID 1 runs this, then becomes busybox init (which handles Ctrl-Alt-Del).
INIT = """#!/bin/sh
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /tmp /run
mount -t devpts devpts /dev/pts
for m in $(cat /etc/modules); do
  insmod "/lib/modules/$m" 2>/dev/null
done
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    microvm.hostname=*) hostname "${arg#microvm.hostname=}" ;;
    lab.tick=*) tick="${arg#lab.tick=}" ;;
  esac
done
echo "microvm-lab guest $(hostname) up"  # BOOT_MARKER
if [ -n "$tick" ]; then
  # Lines on the serial console with journald's priority prefixes (SyslogLevelPrefix=yes).
  (n=0; while sleep "$tick"; do
    n=$((n + 1))
    echo "<3>lab tick $n: an error from the guest"
    echo "<4>lab tick $n: a warning from the guest"
    echo "lab tick $n: info from the guest"
  done) > /dev/console 2>&1 &
fi
exec /bin/init
"""

# busybox init: a shell with job control on ttyS0, respawned forever; Ctrl-Alt-Del (what
# microvm-shutdown sends over QMP) powers the guest off at once, so qemu exits.
INITTAB = """::sysinit:/bin/true
ttyS0::respawn:-/bin/sh
::ctrlaltdel:/bin/poweroff -f
"""

PROFILE = """export PATH=/bin
export PS1='\\h:\\w\\$ '
"""


@dataclass(frozen=True)
class GuestKernel:
    version: str
    image: Path
    modules_dir: Path


def find_busybox() -> Path:
    for p in BUSYBOX_CANDIDATES:
        if p.is_file() and is_static_elf(p):
            return p
    raise FileNotFoundError("a static busybox is needed (apt-get install busybox-static)")


def is_static_elf(path: Path) -> bool:
    """An ELF executable without a PT_INTERP program header (no dynamic loader)."""
    import struct

    with open(path, "rb") as f:
        head = f.read(64)
        if len(head) < 64 or head[:4] != b"\x7fELF" or head[4] != 2:  # 64-bit only
            return False
        e_phoff = struct.unpack_from("<Q", head, 32)[0]
        e_phentsize, e_phnum = struct.unpack_from("<HH", head, 54)
        f.seek(e_phoff)
        table = f.read(e_phentsize * e_phnum)
    for i in range(e_phnum):
        (p_type,) = struct.unpack_from("<I", table, i * e_phentsize)
        if p_type == 3:  # PT_INTERP
            return False
    return True


def find_kernel() -> GuestKernel:
    """The newest /boot/vmlinuz-* that has its modules installed."""
    found = []
    for image in Path("/boot").glob("vmlinuz-*"):
        version = image.name.removeprefix("vmlinuz-")
        mods = Path("/lib/modules") / version
        if (mods / "modules.dep").is_file() and os.access(image, os.R_OK):
            found.append(GuestKernel(version, image, mods))
    if not found:
        raise FileNotFoundError(
            "no /boot/vmlinuz-* with /lib/modules (apt-get install linux-image-cloud-amd64)"
        )
    return max(found, key=lambda k: _version_key(k.version))


def _version_key(v: str) -> tuple:
    parts = []
    for chunk in v.replace("-", ".").split("."):
        parts.append((0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk))
    return tuple(parts)


def module_closure(kernel: GuestKernel, wanted: tuple[str, ...] = GUEST_MODULES) -> list[str]:
    """Relative module paths from modules.dep, dependencies first. Unknown modules are skipped
    (built into the kernel, or absent)."""
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    for line in (kernel.modules_dir / "modules.dep").read_text().splitlines():
        path, _, rest = line.partition(":")
        deps[path] = rest.split()
        name = Path(path).name.split(".ko")[0]
        by_name[name] = path
        by_name[name.replace("-", "_")] = path
    order: list[str] = []

    def visit(path: str) -> None:
        if path in order:
            return
        for d in deps.get(path, []):
            visit(d)
        order.append(path)

    for name in wanted:
        path = by_name.get(name) or by_name.get(name.replace("-", "_"))
        if path:
            visit(path)
    return order


def _read_module(path: Path) -> bytes:
    data = path.read_bytes()
    if path.name.endswith(".ko.xz"):
        return lzma.decompress(data)
    if path.name.endswith(".ko.zst"):
        return subprocess.run(["zstd", "-dc", str(path)], capture_output=True, check=True).stdout
    if path.name.endswith(".ko.gz"):
        import gzip

        return gzip.decompress(data)
    return data


class Cpio:
    """A minimal writer of the `newc` cpio format the kernel unpacks as initramfs."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._ino = 1

    def _entry(self, name: str, mode: int, data: bytes = b"") -> None:
        namez = name.encode() + b"\0"
        fields = [self._ino, mode, 0, 0, 2 if stat.S_ISDIR(mode) else 1, 0, len(data)]
        fields += [0, 0, 0, 0, len(namez), 0]
        header = b"070701" + b"".join(b"%08X" % f for f in fields)
        self._ino += 1
        blob = header + namez
        blob += b"\0" * (-len(blob) % 4)
        blob += data
        blob += b"\0" * (-len(blob) % 4)
        self._chunks.append(blob)

    def dir(self, name: str) -> None:
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name: str, data: bytes, mode: int = 0o644) -> None:
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name: str, target: str) -> None:
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def getvalue(self) -> bytes:
        self._entry("TRAILER!!!", 0)
        return b"".join(self._chunks)


def busybox_applets(busybox: Path) -> list[str]:
    out = subprocess.run([str(busybox), "--list"], capture_output=True, text=True, check=True)
    return sorted({a for a in out.stdout.split() if a and "/" not in a and a != "busybox"})


def build_initramfs(busybox: Path, kernel: GuestKernel) -> bytes:
    """The same bytes for the same inputs (mtime 0, sorted), so Nix store paths stay stable."""
    c = Cpio()
    for d in ("bin", "dev", "etc", "lib", "lib/modules", "proc", "sys", "tmp", "run", "root"):
        c.dir(d)
    c.file("bin/busybox", busybox.read_bytes(), 0o755)
    for applet in busybox_applets(busybox):
        c.symlink(f"bin/{applet}", "busybox")
    modules = module_closure(kernel)
    names = []
    for rel in modules:
        name = Path(rel).name.split(".ko")[0] + ".ko"
        c.file(f"lib/modules/{name}", _read_module(kernel.modules_dir / rel))
        names.append(name)
    c.file("etc/modules", ("\n".join(names) + "\n").encode())
    c.file("etc/inittab", INITTAB.encode())
    c.file("etc/profile", PROFILE.encode())
    c.file("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    c.file("etc/group", b"root:x:0:\n")
    c.file("init", INIT.encode(), 0o755)
    return c.getvalue()


def write_if_changed(path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write only when the content differs (keeps mtimes and store paths stable)."""
    if path.is_file() and not path.is_symlink():
        try:
            if path.stat().st_size == len(data) and path.read_bytes() == data:
                return False
        except OSError:
            pass
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.chmod(mode)
    tmp.replace(path)
    return True


def copy_if_changed(src: Path, dst: Path, mode: int = 0o644) -> bool:
    if dst.is_file():
        s, d = src.stat(), dst.stat()
        if s.st_size == d.st_size and src.read_bytes() == dst.read_bytes():
            return False
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.chmod(mode)
    tmp.replace(dst)
    return True
