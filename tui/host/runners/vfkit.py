"""vfkit command lines (lib/runners/vfkit.nix, macOS).

With a control socket, microvm.nix wraps vfkit in ``bash -c '...'`` so that a relative socket
path can be made absolute at start: the inner script sets ``SOCKET_ABS=SOCK``, prefixes
``$PWD`` when it is relative, then runs ``exec vfkit ... --restful-uri "unix:///$SOCKET_ABS"``.
The socket reported is SOCK as written (relative to the state directory, which is ``$PWD``).
"""

from __future__ import annotations

from tui.host.model import NicSpec, RunnerSpec, SerialSpec, ShareSpec, VolumeSpec
from tui.host.runners._options import (
    OptionTable,
    Opts,
    basename,
    is_store_disk,
    iter_options,
    names,
    not_understood,
    parse_count,
    parse_mib,
    parse_opts,
    short,
    unreadable,
)
from tui.host.runners.runscript import extract_assignments, extract_command
from tui.host.runners.shellwords import RunnerParseError

VFKIT_OPTIONS = OptionTable(
    program="vfkit",
    flags=names("--gui --version -v --help -h"),
    single=names(
        """--cpus --memory --log-level --bootloader --kernel --initrd --kernel-cmdline --device
        --restful-uri --timesync --ignition --cloud-init --pidfile"""
    ),
    long_equals=True,
)

_SOCKET_VARIABLE = "SOCKET_ABS"
_SHELLS = ("bash", "sh")


def _long_dashes(argv: list[str]) -> list[str]:
    """Go's flag package takes ``-cpus`` and ``--cpus`` alike; use the ``--`` spelling."""
    return [
        f"-{arg}" if arg.startswith("-") and not arg.startswith("--") and len(arg) > 2 else arg
        for arg in argv
    ]


def _unwrap_shell(argv: list[str], spec: RunnerSpec) -> tuple[list[str], dict[str, str]]:
    """The vfkit argv inside ``bash -c SCRIPT`` and the script's assignments."""
    if len(argv) >= 3 and basename(argv[0]) in _SHELLS and argv[1] == "-c":
        try:
            return extract_command(argv[2]), extract_assignments(argv[2])
        except RunnerParseError as e:
            reason = short(str(e), 120)
            spec.problems.append(f"could not read the script vfkit is started from: {reason}")
            return [], {}
    return argv, {}


def _socket(uri: str, assignments: dict[str, str], problems: list[str]) -> str | None:
    if f"${_SOCKET_VARIABLE}" in uri or f"${{{_SOCKET_VARIABLE}}}" in uri:
        socket = assignments.get(_SOCKET_VARIABLE)
        if socket is None:
            problems.append("the vfkit socket path comes from a variable the script never sets")
        return socket
    if uri.startswith("unix://"):
        return uri[len("unix://") :] or None
    problems.append(f"the vfkit REST API '{short(uri)}' is not on a unix socket")
    return None


def _disk(opts: Opts) -> VolumeSpec | None:
    path = opts.get("path")
    if not path or is_store_disk(path):
        return None
    return VolumeSpec(image=path, read_only=bool(opts.flag("readonly")))


def _net(opts: Opts, index: int) -> NicSpec:
    """vfkit NICs carry no interface name; they are called net0, net1, ... here."""
    mac = opts.get("mac")
    if "nat" in opts.words:
        return NicSpec(id=f"net{index}", type="user", mac=mac)
    if opts.get("unixsocketpath"):
        return NicSpec(id=opts.get("unixsocketpath") or "", type="socket", mac=mac)
    return NicSpec(id=f"net{index}", type="unknown", mac=mac)


def _serial(opts: Opts) -> SerialSpec:
    if "stdio" in opts.words:
        return SerialSpec(kind="stdio")
    if "pty" in opts.words:
        return SerialSpec(kind="pty")
    if opts.get("logfilepath"):
        return SerialSpec(kind="file", path=opts.get("logfilepath"))
    return SerialSpec(kind="unknown")


def _device(value: str, spec: RunnerSpec) -> None:
    opts = parse_opts(value)
    kind = opts.first_word() or ""
    match kind:
        case "virtio-blk" | "nvme" | "usb-mass-storage":
            volume = _disk(opts)
            if volume:
                spec.volumes.append(volume)
        case "virtio-fs":
            tag = opts.get("mounttag")
            if tag:
                spec.shares.append(
                    ShareSpec(tag=tag, proto="virtiofs", source=opts.get("shareddir"))
                )
            else:
                spec.problems.append(f"a vfkit virtio-fs device has no mountTag: '{short(value)}'")
        case "virtio-net":
            spec.nics.append(_net(opts, len(spec.nics)))
        case "virtio-serial":
            if spec.serial is None or spec.serial.kind == "null":
                spec.serial = _serial(opts)
        case "virtio-balloon":
            spec.balloon = True


def parse(argv: list[str]) -> RunnerSpec:
    spec = RunnerSpec(hypervisor="vfkit", balloon=False, serial=SerialSpec(kind="null"))
    argv, assignments = _unwrap_shell(argv, spec)
    if not argv:
        if not spec.problems:
            spec.problems.append("the runner's command line is empty")
        return spec
    spec.binary = argv[0]
    if basename(argv[0]) != "vfkit":
        spec.problems.append(
            f"the runner starts '{short(basename(argv[0]))}', which does not look like vfkit"
        )
    problems = spec.problems
    for option, values in iter_options(_long_dashes(argv[1:]), VFKIT_OPTIONS, problems):
        value = values[0] if values else ""
        match option:
            case "":
                problems.append(not_understood("vfkit", value))
            case "--cpus":
                spec.vcpu = parse_count(value)
                if spec.vcpu is None:
                    problems.append(unreadable("number of vCPUs", "--cpus", value))
            case "--memory":
                spec.mem_mib = parse_mib(value)
                if spec.mem_mib is None:
                    problems.append(unreadable("memory size", "--memory", value))
            case "--restful-uri":
                spec.socket = _socket(value, assignments, problems)
            case "--device":
                _device(value, spec)
    return spec
