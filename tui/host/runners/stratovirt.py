"""StratoVirt command lines (lib/runners/stratovirt.nix).

StratoVirt takes QEMU-style options, so the QEMU collector does the work. microvm.nix runs it
under ``unbuffer`` (from expect) so the serial console is line-buffered into the journal.
"""

from __future__ import annotations

from tui.host.model import RunnerSpec
from tui.host.runners import qemu
from tui.host.runners._options import (
    OptionTable,
    basename,
    names,
)

STRATOVIRT_OPTIONS = OptionTable(
    program="stratovirt",
    flags=names(
        """-daemonize -disable-seccomp -S -freeze_cpu -mem-prealloc -no-shutdown -nodefaults
        -version -help -h"""
    ),
    single=names(
        """-name -machine -M -m -smp -cpu -kernel -initrd -append -serial -object -device -drive
        -qmp -chardev -netdev -mon -D -pidfile -incoming -numa -global -smbios -trace -accel
        -mem-path -bios -boot -display -vnc -rtc -windows_emu_pid -capability -uuid
        -iothread"""
    ),
    dash_equivalent=True,
)

_WRAPPERS = ("unbuffer", "stdbuf")


def _unwrap(argv: list[str]) -> list[str]:
    """Drop ``unbuffer [-p]`` in front of the real binary."""
    while argv and basename(argv[0]) in _WRAPPERS:
        argv = argv[1:]
        while argv and argv[0].startswith("-"):
            argv = argv[1:]
    return argv


def parse(argv: list[str]) -> RunnerSpec:
    spec = RunnerSpec(hypervisor="stratovirt")
    argv = _unwrap(argv)
    if not argv:
        spec.problems.append("the runner's command line is empty")
        return spec
    spec.binary = argv[0]
    qemu.check_binary(spec, ("stratovirt",), "StratoVirt")
    args = qemu.collect(argv[1:], STRATOVIRT_OPTIONS, spec.problems)
    qemu.fill(spec, args)
    return spec
