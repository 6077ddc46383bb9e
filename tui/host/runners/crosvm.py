"""crosvm command lines (lib/runners/crosvm.nix): ``crosvm run [OPTIONS] KERNEL``."""

from __future__ import annotations

import re

from tui.host.model import NicSpec, RunnerSpec, SerialSpec, ShareSpec, VolumeSpec
from tui.host.runners._options import (
    OptionTable,
    Opts,
    basename,
    fd_nic_id,
    first_int,
    is_store_disk,
    iter_options,
    names,
    parse_count,
    parse_mib,
    parse_opts,
    short,
    unreadable,
)

CROSVM_OPTIONS = OptionTable(
    program="crosvm",
    flags=names(
        """--no-balloon --balloon-page-reporting --disable-sandbox --no-smt --no-usb --no-rng
        --no-i8042 --no-rtc --split-irqchip --protected-vm --protected-vm-without-firmware
        --hugepages --no-legacy --host-cpu-topology --delay-rt --software-tpm --vtpm-proxy
        --unmap-guest-memory-on-fork --enable-pnp-data --privileged-vm --virt-cpufreq --s2idle
        --strict-balloon --no-pmu --per-vm-core-scheduling --disable-virtio-intx --enable-hwp
        --itmt --force-s2idle --balloon-wss-reporting --no-virtio-pci -h --help"""
    ),
    single=names(
        """-m --mem -c --cpus --serial -p --params -r --root --rwroot --block --disk --rwdisk
        --rw-pmem-device --pmem-device --pmem --vhost-user --vhost-user-fs --shared-dir
        --pivot-root -s --socket --net --tap-name --tap-fd --mac --host-ip --netmask --vsock
        --cid -i --initrd --vfio --vfio-platform --gpu --gpu-display --android-fstab
        --syslog-tag --seccomp-policy-dir --plugin --cpu-affinity --cpu-cluster --cpu-capacity
        --swiotlb --bios --pflash --kvm-device --balloon-bias-mib --balloon-control --sound
        --cras-snd --input --evdev --single-touch --multi-touch --trackpad --mouse --keyboard
        --switches --rotary --battery --file-backed-mapping --hypervisor --name --boot-cpu
        --vcpu-cgroup-path --gdb --userspace-msr --core-scheduling --pcie-root-port
        --vhost-user-connect-timeout-ms --pvclock --fdt-position --dump-device-tree-blob
        --params-from-file --device-tree-overlay --restore --suspended --smbios
        --vhost-scmi --irq-chip"""
    ),
    long_equals=True,
)


_DEFAULT_VIRTIOFS_SOCKET_RE = re.compile(r"-virtiofs-([^/]+)\.sock$")


def _mem(value: str, problems: list[str]) -> int | None:
    opts = parse_opts(value)
    size = opts.get("size") or opts.first_word()
    mib = parse_mib(size) if size else None  # crosvm sizes are MiB
    if mib is None:
        problems.append(unreadable("memory size", "-m", value))
    return mib


def _cpus(value: str, problems: list[str]) -> int | None:
    opts = parse_opts(value)
    text = opts.get("num-cores") or opts.first_word()
    count = parse_count(text) if text else None
    if count is None:
        problems.append(unreadable("number of vCPUs", "-c", value))
    return count


def _block(value: str, read_only_default: bool) -> VolumeSpec | None:
    opts = parse_opts(value)
    path = opts.get("path") or opts.first_word()
    if not path or is_store_disk(path):
        return None
    read_only = opts.flag("ro", "read-only")
    return VolumeSpec(image=path, read_only=read_only_default if read_only is None else read_only)


def _vhost_user(value: str) -> ShareSpec | None:
    """``--vhost-user type=fs,socket=S`` (or ``fs,socket=S``): virtiofs served by virtiofsd.

    The tag is not on crosvm's command line (virtiofsd announces it). It is taken from
    microvm.nix's default socket name ``HOST-virtiofs-TAG.sock``; with a custom socket name
    it stays empty, to be matched to share/microvm/virtiofs/TAG/socket by socket path.
    """
    opts = parse_opts(value)
    kind = opts.get("type") or opts.first_word()
    if kind != "fs":
        return None
    socket = opts.get("socket")
    m = _DEFAULT_VIRTIOFS_SOCKET_RE.search(socket or "")
    return ShareSpec(tag=m.group(1) if m else "", proto="virtiofs", socket=socket)


def _vhost_user_fs(value: str) -> ShareSpec:
    """Older ``--vhost-user-fs SOCKET:TAG``."""
    socket, _, tag = value.rpartition(":")
    return ShareSpec(tag=tag, proto="virtiofs", socket=socket or None)


def _shared_dir(value: str, problems: list[str]) -> ShareSpec | None:
    """``--shared-dir SOURCE:TAG[:type=p9|fs][:key=value...]``."""
    parts = value.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        problems.append(f"could not read the shared directory '--shared-dir {short(value)}'")
        return None
    extra = parse_opts(",".join(parts[2:]))
    proto = "virtiofs" if extra.get("type") == "fs" else "9p"
    # microvm.nix refuses read-only 9p shares on crosvm, so these are writable
    return ShareSpec(tag=parts[1], proto=proto, source=parts[0], read_only=False)


def _net(value: str) -> NicSpec:
    opts = parse_opts(value)
    mac = opts.get("mac")
    if opts.get("tap-name"):
        return NicSpec(id=opts.get("tap-name") or "", type="tap", mac=mac)
    if opts.get("tap-fd"):
        # microvm.nix passes macvtap as an already opened fd
        return NicSpec(id=fd_nic_id(first_int(opts.get("tap-fd") or "")), type="macvtap", mac=mac)
    return NicSpec(id="(auto)", type="tap", mac=mac)  # crosvm makes its own tap


def _vsock(value: str, problems: list[str]) -> int | None:
    opts = parse_opts(value)
    text = opts.get("cid") or opts.first_word()
    cid = parse_count(text) if text else None
    if cid is None:
        problems.append(unreadable("vsock CID", "--vsock", value))
    return cid


def _serial_spec(opts: Opts) -> SerialSpec:
    kind = (opts.get("type") or "").lower()
    path = opts.get("path")
    match kind:
        case "stdout":
            return SerialSpec(kind="stdio")
        case "file":
            return SerialSpec(kind="file", path=path)
        case "sink":
            return SerialSpec(kind="null")
        case "unix" | "unix-stream":
            return SerialSpec(kind="unix", path=path)
    return SerialSpec(kind="unknown", path=path)


def _console(serials: list[str]) -> SerialSpec:
    """The serial port marked ``console=true``, else the first one; crosvm's default is
    serial port 1 on stdout."""
    if not serials:
        return SerialSpec(kind="stdio")
    parsed = [parse_opts(s) for s in serials]
    chosen = next((o for o in parsed if o.flag("console")), parsed[0])
    return _serial_spec(chosen)


def _check_start(argv: list[str], spec: RunnerSpec) -> list[str] | None:
    """The options after ``crosvm run``, or None if this is not a crosvm run command."""
    if not argv:
        spec.problems.append("the runner's command line is empty")
        return None
    spec.binary = argv[0]
    if basename(argv[0]) != "crosvm":
        spec.problems.append(
            f"the runner starts '{short(basename(argv[0]))}', which does not look like crosvm"
        )
    rest = argv[1:]
    # global options may come before the subcommand
    while rest and rest[0].startswith("-"):
        rest = rest[2:] if rest[0] in ("--log-level", "--extended-status") else rest[1:]
    if not rest or rest[0] != "run":
        spec.problems.append("the crosvm command line has no 'run' subcommand")
        return None
    return rest[1:]


def parse(argv: list[str]) -> RunnerSpec:
    spec = RunnerSpec(hypervisor="crosvm", balloon=True)  # crosvm has a balloon by default
    rest = _check_start(argv, spec)
    if rest is None:
        return spec
    problems = spec.problems
    serials: list[str] = []
    positionals: list[str] = []
    for option, values in iter_options(rest, CROSVM_OPTIONS, problems):
        value = values[0] if values else ""
        match option:
            case "":
                positionals.append(value)
            case "-m" | "--mem":
                spec.mem_mib = _mem(value, problems)
            case "-c" | "--cpus":
                spec.vcpu = _cpus(value, problems)
            case "-s" | "--socket":
                spec.socket = value
            case "--serial":
                serials.append(value)
            case "--no-balloon":
                spec.balloon = False
            case "--balloon-page-reporting":
                spec.balloon = True
            case "-r" | "--root" | "--disk" | "--block" | "--rwroot" | "--rwdisk":
                writable_by_default = option in ("--block", "--rwroot", "--rwdisk")
                volume = _block(value, read_only_default=not writable_by_default)
                if volume:
                    spec.volumes.append(volume)
            case "--vhost-user":
                share = _vhost_user(value)
                if share:
                    spec.shares.append(share)
            case "--vhost-user-fs":
                spec.shares.append(_vhost_user_fs(value))
            case "--shared-dir":
                share = _shared_dir(value, problems)
                if share:
                    spec.shares.append(share)
            case "--net":
                spec.nics.append(_net(value))
            case "--tap-name":
                spec.nics.append(NicSpec(id=value, type="tap"))
            case "--tap-fd":
                spec.nics.append(NicSpec(id=fd_nic_id(first_int(value)), type="macvtap"))
            case "--vsock" | "--cid":
                spec.vsock_cid = _vsock(value, problems)
    spec.serial = _console(serials)
    for extra in positionals[:-1]:  # the last one is the kernel
        problems.append(f"did not understand the crosvm argument '{short(extra)}'")
    if not positionals:
        problems.append("the crosvm command line names no kernel")
    return spec
