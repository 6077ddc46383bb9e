"""QEMU command lines, as lib/runners/qemu.nix writes them.

The pieces of one device are spread over several options and tied together by ids
(``-fsdev id=fs0`` + ``-device virtio-9p-pci,fsdev=fs0``; ``-netdev id=X`` +
``-device virtio-net-pci,netdev=X,mac=...``), so the arguments are first collected and then
joined. StratoVirt uses the same syntax and reuses this module (see stratovirt.py).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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

QEMU_OPTIONS = OptionTable(
    program="qemu",
    flags=names(
        """-nodefaults -no-user-config -no-reboot -no-shutdown -enable-kvm -nographic -S
        -daemonize -snapshot -no-acpi -no-hpet -full-screen -s -no-fd-bootchk -only-migratable
        -enable-fips -usb -preconfig -no-quit -alt-grab -ctrl-grab -mem-prealloc -version
        -help -h -semihosting -enable-sync-profile -nouserconfig -xen-attach
        -win2k-hack -rtc-td-hack -no-kvm -no-kvm-irqchip -old-param"""
    ),
    single=names(
        """-name -M -machine -m -smp -cpu -accel -kernel -initrd -append -dtb -bios -boot
        -chardev -device -drive -blockdev -serial -parallel -monitor -qmp -qmp-pretty -mon
        -fsdev -virtfs -netdev -nic -net -object -numa -smbios -fw_cfg -sandbox -run-with
        -runas -chroot -display -vga -vnc -spice -audiodev -audio -k -L -D -d -trace -incoming
        -pidfile -loadvm -icount -watchdog-action -action -msg -overcommit -mem-path -add-fd
        -iscsi -hda -hdb -hdc -hdd -cdrom -fda -fdb -mtdblock -sd -pflash -usbdevice -uuid -g
        -echr -virtioconsole -gdb -plugin -seed -compat -acpitable -set -readconfig -tpmdev
        -rtc -debugcon -option-rom -tb-size -global -device-list -semihosting-config
        -xen-domid -machine-type -mem-merge -smbios-file -overcommit-mem -qtest
        -qtest-log -async-teardown -rotate -portrait"""
    ),
    dash_equivalent=True,
)

# Devices (by driver name prefix) that say something we report.
_NET_DEVICES = ("virtio-net", "e1000", "rtl8139", "vmxnet3", "virtio-net-device")
_SERIAL_DEVICES = ("isa-serial", "pci-serial", "pl011")


@dataclass
class QemuArgs:
    """The options of a QEMU-style command line that matter here, in order."""

    memory: list[str] = field(default_factory=list)
    smp: list[str] = field(default_factory=list)
    drives: list[Opts] = field(default_factory=list)
    blockdevs: list[Opts] = field(default_factory=list)
    fsdevs: dict[str, Opts] = field(default_factory=dict)
    virtfs: list[Opts] = field(default_factory=list)
    chardevs: dict[str, Opts] = field(default_factory=dict)
    netdevs: list[Opts] = field(default_factory=list)
    nics: list[Opts] = field(default_factory=list)
    devices: list[Opts] = field(default_factory=list)
    serials: list[str] = field(default_factory=list)
    qmp: list[str] = field(default_factory=list)
    mons: list[Opts] = field(default_factory=list)
    nodefaults: bool = False
    nographic: bool = False


def _by_id(store: dict[str, Opts], opts: Opts, what: str, problems: list[str]) -> None:
    ident = opts.get("id")
    if ident is None:
        problems.append(f"a {what} has no id, so nothing can use it")
    else:
        store[ident] = opts


def collect(argv: list[str], table: OptionTable, problems: list[str]) -> QemuArgs:
    """Sort the arguments (without the binary) into a QemuArgs."""
    args = QemuArgs()
    for option, values in iter_options(argv, table, problems):
        value = values[0] if values else ""
        match option:
            case "":
                problems.append(not_understood(table.program, value))
            case "-m":
                args.memory.append(value)
            case "-smp":
                args.smp.append(value)
            case "-drive":
                args.drives.append(parse_opts(value, qemu=True))
            case "-blockdev":
                if not value.lstrip().startswith("{"):  # JSON blockdevs are left alone
                    args.blockdevs.append(parse_opts(value, qemu=True))
            case "-fsdev":
                _by_id(args.fsdevs, parse_opts(value, qemu=True), "-fsdev", problems)
            case "-virtfs":
                args.virtfs.append(parse_opts(value, qemu=True))
            case "-chardev":
                _by_id(args.chardevs, parse_opts(value, qemu=True), "-chardev", problems)
            case "-netdev":
                args.netdevs.append(parse_opts(value, qemu=True))
            case "-nic":
                args.nics.append(parse_opts(value, qemu=True))
            case "-device":
                args.devices.append(parse_opts(value, qemu=True))
            case "-serial":
                args.serials.append(value)
            case "-qmp" | "-qmp-pretty":
                args.qmp.append(value)
            case "-mon":
                args.mons.append(parse_opts(value, qemu=True))
            case "-nodefaults":
                args.nodefaults = True
            case "-nographic":
                args.nographic = True
    return args


# --- single values --------------------------------------------------------------------------


def memory_mib(value: str, problems: list[str], default_unit: str = "M") -> int | None:
    opts = parse_opts(value, qemu=True)
    size = opts.get("size") or opts.first_word()
    mib = parse_mib(size, default_unit) if size else None
    if mib is None:
        problems.append(unreadable("memory size", "-m", value))
    return mib


def vcpu_count(value: str, problems: list[str]) -> int | None:
    opts = parse_opts(value, qemu=True)
    cpus = opts.get("cpus") or opts.first_word()
    if cpus is not None:
        count = parse_count(cpus)
    else:  # only a topology: sockets * dies * cores * threads
        parts = [parse_count(opts.get(k) or "1") for k in ("sockets", "dies", "cores", "threads")]
        count = None
        if all(p is not None for p in parts) and any(
            k in opts.values for k in ("sockets", "cores", "threads")
        ):
            count = 1
            for p in parts:
                count *= p or 1
    if count is None:
        problems.append(unreadable("number of vCPUs", "-smp", value))
    return count


def legacy_unix_path(value: str) -> tuple[str | None, bool]:
    """``unix:PATH[,server][,nowait]`` (the old -qmp/-serial syntax) -> (PATH, server)."""
    items = parse_opts(value, qemu=True)
    head = items.first_word() or ""
    if not head.startswith("unix:"):
        return None, False
    server = items.flag("server")
    return head[len("unix:") :] or None, bool(server)


# --- joining the pieces ----------------------------------------------------------------------


def control_socket(args: QemuArgs, problems: list[str]) -> str | None:
    """The QMP socket: ``-qmp unix:...`` or a socket chardev behind ``-mon mode=control``."""
    for value in args.qmp:
        path, _server = legacy_unix_path(value)
        if path:
            return path
        problems.append(f"the QMP monitor '-qmp {short(value)}' is not on a unix socket")
    for mon in args.mons:
        if (mon.get("mode") or "readline") != "control":
            continue
        chardev = args.chardevs.get(mon.get("chardev") or "")
        if chardev and chardev.first_word() == "socket" and chardev.get("path"):
            return chardev.get("path")
    return None


def volumes(args: QemuArgs, problems: list[str]) -> list[VolumeSpec]:
    found: list[VolumeSpec] = []
    for drive in args.drives:
        image = drive.get("file")
        if drive.get("if") == "pflash" or not image:
            continue  # firmware, or an empty drive
        if drive.get("id") == "store" or is_store_disk(image):
            continue  # the guest's /nix/store image, not a volume
        read_only = drive.flag("read-only", "readonly")
        if read_only is None:
            read_only = drive.get("media") == "cdrom"
        found.append(VolumeSpec(image=image, read_only=read_only))
    for node in args.blockdevs:
        image = node.get("filename")
        if node.get("driver") in ("file", "host_device") and image and not is_store_disk(image):
            found.append(VolumeSpec(image=image, read_only=bool(node.flag("read-only"))))
    return found


def _share_9p(fsdev: Opts, tag: str | None, problems: list[str]) -> ShareSpec | None:
    if not tag:
        problems.append("a 9p share has no mount_tag")
        return None
    read_only = fsdev.flag("readonly", "read-only")
    return ShareSpec(
        tag=tag,
        proto="9p",
        source=fsdev.get("path"),
        read_only=bool(read_only),
    )


def shares(args: QemuArgs, problems: list[str]) -> list[ShareSpec]:
    found: list[ShareSpec] = []
    for device in args.devices:
        driver = device.first_word() or ""
        if driver.startswith("virtio-9p"):
            fsdev = args.fsdevs.get(device.get("fsdev") or "")
            if fsdev is None:
                problems.append(
                    f"the 9p device '{short(driver)}' uses an fsdev that is not defined"
                )
                continue
            share = _share_9p(fsdev, device.get("mount_tag"), problems)
            if share:
                found.append(share)
        elif driver.startswith("vhost-user-fs"):
            chardev = args.chardevs.get(device.get("chardev") or "")
            if chardev is None:
                problems.append("a virtiofs device uses a chardev that is not defined")
                continue
            tag = device.get("tag")
            if not tag:
                problems.append("a virtiofs device has no tag")
                continue
            found.append(ShareSpec(tag=tag, proto="virtiofs", socket=chardev.get("path")))
    for virtfs in args.virtfs:
        share = _share_9p(virtfs, virtfs.get("mount_tag"), problems)
        if share:
            found.append(share)
    return found


def _netdev_nic(netdev: Opts, macs: dict[str, str]) -> NicSpec:
    backend = netdev.first_word() or "unknown"
    ident = netdev.get("id") or ""
    mac = macs.get(ident)
    if backend == "tap":
        if netdev.get("ifname"):
            return NicSpec(id=netdev.get("ifname") or ident, type="tap", mac=mac)
        if netdev.get("fd", "fds") is not None:
            # microvm.nix hands macvtap queues to QEMU as already opened tap fds
            return NicSpec(id=ident, type="macvtap", mac=mac)
        return NicSpec(id=ident, type="tap", mac=mac)
    if backend == "bridge":
        return NicSpec(id=ident, type="bridge", mac=mac, link=netdev.get("br"))
    return NicSpec(id=ident, type=backend, mac=mac)


def nics(args: QemuArgs) -> list[NicSpec]:
    macs = {}
    for device in args.devices:
        driver = device.first_word() or ""
        netdev = device.get("netdev")
        if driver.startswith(_NET_DEVICES) and netdev and device.get("mac"):
            macs[netdev] = device.get("mac") or ""
    found = [_netdev_nic(netdev, macs) for netdev in args.netdevs]
    for item in args.nics:
        found.append(_netdev_nic(item, {item.get("id") or "": item.get("mac") or ""}))
    for spec in found:
        spec.mac = spec.mac or None
    return found


def balloon(args: QemuArgs) -> bool:
    return any((d.first_word() or "").startswith("virtio-balloon") for d in args.devices)


def vsock_cid(args: QemuArgs, problems: list[str]) -> int | None:
    for device in args.devices:
        driver = device.first_word() or ""
        if driver.startswith(("vhost-vsock", "vhost-user-vsock")):
            value = device.get("guest-cid")
            cid = parse_count(value) if value else None
            if cid is None:
                problems.append(f"could not read the vsock CID from '{short(driver)}'")
            return cid
    return None


def _serial_from_chardev(chardev: Opts) -> SerialSpec:
    backend = chardev.first_word()
    path = chardev.get("path")
    match backend:
        case "stdio":
            return SerialSpec(kind="stdio")
        case "socket" if path:
            return SerialSpec(kind="unix", path=path, server=bool(chardev.flag("server")))
        case "pty":
            return SerialSpec(kind="pty", path=path)
        case "file":
            return SerialSpec(kind="file", path=path)
        case "null":
            return SerialSpec(kind="null")
        case "serial" | "tty":
            return SerialSpec(kind="tty", path=path)
    return SerialSpec(kind="unknown", path=path)


def serial_from_value(value: str, chardevs: dict[str, Opts], problems: list[str]) -> SerialSpec:
    """What ``-serial VALUE`` connects the first serial port to."""
    if value.startswith("mon:"):
        value = value[len("mon:") :]
    if value.startswith("chardev:"):
        name = value[len("chardev:") :]
        chardev = chardevs.get(name)
        if chardev is None:
            problems.append(f"'-serial {short(value)}' uses a chardev that is not defined")
            return SerialSpec(kind="unknown")
        return _serial_from_chardev(chardev)
    if value.startswith("unix:"):
        path, server = legacy_unix_path(value)
        return SerialSpec(kind="unix", path=path, server=server)
    if value.startswith("file:"):
        return SerialSpec(kind="file", path=value[len("file:") :])
    if value.startswith("/dev/"):
        return SerialSpec(kind="tty", path=value)
    simple = {"stdio": "stdio", "pty": "pty", "null": "null", "none": "null"}
    return SerialSpec(kind=simple.get(value, "unknown"))


def serial(args: QemuArgs, problems: list[str]) -> SerialSpec:
    if args.serials:
        return serial_from_value(args.serials[0], args.chardevs, problems)
    for device in args.devices:
        if (device.first_word() or "") in _SERIAL_DEVICES and device.get("chardev"):
            chardev = args.chardevs.get(device.get("chardev") or "")
            if chardev is not None:
                return _serial_from_chardev(chardev)
    if args.nodefaults:
        return SerialSpec(kind="null")  # no serial port at all
    if args.nographic:
        return SerialSpec(kind="stdio")  # QEMU's default: serial multiplexed on stdio
    return SerialSpec(kind="unknown")  # QEMU's default: a graphical console


def fill(spec: RunnerSpec, args: QemuArgs, default_unit: str = "M") -> None:
    """Fill ``spec`` from collected QEMU-style arguments."""
    problems = spec.problems
    if args.memory:
        spec.mem_mib = memory_mib(args.memory[-1], problems, default_unit)
    if args.smp:
        spec.vcpu = vcpu_count(args.smp[-1], problems)
    spec.socket = control_socket(args, problems)
    spec.volumes = volumes(args, problems)
    spec.shares = shares(args, problems)
    spec.nics = nics(args)
    spec.balloon = balloon(args)
    spec.vsock_cid = vsock_cid(args, problems)
    spec.serial = serial(args, problems)


def check_binary(spec: RunnerSpec, expected: tuple[str, ...], what: str) -> None:
    name = basename(spec.binary or "")
    if not name.startswith(expected):
        spec.problems.append(f"the runner starts '{short(name)}', which does not look like {what}")


def parse(argv: list[str]) -> RunnerSpec:
    spec = RunnerSpec(hypervisor="qemu")
    if not argv:
        spec.problems.append("the runner's command line is empty")
        return spec
    spec.binary = argv[0]
    check_binary(spec, ("qemu-system-", "qemu-kvm"), "QEMU")
    args = collect(argv[1:], QEMU_OPTIONS, spec.problems)
    fill(spec, args)
    return spec
