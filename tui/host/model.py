"""Plain dataclasses describing a microvm.nix host, as read from disk and systemd.

Everything the UI shows comes through these types. ``None`` always means "unknown"; where a
value could not be read the reason goes into the owning object's ``problems`` list (or a
``*_error`` field) so the UI can say *why* a cell is empty.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

HYPERVISORS = (
    "qemu",
    "cloud-hypervisor",
    "firecracker",
    "crosvm",
    "kvmtool",
    "stratovirt",
    "alioth",
    "vfkit",
)


class Drift(StrEnum):
    """How the runner that runs compares to the one that will run next (no nix evaluation)."""

    CURRENT = "current"  # booted == current
    STALE = "stale"  # booted != current: restart to apply
    NOT_BOOTED = "not-booted"  # no booted link: the VM is not running
    BROKEN = "broken"  # no usable current runner


# --- what the runner declares (parsed from bin/microvm-run and share/microvm) -------------


@dataclass
class NicSpec:
    id: str
    type: str  # "tap", "macvtap", "user", "bridge", ...
    mac: str | None = None
    link: str | None = None  # macvtap parent link
    mode: str | None = None  # macvtap mode


@dataclass
class ShareSpec:
    tag: str
    proto: str  # "9p" or "virtiofs"
    source: str | None = None
    socket: str | None = None  # virtiofs: vhost-user socket path (absolute once resolved)
    read_only: bool | None = None


@dataclass
class VolumeSpec:
    image: str
    read_only: bool | None = None


@dataclass
class SerialSpec:
    """Where the guest's serial console goes, per the runner's arguments."""

    kind: str  # "stdio", "unix", "pty", "tty", "file", "null", "unknown"
    path: str | None = None  # unix socket / file path, if any
    server: bool | None = None  # unix socket: the hypervisor listens


@dataclass
class RunnerSpec:
    """What one runner's command line says. Filled by ``tui.host.runners.parse_runner``."""

    hypervisor: str
    binary: str | None = None
    vcpu: int | None = None
    mem_mib: int | None = None
    socket: str | None = None  # control socket, as written (maybe relative)
    volumes: list[VolumeSpec] = field(default_factory=list)
    shares: list[ShareSpec] = field(default_factory=list)
    nics: list[NicSpec] = field(default_factory=list)
    balloon: bool | None = None
    vsock_cid: int | None = None
    serial: SerialSpec | None = None
    config_file: str | None = None  # firecracker --config-file
    problems: list[str] = field(default_factory=list)
    # What a static read of the script cannot know (a variable, a conditional array, arguments
    # computed at run time): short phrases like "$MICROVM_VCPU". Empty for a process's argv.
    not_known_statically: list[str] = field(default_factory=list)


# --- live state -------------------------------------------------------------------------


# UnitState.active before systemd was asked: the app shows state-dir facts first.
PENDING = "pending"
ASKING = "systemd has not answered yet"  # the error of a PENDING unit


@dataclass
class UnitState:
    name: str
    load: str | None = None  # loaded / not-found / ...; None: not loaded (not asked) or unknown
    # active / inactive / failed / activating / ... / "unknown" / PENDING
    active: str | None = None
    sub: str | None = None
    main_pid: int | None = None
    restarts: int | None = None
    control_group: str | None = None
    exec_main_status: int | None = None
    active_enter_usec: int | None = None  # ActiveEnterTimestamp, µs since the epoch
    result: str | None = None
    error: str | None = None  # why the state is unknown


@dataclass
class Interface:
    id: str
    type: str
    mac: str | None = None
    link: str | None = None
    exists: bool | None = None
    oper_state: str | None = None  # "UP", "DOWN", "LOWER_LAYER_DOWN", ...
    error: str | None = None


@dataclass
class Share:
    tag: str
    proto: str
    source: str | None = None
    socket: str | None = None
    read_only: bool | None = None
    source_exists: bool | None = None
    socket_exists: bool | None = None


@dataclass
class Volume:
    image: str
    read_only: bool | None = None
    exists: bool | None = None
    size_bytes: int | None = None
    allocated_bytes: int | None = None


@dataclass
class VM:
    name: str
    path: Path
    hypervisor: str | None = None
    runner: str | None = None  # resolved target of `current`
    booted: str | None = None
    old: str | None = None
    declarative: bool = False
    toplevel: str | None = None
    flake: str | None = None
    drift: Drift = Drift.BROKEN
    vcpu: int | None = None
    mem_mib: int | None = None
    socket: str | None = None  # absolute control socket path
    vsock_cid: int | None = None
    balloon: bool | None = None
    serial: SerialSpec | None = None
    unit: UnitState | None = None
    helper_units: list[UnitState] = field(default_factory=list)
    interfaces: list[Interface] = field(default_factory=list)
    shares: list[Share] = field(default_factory=list)
    volumes: list[Volume] = field(default_factory=list)
    pci_devices: list[str] = field(default_factory=list)
    usb_devices: list[str] = field(default_factory=list)
    # Programs in the runner's bin/ (tap-up, virtiofsd-run...): which helper units apply.
    runner_bin: frozenset[str] = frozenset()
    name_valid: bool = True
    problems: list[str] = field(default_factory=list)
    # Where the command-line facts (vcpu, mem_mib, socket, vsock_cid, balloon, serial,
    # interfaces, shares, volumes) come from, per field: "process" (/proc/PID/cmdline of the
    # running hypervisor, i.e. what ``booted`` runs) or "script" (bin/microvm-run of
    # ``current``, read without running it). ``facts_from`` is "process" when the running
    # process was read, "script" otherwise (None: neither could be read).
    facts_from: str | None = None
    fact_sources: dict[str, str] = field(default_factory=dict)
    hypervisor_pid: int | None = None  # the process the facts were read from
    process_note: str | None = None  # why the running process was not read, if it was not
    not_known_statically: list[str] = field(default_factory=list)  # see RunnerSpec
    # `current`'s script says otherwise than the running process: field -> the script's value.
    current_differs: dict[str, str] = field(default_factory=dict)
    # The runner parse the facts were read from (a statedir.RunnerParse, shared: read only),
    # kept so the running process's facts can be completed from it.
    runner_parse: object | None = field(
        default=None, repr=False, compare=False, metadata={"transient": True}
    )


@dataclass
class Inventory:
    """One listing of a state dir."""

    state_dir: Path
    vms: list[VM] = field(default_factory=list)
    systemd_error: str | None = None  # systemd could not be asked (at all, or about some units)
    systemd_note: str | None = None  # systemd was asked another way than usual, and why
    error: str | None = None  # set when the state dir itself cannot be read
    # VMs whose state dirs are not read yet (a big host's first look: a screenful first);
    # not in VMS. 0: every VM is in.
    unread: int = 0
