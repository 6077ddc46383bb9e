"""Alioth command lines (lib/runners/alioth.nix): ``alioth run --memory size=NM ...``.

Alioth has no control socket; its serial console is its own stdio.
"""

from __future__ import annotations

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

ALIOTH_OPTIONS = OptionTable(
    program="alioth",
    flags=names("--entropy --pvh-only --log-to-file -h --help"),
    single=names(
        """--memory --mem-size --mem --num-cpu --cpu -k --kernel -i --initramfs -c --cmd-line
        --cmdline --blk --fs --net --vsock --pvh --firmware --coco --hypervisor --balloon
        --vfio --vfio-cdev --vfio-ioas --object -l --log-level"""
    ),
    long_equals=True,
)


def _memory(option: str, value: str, problems: list[str]) -> int | None:
    opts = parse_opts(value)
    size = opts.get("size") or opts.first_word()
    mib = parse_mib(size, "B") if size else None  # alioth sizes without a unit are bytes
    if mib is None:
        problems.append(unreadable("memory size", option, value))
    return mib


def _cpus(option: str, value: str, problems: list[str]) -> int | None:
    opts = parse_opts(value)
    text = opts.get("count") or opts.first_word()
    count = parse_count(text) if text else None
    if count is None:
        problems.append(unreadable("number of vCPUs", option, value))
    return count


def _blk(value: str) -> VolumeSpec | None:
    """``--blk path=IMAGE,readonly=true`` (microvm.nix writes ``readOnly`` for volumes;
    keys are compared lower-cased)."""
    opts = parse_opts(value)
    path = opts.get("path") or opts.first_word()
    if not path or is_store_disk(path):
        return None
    return VolumeSpec(image=path, read_only=bool(opts.flag("readonly")))


def _fs(value: str, problems: list[str]) -> ShareSpec | None:
    """``--fs vu,socket=S,tag=T`` (vhost-user virtiofs)."""
    opts = parse_opts(value)
    tag = opts.get("tag")
    if not tag:
        problems.append(f"a --fs entry has no tag: '{short(value)}'")
        return None
    return ShareSpec(tag=tag, proto="virtiofs", socket=opts.get("socket"), source=opts.get("path"))


def _net(value: str) -> NicSpec:
    opts = parse_opts(value)
    name = opts.get("if_name", "if", "tap") or "(auto)"
    return NicSpec(id=name, type="tap", mac=opts.get("mac"))


def _vsock(value: str, problems: list[str]) -> int | None:
    text = parse_opts(value).get("cid")
    cid = parse_count(text) if text else None
    if cid is None:
        problems.append(unreadable("vsock CID", "--vsock", value))
    return cid


def _check_start(argv: list[str], spec: RunnerSpec) -> list[str] | None:
    if not argv:
        spec.problems.append("the runner's command line is empty")
        return None
    spec.binary = argv[0]
    if basename(argv[0]) != "alioth":
        spec.problems.append(
            f"the runner starts '{short(basename(argv[0]))}', which does not look like alioth"
        )
    rest = argv[1:]
    while rest and rest[0].startswith("-"):  # global options such as -l LEVEL, --log-to-file
        rest = rest[2:] if rest[0] in ("-l", "--log-level") else rest[1:]
    if not rest or rest[0] != "run":
        spec.problems.append("the alioth command line has no 'run' subcommand")
        return None
    return rest[1:]


def parse(argv: list[str]) -> RunnerSpec:
    spec = RunnerSpec(hypervisor="alioth", balloon=False, serial=SerialSpec(kind="stdio"))
    rest = _check_start(argv, spec)
    if rest is None:
        return spec
    problems = spec.problems
    for option, values in iter_options(rest, ALIOTH_OPTIONS, problems):
        value = values[0] if values else ""
        match option:
            case "":
                problems.append(not_understood("alioth", value))
            case "--memory" | "--mem-size" | "--mem":
                spec.mem_mib = _memory(option, value, problems)
            case "--num-cpu" | "--cpu":
                spec.vcpu = _cpus(option, value, problems)
            case "--blk":
                volume = _blk(value)
                if volume:
                    spec.volumes.append(volume)
            case "--fs":
                share = _fs(value, problems)
                if share:
                    spec.shares.append(share)
            case "--net":
                spec.nics.append(_net(value))
            case "--vsock":
                spec.vsock_cid = _vsock(value, problems)
            case "--balloon":
                spec.balloon = True
    return spec
