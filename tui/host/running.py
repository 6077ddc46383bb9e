"""The running hypervisor's real command line: ``/proc/PID/cmdline`` of the VM's unit.

A runner script may build its argv at run time (``runtime_args=$(extraArgsScript)``, bash
arrays, ``$MICROVM_VCPU``), and ``booted`` may differ from ``current``; for a running VM the
process itself says what runs. This module finds the unit's hypervisor process (MainPID, or a
child of it when MainPID is a wrapper that forks), checks it belongs to the unit (its cgroup
is the unit's: a recycled pid is refused), reads its argv (bounded) and parses it with the
same per-hypervisor parser as the script. Facts the argv does not hold (firecracker keeps
them in its config file) stay from the script and say so.
"""

from __future__ import annotations

import dataclasses
import os
from functools import lru_cache

from tui.host.model import VM, RunnerSpec
from tui.host.runners._options import short

MAX_CMDLINE_BYTES = 256 * 1024  # microvm.nix command lines are a few KiB
MAX_PROC_FILE = 64 * 1024  # /proc/PID/cgroup, /proc/PID/task/PID/children
MAX_CHILDREN = 16
RUNNING_STATES = frozenset({"active", "reloading", "deactivating"})

# The program names each hypervisor runs as (basename prefixes).
PROGRAMS: dict[str, tuple[str, ...]] = {
    "qemu": ("qemu-system-", "qemu-kvm"),
    "cloud-hypervisor": ("cloud-hypervisor",),
    "firecracker": ("firecracker",),
    "crosvm": ("crosvm",),
    "kvmtool": ("lkvm", "vm", "lkvm-static"),
    "stratovirt": ("stratovirt",),
    "alioth": ("alioth",),
    "vfkit": ("vfkit",),
}


class ProcessReadError(Exception):
    """The running process could not be read or is not the VM's hypervisor (the reason)."""


def _read_proc(path: str, limit: int) -> bytes:
    """A /proc file, at most LIMIT bytes (more: ProcessReadError). Procfs files are
    generated on read and never block; no O_NOFOLLOW: /proc/PID is the kernel's own."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK)
    except FileNotFoundError:
        raise ProcessReadError("the process has gone") from None
    except OSError as exc:
        raise ProcessReadError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        chunks: list[bytes] = []
        size = 0
        while size <= limit:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except ProcessLookupError:
        raise ProcessReadError("the process has gone") from None
    except OSError as exc:
        raise ProcessReadError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if size > limit:
        raise ProcessReadError(f"{path} is longer than {limit} bytes")
    return b"".join(chunks)


def read_cmdline(pid: int) -> list[str]:
    """The argv of PID (undecodable bytes kept as surrogate escapes, like os.fsdecode)."""
    data = _read_proc(f"/proc/{pid}/cmdline", MAX_CMDLINE_BYTES)
    if not data:
        # a zombie, a kernel thread, or a process in execve (its new argv is not set up yet)
        raise ProcessReadError(f"process {pid} has no command line (yet)")
    return [os.fsdecode(word) for word in data.rstrip(b"\0").split(b"\0")]


def in_cgroup(pid: int, control_group: str) -> bool:
    """Whether PID is in CONTROL_GROUP (systemd's ControlGroup) or below it, in any
    hierarchy /proc/PID/cgroup lists (v1, v2 or both)."""
    text = _read_proc(f"/proc/{pid}/cgroup", MAX_PROC_FILE).decode("utf-8", "replace")
    group = control_group.rstrip("/")
    for line in text.splitlines():
        path = line.split(":", 2)[-1]
        if path == group or path.startswith(group + "/"):
            return True
    return False


def _exe(pid: int) -> str | None:
    try:
        target = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        return None  # not root, or a kernel thread
    return target.removesuffix(" (deleted)")


def _children(pid: int) -> list[int]:
    try:
        text = _read_proc(f"/proc/{pid}/task/{pid}/children", MAX_PROC_FILE).decode()
    except (ProcessReadError, UnicodeDecodeError):
        return []
    return [int(p) for p in text.split()[:MAX_CHILDREN] if p.isdigit()]


def is_program(path: str | None, hypervisor: str) -> bool:
    if not path:
        return False
    name = path.rstrip("/").rsplit("/", 1)[-1]
    return any(
        name == prefix or (prefix.endswith("-") and name.startswith(prefix))
        for prefix in PROGRAMS.get(hypervisor, ())
    )


@dataclasses.dataclass(frozen=True)
class HypervisorProcess:
    pid: int
    argv: list[str]  # argv[0] is the program's path when /proc/PID/exe could be read
    exe: str | None


def find_hypervisor(main_pid: int, control_group: str | None, hypervisor: str) -> HypervisorProcess:
    """The hypervisor process of a unit whose MainPID is MAIN_PID: MainPID itself when it is
    the hypervisor (``exec`` all the way, ``ip netns exec`` too), else a child of it that
    is. Raises ProcessReadError when there is none or it cannot be shown to be the unit's."""
    if not control_group:
        raise ProcessReadError("systemd gave no ControlGroup to check the process against")
    if not in_cgroup(main_pid, control_group):
        raise ProcessReadError(f"process {main_pid} is not in the unit's cgroup")
    exe = _exe(main_pid)
    argv = read_cmdline(main_pid)
    if is_program(exe, hypervisor) or (exe is None and is_program(argv[0], hypervisor)):
        return HypervisorProcess(main_pid, argv, exe)
    for child in _children(main_pid):
        try:
            child_exe = _exe(child)
            if is_program(child_exe, hypervisor) and in_cgroup(child, control_group):
                return HypervisorProcess(child, read_cmdline(child), child_exe)
        except ProcessReadError:
            continue
    if exe is None:
        # Not root: the program cannot be seen; MainPID is the unit's, take its argv.
        return HypervisorProcess(main_pid, argv, None)
    raise ProcessReadError(
        f"neither process {main_pid} ({short(os.path.basename(exe))}) nor a child of it "
        f"runs {hypervisor}"
    )


@lru_cache(maxsize=512)
def _parse(hypervisor: str, argv: tuple[str, ...]) -> RunnerSpec:
    from tui.host.runners.dispatch import PARSERS

    return PARSERS[hypervisor](list(argv))


def parse_process(
    proc: HypervisorProcess, hypervisor: str, script: RunnerSpec | None
) -> RunnerSpec:
    """PROC's argv through HYPERVISOR's parser. The spec is shared between polls (the same
    argv is parsed once): read it, never change it.

    argv[0] becomes the program's path: with ``exec -a microvm@NAME`` it is the process name.
    """
    argv = list(proc.argv)
    program = proc.exe or (script.binary if script else None)
    if program and not is_program(argv[0], hypervisor):
        argv[0] = program
    return _parse(hypervisor, tuple(argv))


# --- putting the process's facts on the VM ---------------------------------------------------


def _fd_names(spec: RunnerSpec, script: RunnerSpec) -> None:
    """Macvtap NICs known only as ``fd:N``: the script's parse named them (from its
    ``exec N<>/dev/tap...`` lines); match them by MAC. (New NicSpecs: the parses are shared.)"""
    if not any(nic.id.startswith("fd:") for nic in spec.nics):
        return
    by_mac = {nic.mac: nic.id for nic in script.nics if nic.mac and not nic.id.startswith("fd:")}
    spec.nics = [
        dataclasses.replace(nic, id=by_mac[nic.mac])
        if nic.id.startswith("fd:") and nic.mac in by_mac
        else nic
        for nic in spec.nics
    ]


def _described(value: object) -> str:
    if isinstance(value, list):
        return f"{len(value)} item{'s' * (len(value) != 1)}"
    return short(str(value), 300)


def merge(process: RunnerSpec, script: RunnerSpec | None) -> tuple[RunnerSpec, dict[str, str]]:
    """The process's facts, each missing one taken from the script; and each fact's source.
    A new spec whose values are shared with the two given (apply_spec copies what it keeps)."""
    merged = dataclasses.replace(process)
    sources: dict[str, str] = {}
    pairs = {
        "vcpu": "vcpu", "mem_mib": "mem_mib", "socket": "socket", "vsock_cid": "vsock_cid",
        "balloon": "balloon", "serial": "serial", "nics": "interfaces", "shares": "shares",
        "volumes": "volumes",
    }  # fmt: skip
    for spec_field, vm_field in pairs.items():
        value = getattr(process, spec_field)
        if (value is None or value == []) and script is not None:
            fallback = getattr(script, spec_field)
            if fallback is not None and fallback != []:
                setattr(merged, spec_field, fallback)
                sources[vm_field] = "script"
                continue
        sources[vm_field] = "process"
    return merged, sources


def use_process(vm: VM, proc: HypervisorProcess) -> None:
    """Set VM's command-line facts from its running hypervisor PROC."""
    from tui.host.statedir import RunnerParse, apply_spec

    parsed = vm.runner_parse
    if not isinstance(parsed, RunnerParse) or vm.hypervisor is None:
        return
    script = parsed.spec
    spec = parse_process(proc, vm.hypervisor, script)
    merged, sources = merge(spec, script)
    if script is not None:
        _fd_names(merged, script)
    before = {name: getattr(vm, name) for name in sources}
    apply_spec(vm, merged, parsed.share, str(vm.path))
    vm.facts_from = "process"
    vm.fact_sources = sources
    vm.hypervisor_pid = proc.pid
    vm.process_note = None
    # A fact the script states (not None, not empty) that the process contradicts: `current`
    # is not what runs (drift), or the script's static read was wrong.
    vm.current_differs = {
        name: _described(value)
        for name, value in before.items()
        if sources[name] == "process" and value not in (None, []) and value != getattr(vm, name)
    }
    # What the script could not say is known now, except for facts still from the script.
    if all(source == "process" for source in sources.values()):
        vm.not_known_statically = []
    vm.problems.extend(f"running process: {p}" for p in spec.problems)


def attach_processes(vms: list[VM]) -> None:
    """For every VM whose unit runs, read its hypervisor's command line (see module doc)."""
    for vm in vms:
        unit = vm.unit
        if unit is None or unit.active not in RUNNING_STATES or not unit.main_pid:
            continue
        if vm.hypervisor not in PROGRAMS or vm.runner_parse is None:
            continue
        try:
            proc = find_hypervisor(unit.main_pid, unit.control_group, vm.hypervisor)
        except ProcessReadError as exc:
            vm.process_note = str(exc)
            continue
        use_process(vm, proc)
