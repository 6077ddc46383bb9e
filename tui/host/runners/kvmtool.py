"""kvmtool command lines (lib/runners/kvmtool.nix): ``lkvm run --name NAME ...``.

kvmtool has no control socket on its command line (``lkvm`` finds the VM by ``--name`` under
``$HOME/.lkvm``), and its serial console is its own stdio.
"""

from __future__ import annotations

import re

from tui.host.model import NicSpec, RunnerSpec, SerialSpec, ShareSpec, VolumeSpec
from tui.host.runners._options import (
    OptionTable,
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

KVMTOOL_OPTIONS = OptionTable(
    program="kvmtool",
    flags=names(
        """--rng --balloon --sdl --vnc --gtk --nodefaults --debug --debug-single-step
        --debug-ioport --debug-mmio --no-dhcp --virtio-legacy --transport-mmio -h --help
        --sandbox-clean --no-pvtime --pmu --aarch32 --force-pci --irqchip-msi"""
    ),
    single=names(
        """--name -m --mem -c --cpus --console -k --kernel -i --initrd -p --params -d --disk
        --9p -n --network --vsock --vfio-pci --firmware --dev --tty --sandbox --hugetlbfs
        --loglevel --vm-path --irqchip --kaslr-seed --debug-iodelay --mem-path
        --vfio-noiommu"""
    ),
    long_equals=True,
)

# microvm.nix writes macvtap NICs as tapif=/dev/tap$(< /sys/class/net/ID/ifindex)
_MACVTAP_RE = re.compile(r"/sys/class/net/([^/\s)]+)/ifindex")


def _disk(value: str) -> VolumeSpec | None:
    """``-d IMAGE[,ro][,direct]``."""
    parts = value.split(",")
    image = parts[0]
    if not image or is_store_disk(image):
        return None
    return VolumeSpec(image=image, read_only="ro" in parts[1:])


def _share(value: str, problems: list[str]) -> ShareSpec | None:
    """``--9p SOURCE,TAG``."""
    source, sep, tag = value.rpartition(",")
    if not sep or not source or not tag:
        problems.append(f"could not read the 9p share '--9p {short(value)}'")
        return None
    # microvm.nix refuses read-only 9p shares on kvmtool, so these are writable
    return ShareSpec(tag=tag, proto="9p", source=source, read_only=False)


def _network(value: str) -> NicSpec:
    """``-n mode=tap,tapif=ID,guest_mac=MAC``."""
    opts = parse_opts(value)
    mode = opts.get("mode") or "user"
    tapif = opts.get("tapif") or ""
    mac = opts.get("guest_mac")
    macvtap = _MACVTAP_RE.search(tapif)
    if tapif.startswith("/dev/tap") and macvtap:
        return NicSpec(id=macvtap.group(1), type="macvtap", mac=mac)
    return NicSpec(id=tapif or "(auto)", type=mode, mac=mac)


def _count(value: str, what: str, option: str, problems: list[str]) -> int | None:
    count = parse_count(value)
    if count is None:
        problems.append(unreadable(what, option, value))
    return count


def _check_start(argv: list[str], spec: RunnerSpec) -> list[str] | None:
    if not argv:
        spec.problems.append("the runner's command line is empty")
        return None
    spec.binary = argv[0]
    if basename(argv[0]) not in ("lkvm", "vm", "lkvm-static"):
        spec.problems.append(
            f"the runner starts '{short(basename(argv[0]))}', which does not look like kvmtool"
        )
    if len(argv) < 2 or argv[1] != "run":
        spec.problems.append("the kvmtool command line has no 'run' subcommand")
        return None
    return argv[2:]


def parse(argv: list[str]) -> RunnerSpec:
    # kvmtool's consoles (serial, virtio, hv) all talk to its own stdio
    spec = RunnerSpec(hypervisor="kvmtool", balloon=False, serial=SerialSpec(kind="stdio"))
    rest = _check_start(argv, spec)
    if rest is None:
        return spec
    problems = spec.problems
    for option, values in iter_options(rest, KVMTOOL_OPTIONS, problems):
        value = values[0] if values else ""
        match option:
            case "":
                problems.append(not_understood("kvmtool", value))
            case "-m" | "--mem":
                spec.mem_mib = parse_mib(value)
                if spec.mem_mib is None:
                    problems.append(unreadable("memory size", option, value))
            case "-c" | "--cpus":
                spec.vcpu = _count(value, "number of vCPUs", option, problems)
            case "--balloon":
                spec.balloon = True
            case "-d" | "--disk":
                volume = _disk(value)
                if volume:
                    spec.volumes.append(volume)
            case "--9p":
                share = _share(value, problems)
                if share:
                    spec.shares.append(share)
            case "-n" | "--network":
                if (parse_opts(value).get("mode") or "") != "none":
                    spec.nics.append(_network(value))
            case "--vsock":
                spec.vsock_cid = _count(value, "vsock CID", option, problems)
    return spec
