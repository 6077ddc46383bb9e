"""CPU and memory of a systemd unit, read from its cgroup.

The unit's ``ControlGroup`` property (e.g.
``/system.slice/system-microvm.slice/microvm@web.service``) is joined to the mount point of
each hierarchy. The layout (pure v2 as on NixOS, a v1/v2 hybrid
as in the lab, or pure v1) is read once from /proc/self/mountinfo, never guessed from paths.

CPU: v2 ``cpu.stat`` ``usage_usec``; v1 ``cpuacct.usage`` (ns) when there is no v2 tree or the
unit is missing from it.
Memory: v2 ``memory.stat`` anon + shmem + kernel (or kernel_stack + slab + sock + pagetables on
kernels without a ``kernel`` line); v1 ``memory.stat`` rss + shmem (the hierarchical
``total_*`` figures when present, so child cgroups count) plus ``memory.kmem.usage_in_bytes``
when readable. Both count what the VM costs the host: guest RAM the guest touched (anon, or
shmem with ``memory-backend-memfd,share=on``) and the kernel memory charged to the unit, but
not page cache of image files.
"""

from __future__ import annotations

import dataclasses
import errno
import functools
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tui.host.sampling.reading import Reading

MOUNTINFO = Path("/proc/self/mountinfo")


@dataclass(frozen=True)
class CgroupLayout:
    """Where the cgroup hierarchies are mounted."""

    unified: Path | None = None  # the cgroup2 mount
    unified_root: str = "/"  # the mount's root within the hierarchy (cgroup namespaces)
    v1: dict[str, Path] = field(default_factory=dict)  # controller -> mount point
    v1_roots: dict[str, str] = field(default_factory=dict)
    # Controllers available in the v2 tree (its root's cgroup.controllers); None = unknown.
    unified_controllers: frozenset[str] | None = None

    def v2_has(self, controller: str) -> bool:
        if self.unified is None:
            return False
        return self.unified_controllers is None or controller in self.unified_controllers

    @property
    def kind(self) -> str:
        """ "v2" (unified only), "hybrid" (v1 controllers + a v2 tree), "v1", or "none"."""
        has_v1 = any(c in self.v1 for c in ("cpu", "cpuacct", "memory"))
        if self.unified is not None:
            return "hybrid" if has_v1 else "v2"
        return "v1" if has_v1 else "none"

    def v2_dir(self, control_group: str) -> Path | None:
        if self.unified is None:
            return None
        return _join(self.unified, self.unified_root, control_group)

    def v1_dir(self, controller: str, control_group: str) -> Path | None:
        mount = self.v1.get(controller)
        if mount is None:
            return None
        return _join(mount, self.v1_roots.get(controller, "/"), control_group)


def _join(mount: Path, root: str, control_group: str) -> Path:
    cg = "/" + control_group.strip("/")
    root = "/" + root.strip("/")
    # Inside a cgroup namespace the mount's root is a sub-tree: ControlGroup paths are then
    # relative to that root already, except when they name it in full.
    if root != "/" and (cg == root or cg.startswith(root + "/")):
        cg = cg[len(root) :] or "/"
    return mount / cg.lstrip("/")


def _unescape(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if "\\" not in text:
        return text
    out = []
    i = 0
    while i < len(text):
        if text[i] == "\\" and i + 3 < len(text) and text[i + 1 : i + 4].isdigit():
            out.append(chr(int(text[i + 1 : i + 4], 8)))
            i += 4
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text: str) -> CgroupLayout:
    unified: Path | None = None
    unified_root = "/"
    v1: dict[str, Path] = {}
    v1_roots: dict[str, str] = {}
    for line in text.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields = left.split()
        tail = right.split()
        if len(fields) < 5 or len(tail) < 3:
            continue
        root, mount = _unescape(fields[3]), Path(_unescape(fields[4]))
        fstype, superopts = tail[0], tail[2]
        if fstype == "cgroup2":
            if unified is None:
                unified, unified_root = mount, root
        elif fstype == "cgroup":
            for opt in superopts.split(","):
                if opt in ("cpu", "cpuacct", "memory", "blkio", "pids") and opt not in v1:
                    v1[opt] = mount
                    v1_roots[opt] = root
    return CgroupLayout(unified=unified, unified_root=unified_root, v1=v1, v1_roots=v1_roots)


@functools.cache
def host_layout() -> CgroupLayout:
    """This machine's layout, read once."""
    try:
        layout = parse_mountinfo(MOUNTINFO.read_text())
    except OSError:
        return CgroupLayout()
    if layout.unified is not None:
        try:
            names = (layout.unified / "cgroup.controllers").read_text().split()
        except OSError:
            return layout
        layout = dataclasses.replace(layout, unified_controllers=frozenset(names))
    return layout


# --- parsing ------------------------------------------------------------------------------


def parse_keyed(text: str) -> dict[str, int]:
    """A flat-keyed cgroup file ("key value" per line: cpu.stat, memory.stat)."""
    values: dict[str, int] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                values[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return values


def v2_cpu_usage_ns(cpu_stat: dict[str, int]) -> int | None:
    usec = cpu_stat.get("usage_usec")
    return None if usec is None else usec * 1000


def v2_memory_bytes(memory_stat: dict[str, int]) -> int | None:
    if "anon" not in memory_stat:
        return None
    total = memory_stat["anon"] + memory_stat.get("shmem", 0)
    if "kernel" in memory_stat:
        total += memory_stat["kernel"]
    else:
        total += sum(memory_stat.get(k, 0) for k in ("kernel_stack", "slab", "sock", "pagetables"))
    return total


def v1_memory_bytes(memory_stat: dict[str, int], kmem_usage: int | None = None) -> int | None:
    if "total_rss" in memory_stat:
        total = memory_stat["total_rss"] + memory_stat.get("total_shmem", 0)
    elif "rss" in memory_stat:
        total = memory_stat["rss"] + memory_stat.get("shmem", 0)
    else:
        return None
    return total + (kmem_usage or 0)


# --- reading ------------------------------------------------------------------------------


# How telling a reason is (lower: more): no permission, then an unreadable file, then a cgroup
# that exists but lacks the controller; a cgroup that is nowhere (unit stopped, stale
# ControlGroup) last.
DENIED, UNREADABLE, NO_CONTROLLER, NOT_FOUND = range(4)


def _why(exc: OSError, path: Path) -> tuple[int, str]:
    """Why PATH could not be read, and how telling that is (``DENIED`` ... ``NOT_FOUND``)."""
    if isinstance(exc, PermissionError):
        return DENIED, f"permission denied: {path}"
    if isinstance(exc, FileNotFoundError) or exc.errno == errno.ENODEV:
        if path.parent.is_dir():
            return NO_CONTROLLER, f"{path.name} missing: controller not enabled in {path.parent}"
        return NOT_FOUND, f"cgroup not found: {path.parent}"
    return UNREADABLE, f"cannot read {path}: {exc.strerror or exc}"


def _first(candidates: Iterable[tuple[Path | None, str]]) -> tuple[Path, str, str] | str:
    """The first candidate file that reads, as (path, text, label); else the best reason."""
    reasons: list[tuple[int, str]] = []
    for path, label in candidates:
        if path is None:
            continue
        try:
            return path, path.read_text(), label
        except OSError as exc:
            reasons.append(_why(exc, path))
    if not reasons:
        return "no cgroup hierarchy with this controller is mounted"
    return min(reasons, key=lambda r: r[0])[1]  # the most telling; the first of equals


def read_cpu_usage_ns(
    control_group: str | None, layout: CgroupLayout | None = None
) -> Reading[int]:
    """Total CPU time (ns) the unit's processes used since the cgroup was made."""
    if not control_group:
        return Reading.fail("the unit has no ControlGroup")
    layout = layout or host_layout()
    v2 = layout.v2_dir(control_group)
    v1 = layout.v1_dir("cpuacct", control_group)
    found = _first(
        [
            (v2 / "cpu.stat" if v2 else None, "cgroup v2 cpu.stat"),
            (v1 / "cpuacct.usage" if v1 else None, "cgroup v1 cpuacct.usage"),
        ]
    )
    if isinstance(found, str):
        return Reading.fail(found)
    path, text, label = found
    if path.name == "cpu.stat":
        value = v2_cpu_usage_ns(parse_keyed(text))
    else:
        try:
            value = int(text.strip())
        except ValueError:
            value = None
    if value is None:
        return Reading.fail(f"cannot parse {path}")
    return Reading.of(value, label)


def process_v1_cgroup(pid: int, controller: str) -> str | None:
    """PID's cgroup in the v1 hierarchy of CONTROLLER, from /proc/PID/cgroup; None if unknown."""
    try:
        with open(f"/proc/{pid}/cgroup", encoding="utf-8", errors="replace") as fh:
            text = fh.read(64 << 10)
    except OSError:
        return None
    for line in text.splitlines():
        _id, _sep, rest = line.partition(":")
        controllers, _sep, path = rest.partition(":")
        if controller in controllers.split(","):
            return path or None
    return None


def read_memory_bytes(
    control_group: str | None, layout: CgroupLayout | None = None, pid: int | None = None
) -> Reading[int]:
    """Host memory charged to the unit (see the module docstring for the formula).

    PID (the unit's main process): on a v1 memory hierarchy the unit's cgroup may sit under
    another root than in the v2 / name=systemd tree (a manager inside a container or a
    delegated sub-tree): the process's own v1 memory cgroup is then used, when it is the
    unit's (it ends with the unit's cgroup name) and not a cgroup shared with other processes."""
    if not control_group:
        return Reading.fail("the unit has no ControlGroup")
    layout = layout or host_layout()
    # On a hybrid the memory controller lives on v1 and the v2 tree has no memory.stat.
    v2 = layout.v2_dir(control_group) if layout.v2_has("memory") else None
    v1 = layout.v1_dir("memory", control_group)
    candidates = [
        (v2 / "memory.stat" if v2 else None, "cgroup v2 memory.stat"),
        (v1 / "memory.stat" if v1 else None, "cgroup v1 memory.stat"),
    ]
    shared: str | None = None
    if pid is not None and "memory" in layout.v1:
        own = process_v1_cgroup(pid, "memory")
        unit_leaf = control_group.rstrip("/").rsplit("/", 1)[-1]
        if own and own.rstrip("/").rsplit("/", 1)[-1] == unit_leaf:
            own_dir = layout.v1_dir("memory", own)
            if own != control_group and own_dir is not None:
                candidates.append((own_dir / "memory.stat", "cgroup v1 memory.stat"))
        elif own:
            shared = f"its process is in {own} of the v1 memory hierarchy, not a cgroup of its own"
    found = _first(candidates)
    if isinstance(found, str):
        return Reading.fail(shared or found)
    path, text, label = found
    stats = parse_keyed(text)
    if label.startswith("cgroup v2"):
        value = v2_memory_bytes(stats)
    else:
        kmem = None
        try:
            kmem = int((path.parent / "memory.kmem.usage_in_bytes").read_text().strip())
            label += " + kmem"
        except (OSError, ValueError):
            pass
        value = v1_memory_bytes(stats, kmem)
    if value is None:
        return Reading.fail(f"cannot parse {path}")
    return Reading.of(value, label)
