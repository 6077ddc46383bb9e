"""Read one VM's state directory (``/var/lib/microvms/NAME``) into a ``VM``.

Nothing here raises for a broken VM: whatever is wrong becomes a plain sentence in
``vm.problems`` and the fields that could not be read stay ``None``.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import stat
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from tui.host.model import VM, Drift, Interface, NicSpec, RunnerSpec, Share, Volume
from tui.host.names import name_problem
from tui.host.runners.sharefiles import ShareDir, read_share_dir
from tui.host.safefs import NotRegularFile, TooLarge, read_regular

MAX_SCRIPT_BYTES = 1 << 20  # a runner script is a few KiB; anything huge is not one
MAX_FLAKE_BYTES = 64 << 10


# The hot path (every VM, every poll of the monitor) works on str paths: pathlib objects cost
# more than the system calls they wrap.


class _LinkInfo:
    __slots__ = ("problem", "resolved", "target")

    def __init__(self, target: str | None, resolved: str | None, problem: str | None) -> None:
        self.target = target
        self.resolved = resolved
        self.problem = problem


def _oserror(exc: OSError) -> str:
    return exc.strerror or str(exc)


def read_link(vm_dir: str, name: str) -> _LinkInfo | None:
    """State of the symlink NAME in VM_DIR; None when it does not exist at all."""
    path = f"{vm_dir}/{name}"
    try:
        target = os.readlink(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # exists but is not a symlink
            if os.path.isdir(path):
                return _LinkInfo(path, path, f"'{name}' is a directory, not a symlink")
            return _LinkInfo(None, None, f"'{name}' is not a symlink")
        return _LinkInfo(None, None, f"cannot read '{name}': {_oserror(exc)}")
    try:
        resolved = _follow(path, target)
    except FileNotFoundError:
        return _LinkInfo(target, None, f"'{name}' points to {target}, which does not exist")
    except RuntimeError:
        return _LinkInfo(target, None, f"'{name}' is a symlink loop")
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return _LinkInfo(target, None, f"'{name}' is a symlink loop")
        return _LinkInfo(target, None, f"cannot follow '{name}': {_oserror(exc)}")
    return _LinkInfo(target, resolved, None)


def _follow(path: str, target: str) -> str:
    """Where the link PATH (reading TARGET) ends. Raises like os.stat for dangling or loops.

    The usual target is an absolute /nix/store path that is no link itself: then the target is
    the answer, with two system calls instead of Path.resolve's walk over every component.
    """
    os.stat(path)  # follows the whole chain: raises FileNotFoundError, or ELOOP for loops
    if os.path.isabs(target) and not os.path.islink(target):
        return os.path.normpath(target)
    return os.path.realpath(path)


def _read_small(path: str | Path, limit: int, *, follow: bool = True) -> str:
    """A small text file: bounded, never a FIFO or device (``safefs.read_regular``); a link
    is followed only with FOLLOW (inside a runner package, which is a tree of links)."""
    return read_regular(path, limit, follow=follow).decode("utf-8", errors="strict")


def _read_problem(what: str, exc: OSError | ValueError) -> str:
    """One line for a file that could not be read: what it is, and why."""
    if isinstance(exc, NotRegularFile | TooLarge):
        return f"{what} {exc.strerror}"
    if isinstance(exc, OSError):
        return f"cannot read {what}: {_oserror(exc)}"
    return f"{what} is not UTF-8 text"


def _absolute(path: str | None, vm_dir: str | Path) -> str | None:
    # microvm@NAME runs with WorkingDirectory=the state dir: relative paths are relative to it.
    if not path:
        return path
    return path if path[0] == "/" else os.path.normpath(os.path.join(vm_dir, path))


def _is_socket(path: str | None) -> bool | None:
    if not path:
        return None
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _exists(path: str | None) -> bool | None:
    if not path:
        return None
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def volume_facts(volume: Volume) -> None:
    """Apparent and allocated size of a volume image; missing images are normal before boot."""
    try:
        st = os.stat(volume.image)
    except FileNotFoundError:
        volume.exists = False
        return
    except OSError:
        volume.exists = None
        return
    volume.exists = True
    volume.size_bytes = st.st_size
    volume.allocated_bytes = st.st_blocks * 512


def _read_flake(vm: VM, vm_dir: str) -> None:
    path = f"{vm_dir}/flake"
    try:
        # Never through a link: `flake -> /root/secret` would echo that file in `list`.
        text = _read_small(path, MAX_FLAKE_BYTES, follow=False)
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        vm.problems.append(_read_problem("the flake file", exc))
        return
    text = text.strip()
    if not text or text.split() != [text] or not text.isprintable():
        vm.problems.append("the flake file does not hold a single flake reference")
        return
    vm.flake = text


@dataclass(frozen=True)
class RunnerParse:
    """What a runner package says about its VM, before anything live is looked at: its
    share/microvm dir and its parsed bin/microvm-run. Shared between polls (``RunnerCache``),
    so nothing in here is ever handed to a VM without being copied."""

    share: ShareDir
    bin: frozenset[str] = frozenset()  # the names in the runner's bin/
    spec: RunnerSpec | None = None  # None: bin/microvm-run could not be read
    script_problem: str | None = None  # why not
    script_missing: bool = False


class RunnerCache:
    """Runner parses for the long-running monitor, least recently used dropped beyond
    MAXSIZE. A Nix store path never changes, so a runner is parsed once, keyed by its resolved
    path (and the VM dir, against which relative paths resolve); a VM whose ``current`` moves
    gets a new key at the next listing. Only runners under IMMUTABLE_ROOTS are kept, and only
    parses that read no file outside them (a firecracker config elsewhere is read every time).
    What is live (volume sizes, share sources and sockets, links, the flake) is never cached.
    """

    def __init__(
        self, maxsize: int = 256, immutable_roots: tuple[str, ...] = ("/nix/store/",)
    ) -> None:
        self.maxsize = maxsize
        self.immutable_roots = immutable_roots
        self.hits = 0
        self.misses = 0
        self._entries: OrderedDict[tuple[str, str], RunnerParse] = OrderedDict()
        self._lock = threading.Lock()
        # For the copy on disk (``parsecache``): what it held, and what was used since.
        self._loaded: frozenset[tuple[str, str]] = frozenset()
        self._used: set[tuple[str, str]] = set()

    def room_for(self, vms: int) -> None:
        """Keep room for the parses of VMS VMs twice over (each VM's runner and the one it
        moves to at a deploy): with fewer, every listing of a big host parses them all again."""
        with self._lock:
            self.maxsize = max(self.maxsize, 2 * vms)

    def immutable(self, path: str) -> bool:
        return any(path.startswith(root) for root in self.immutable_roots)

    def get(self, key: tuple[str, str]) -> RunnerParse | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            self._used.add(key)
            return entry

    def put(self, key: tuple[str, str], entry: RunnerParse) -> None:
        with self._lock:
            self._entries[key] = entry
            self._entries.move_to_end(key)
            self._used.add(key)
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)

    def preload(self, entries: dict[tuple[str, str], RunnerParse]) -> None:
        """Take ENTRIES read from disk: immutable keys with parses only, anything else dropped."""
        with self._lock:
            for key, entry in entries.items():
                if (
                    isinstance(key, tuple)
                    and len(key) == 2
                    and all(isinstance(part, str) for part in key)
                    and self.immutable(key[0])
                    and isinstance(entry, RunnerParse)
                ):
                    self._entries[key] = entry
            while len(self._entries) > self.maxsize:
                self._entries.popitem(last=False)
            self._loaded = frozenset(self._entries)

    def used(self) -> dict[tuple[str, str], RunnerParse]:
        """The entries got or put since the cache was made (those still held)."""
        with self._lock:
            return {key: self._entries[key] for key in self._used if key in self._entries}

    def changed_since_load(self, entries: dict[tuple[str, str], RunnerParse]) -> bool:
        return set(entries) != self._loaded


def parse_runner_dir(vm_dir: Path, runner: Path) -> tuple[RunnerParse, list[str]]:
    """Read RUNNER's share/microvm and bin/microvm-run; also the paths of the other files
    the parse read (a firecracker config)."""
    share = read_share_dir(runner)
    try:
        bin_names = frozenset(os.listdir(runner / "bin"))
    except OSError:
        bin_names = frozenset()
    script = runner / "bin" / "microvm-run"
    try:
        text = _read_small(script, MAX_SCRIPT_BYTES)
    except FileNotFoundError:
        return RunnerParse(share, bin_names, script_missing=True), []
    except (OSError, ValueError) as exc:
        problem = _read_problem("bin/microvm-run", exc)
        return RunnerParse(share, bin_names, script_problem=problem), []

    from tui.host.runners.dispatch import parse_runner  # not needed when every parse is cached

    read: list[str] = []

    def config_reader(path: str) -> str:
        absolute = _absolute(path, vm_dir) or path
        read.append(absolute)
        return _read_small(Path(absolute), MAX_SCRIPT_BYTES)

    spec = parse_runner(text, share.hypervisor or "unknown", config_reader=config_reader)
    return RunnerParse(share, bin_names, spec=spec), read


def _runner_parse(vm_dir: str, runner: str, cache: RunnerCache | None) -> RunnerParse:
    if cache is None:
        return parse_runner_dir(Path(vm_dir), Path(runner))[0]
    key = (runner, vm_dir)
    entry = cache.get(key)
    if entry is None:
        entry, read = parse_runner_dir(Path(vm_dir), Path(runner))
        lasting = entry.script_problem is None  # a read error may be passing
        if lasting and cache.immutable(key[0]) and all(cache.immutable(path) for path in read):
            cache.put(key, entry)
    return entry


def _read_runner(vm: VM, vm_dir: str, runner: str, cache: RunnerCache | None = None) -> None:
    parsed = _runner_parse(vm_dir, runner, cache)
    share = parsed.share
    vm.problems.extend(share.problems)
    hypervisor = share.hypervisor
    if hypervisor is None:
        vm.problems.append(
            "cannot tell the hypervisor: no share/microvm/hypervisor file and the runner "
            "is not named microvm-HYPERVISOR-HOST"
        )
    vm.hypervisor = hypervisor
    vm.runner_bin = parsed.bin

    if parsed.script_missing:
        vm.problems.append("the runner has no bin/microvm-run")
        vm.drift = Drift.BROKEN
        return
    if parsed.spec is None:
        vm.problems.append(parsed.script_problem or "cannot read bin/microvm-run")
        return

    spec = parsed.spec
    vm.problems.extend(spec.problems)
    vm.runner_parse = parsed
    vm.facts_from = "script"
    vm.not_known_statically = list(spec.not_known_statically)
    apply_spec(vm, spec, share, vm_dir)
    vm.fact_sources = {name: "script" for name in FACT_FIELDS}


# The VM fields a command line fills (see VM.fact_sources).
FACT_FIELDS = (
    "vcpu", "mem_mib", "socket", "vsock_cid", "balloon", "serial", "interfaces", "shares",
    "volumes",
)  # fmt: skip


def apply_spec(vm: VM, spec: RunnerSpec, share: ShareDir, vm_dir: str) -> None:
    """Set the VM's command-line facts from SPEC (a script's or a running process's), with
    the live facts that go with them (volume sizes, share sources, sockets)."""
    vm.vcpu = spec.vcpu
    vm.mem_mib = spec.mem_mib
    vm.socket = _absolute(spec.socket, vm_dir)
    vm.balloon = spec.balloon
    vm.vsock_cid = spec.vsock_cid if spec.vsock_cid is not None else share.vsock_cid
    vm.serial = dataclasses.replace(spec.serial) if spec.serial is not None else None
    if vm.serial is not None and vm.serial.path:
        vm.serial.path = _absolute(vm.serial.path, vm_dir)
    vm.pci_devices = list(share.pci_devices)
    vm.usb_devices = list(share.usb_devices)

    vm.interfaces = merge_interfaces(spec.nics, share)

    shares: dict[str, Share] = {}
    for s in spec.shares:
        shares[s.tag] = Share(
            tag=s.tag,
            proto=s.proto,
            source=_absolute(s.source, vm_dir),
            socket=_absolute(s.socket, vm_dir),
            read_only=s.read_only,
        )
    for fs in share.virtiofs:
        entry = shares.setdefault(fs.tag, Share(tag=fs.tag, proto="virtiofs"))
        entry.socket = entry.socket or _absolute(fs.socket, vm_dir)
        entry.source = entry.source or fs.source
    vm.shares = list(shares.values())
    for entry in vm.shares:
        entry.source_exists = _exists(entry.source)
        if entry.proto == "virtiofs":
            entry.socket_exists = _is_socket(entry.socket)

    vm.volumes = [
        Volume(image=_absolute(v.image, vm_dir) or v.image, read_only=v.read_only)
        for v in spec.volumes
    ]
    for volume in vm.volumes:
        volume_facts(volume)


def merge_interfaces(nics: list[NicSpec], share: ShareDir) -> list[Interface]:
    """NICs from the command line, completed by share/microvm's tap and macvtap lists."""
    by_id: dict[str, Interface] = {}
    for nic in nics:
        by_id[nic.id] = Interface(id=nic.id, type=nic.type, mac=nic.mac, link=nic.link)
    for tap in share.tap_interfaces:
        by_id.setdefault(tap, Interface(id=tap, type="tap"))
    for mv in share.macvtap_interfaces:
        entry = by_id.setdefault(mv.id, Interface(id=mv.id, type="macvtap"))
        entry.type = "macvtap"
        entry.mac = entry.mac or mv.mac
        entry.link = mv.link
    return list(by_id.values())


def read_vm(vm_dir: Path, runners: RunnerCache | None = None) -> VM:
    """Everything the state dir itself says about one VM (no systemd, no netlink).

    RUNNERS: parses of runner packages to reuse (the monitor's; ``list`` parses afresh)."""
    vm = VM(name=vm_dir.name, path=vm_dir)
    problem = name_problem(vm.name)
    if problem:
        vm.name_valid = False
        vm.problems.append(problem)
    where = str(vm_dir)

    try:
        os.listdir(where)
    except OSError as exc:
        vm.problems.append(f"cannot read the state dir: {_oserror(exc)}")
        return vm

    current = read_link(where, "current")
    booted = read_link(where, "booted")
    old = read_link(where, "old")
    toplevel = read_link(where, "toplevel")

    for info in (current, booted, old, toplevel):
        if info is not None and info.problem:
            vm.problems.append(info.problem)
    if current is None:
        vm.problems.append("no 'current' runner link")

    vm.runner = _where(current)
    vm.booted = _where(booted)
    vm.old = _where(old)
    if toplevel is not None:
        vm.declarative = True
        vm.toplevel = _where(toplevel)

    _read_flake(vm, where)

    runner = current.resolved if current is not None else None
    usable = runner is not None and os.path.isdir(runner)
    if runner is not None and not usable:
        vm.problems.append("'current' does not point to a runner package directory")
    if usable:
        assert runner is not None
        vm.drift = Drift.NOT_BOOTED
        _read_runner(vm, where, runner, runners)
        if vm.drift is not Drift.BROKEN and booted is not None:
            vm.drift = Drift.CURRENT if vm.booted == vm.runner else Drift.STALE
    else:
        vm.drift = Drift.BROKEN
    return vm


def _where(link: _LinkInfo | None) -> str | None:
    """Where a link leads: its resolved target, else what it says (dangling, a loop)."""
    if link is None:
        return None
    return link.resolved or link.target
