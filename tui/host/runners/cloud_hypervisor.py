"""cloud-hypervisor command lines (lib/runners/cloud-hypervisor.nix).

Options take ``key=value,...`` lists. List options (``--disk``, ``--fs``, ``--net``) are written
as ``--disk A B`` by current releases and as ``--disk A --disk B`` by 30.0 to 35.x (argh);
both read the same here.
"""

from __future__ import annotations

from tui.host.model import NicSpec, RunnerSpec, SerialSpec, ShareSpec, VolumeSpec
from tui.host.runners._options import (
    OptionTable,
    basename,
    fd_nic_id,
    first_int,
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

CLOUD_HYPERVISOR_OPTIONS = OptionTable(
    program="cloud-hypervisor",
    flags=names("--watchdog --pvpanic --landlock -v -vv -vvv -V --version -h --help"),
    single=names(
        """--cpus --platform --memory --firmware --kernel --initramfs --cmdline --rng --balloon
        --serial --console --debug-console --vsock --event-monitor --api-socket --log-file
        --restore --seccomp --tpm --igvm --host-data --http-socket"""
    ),
    multi=names(
        """--disk --net --fs --pmem --device --user-device --vdpa --numa --memory-zone
        --pci-segment --sgx-epc --rate-limit-group --gpu --landlock-rules"""
    ),
    long_equals=True,
)


def _memory(value: str, zones: list[str], problems: list[str]) -> int | None:
    size = parse_opts(value).get("size")
    if size is not None and size.strip().rstrip("MmGgKk") == "0" and zones:
        # all guest RAM is in --memory-zone entries
        sizes = [parse_mib(parse_opts(z).get("size") or "", "B") for z in zones]
        if all(s is not None for s in sizes):
            return sum(s or 0 for s in sizes)
    mib = parse_mib(size, "B") if size else None
    if mib is None:
        problems.append(unreadable("memory size", "--memory", value))
    return mib


def _cpus(value: str, problems: list[str]) -> int | None:
    boot = parse_opts(value).get("boot")
    count = parse_count(boot) if boot else None
    if count is None:
        problems.append(unreadable("number of vCPUs", "--cpus", value))
    return count


def _api_socket(value: str) -> str | None:
    opts = parse_opts(value)
    if opts.get("path"):
        return opts.get("path")
    if opts.get("fd"):
        return None  # an inherited descriptor: no path to connect to
    return value or None


def serial_spec(value: str) -> SerialSpec:
    """``--serial``/``--console`` values: off, null, tty, pty, file=PATH, socket=PATH."""
    opts = parse_opts(value)
    mode = (opts.first_word() or "").lower()
    if opts.get("file"):
        return SerialSpec(kind="file", path=opts.get("file"))
    if opts.get("socket"):
        return SerialSpec(kind="unix", path=opts.get("socket"), server=True)
    simple = {"off": "null", "null": "null", "tty": "tty", "pty": "pty"}
    return SerialSpec(kind=simple.get(mode, "unknown"))


def _disk(value: str, problems: list[str]) -> VolumeSpec | None:
    opts = parse_opts(value)
    path = opts.get("path")
    if not path:
        if not opts.get("socket"):  # vhost-user disks have only a socket
            problems.append(f"a --disk entry has no path: '{short(value)}'")
        return None
    if is_store_disk(path):
        return None
    return VolumeSpec(image=path, read_only=bool(opts.flag("readonly")))


def _fs(value: str, problems: list[str]) -> ShareSpec | None:
    opts = parse_opts(value)
    tag = opts.get("tag")
    if not tag:
        problems.append(f"a --fs entry has no tag: '{short(value)}'")
        return None
    return ShareSpec(tag=tag, proto="virtiofs", socket=opts.get("socket"))


def _net(value: str) -> NicSpec:
    opts = parse_opts(value)
    mac = opts.get("mac")
    if opts.get("tap"):
        return NicSpec(id=opts.get("tap") or "", type="tap", mac=mac)
    if opts.get("fd"):
        # microvm.nix passes macvtap queues as opened fds: fd=[3,4,...]
        return NicSpec(id=fd_nic_id(first_int(opts.get("fd") or "")), type="macvtap", mac=mac)
    if opts.flag("vhost_user"):
        return NicSpec(id=opts.get("socket") or "", type="vhost-user", mac=mac)
    return NicSpec(id="(auto)", type="tap", mac=mac)  # cloud-hypervisor makes its own tap


def _vsock(value: str, problems: list[str]) -> int | None:
    cid_text = parse_opts(value).get("cid")
    cid = parse_count(cid_text) if cid_text else None
    if cid is None:
        problems.append(unreadable("vsock CID", "--vsock", value))
    return cid


def parse(argv: list[str]) -> RunnerSpec:
    spec = RunnerSpec(hypervisor="cloud-hypervisor", balloon=False)
    if not argv:
        spec.problems.append("the runner's command line is empty")
        return spec
    spec.binary = argv[0]
    if basename(argv[0]) != "cloud-hypervisor":
        spec.problems.append(
            f"the runner starts '{short(basename(argv[0]))}', which does not look like "
            "cloud-hypervisor"
        )
    problems = spec.problems
    options = list(iter_options(argv[1:], CLOUD_HYPERVISOR_OPTIONS, problems))
    zones = [v for option, values in options if option == "--memory-zone" for v in values]
    spec.serial = SerialSpec(kind="null")  # cloud-hypervisor's default when --serial is absent
    for option, values in options:
        value = values[0] if values else ""
        match option:
            case "":
                problems.append(not_understood("cloud-hypervisor", value))
            case "--cpus":
                spec.vcpu = _cpus(value, problems)
            case "--memory":
                spec.mem_mib = _memory(value, zones, problems)
            case "--api-socket":
                spec.socket = _api_socket(value)
            case "--serial":
                spec.serial = serial_spec(value)
            case "--balloon":
                spec.balloon = True
            case "--vsock":
                spec.vsock_cid = _vsock(value, problems)
            case "--disk":
                spec.volumes += [v for v in (_disk(x, problems) for x in values) if v]
            case "--fs":
                spec.shares += [s for s in (_fs(x, problems) for x in values) if s]
            case "--net":
                spec.nics += [_net(x) for x in values]
    return spec
