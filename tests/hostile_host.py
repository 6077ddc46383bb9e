"""A state dir where every file and link the reader looks at carries terminal escapes, bidi
controls, bytes that are not UTF-8 and Rich/Textual markup: what a hostile tenant (the state
dir is group-writable by ``kvm``) or a hostile flake can plant.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path

from tests.synthetic_host import make_host

# The escapes the issue reproduced (an OSC 0 title set) and their friends: OSC 52 (clipboard),
# DCS, a raw CSI (C1), BEL, bidi overrides and isolates, a lone surrogate's byte, markup.
EVIL = (
    "\x1b]0;PWNED-TITLE\x1b\\"
    "\x1b]52;c;cHduZWQ=\x07"
    "\x1bP+q544e\x1b\\"
    "\x9b31m\x07\x08\x7f"
    "\u202eevil\u202c\u2066iso\u2069\u200f\u061c\u2028"
    "[/][bold red]markup[/x]"
)
EVIL_BYTES = EVIL.encode() + b"\xff\xfe"
# An entry name that is not a valid VM name (it is still listed, with a problem). A file
# name cannot hold "/", so no closing tag; opening ones would restyle the rest if parsed.
ODD_NAME = "odd[b]x[red]\x1b]0;T\x07\u202e"
FLAKE_MARKUP = "path:/x[/x]dir"
VALID_NAME = "vm0000"  # a VM whose files and links are all hostile (share/microvm/hypervisor aside)
BAD_HYPERVISOR = "vm0001"  # share/microvm/hypervisor says qemu followed by the escapes


def _w(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def _hostile_script(name: str) -> str:
    e = EVIL
    args = [
        "/nix/store/8x2m-qemu/bin/qemu-system-x86_64" + e,
        "-name",
        name + e,
        "-m",
        "512M",
        "-smp",
        "2",
        "-chardev",
        f"socket,id=con,path=con{e}.sock,server=on,wait=off",
        "-serial",
        "chardev:con",
        "-qmp",
        f"unix:{name}{e}.sock,server,nowait",
        "-drive",
        f"id=vda,format=raw,file=/var/x{e}.img,if=none",
        "-device",
        "virtio-blk-pci,drive=vda",
        "-fsdev",
        f"local,id=fs0,path=/srv/{e},security_model=none",
        "-device",
        f"virtio-9p-pci,fsdev=fs0,mount_tag=tag{e}",
        "-netdev",
        f"tap,id=vm-x{e},ifname=vm-x{e},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=vm-x{e},mac=02:00:00:00:00:01{e}",
        "-device",
        f"vfio-pci,host=0000:01:00.0{e}",
        f"--bogus{e}",
    ]
    return f"#! /bin/sh\nexec -a 'microvm@{name}' {shlex.join(args)} ${{runtime_args:-}}\n"


def make_hostile_host(root: Path) -> Path:
    """ROOT/microvms with VALID_NAME, BAD_HYPERVISOR, ODD_NAME and vm0003 (flake FLAKE_MARKUP)."""
    state = make_host(root, 4)
    vm = state / VALID_NAME
    runner = Path(os.readlink(vm / "current"))
    share = runner / "share" / "microvm"
    _w(runner / "bin" / "microvm-run", _hostile_script(VALID_NAME).encode(errors="surrogateescape"))
    for name in (
        "hypervisor",
        "tap-interfaces",
        "tap-flags",
        "macvtap-interfaces",
        "vsock-cid",
        "system",
        "pci-devices",
        "usb-devices",
    ):
        _w(share / name, EVIL_BYTES + b"\n" + EVIL.encode() + b" two\n")
    _w(share / "hypervisor", b"qemu\n")  # so that the hostile microvm-run is parsed
    _w(
        share / "macvtap-interfaces",
        ("mv" + EVIL + " 02:00:00:00:00:02 eth0" + EVIL + " bridge\n").encode(),
    )
    for tag in ("fs" + EVIL, "plain"):
        _w(share / "virtiofs" / tag / "socket", ("/run/x" + EVIL + ".sock\n").encode())
        _w(share / "virtiofs" / tag / "source", ("/srv/src" + EVIL + "\n").encode())
    _w(vm / "flake", ("path:/x[/x]dir" + EVIL).encode())
    _w(state / "vm0003" / "flake", FLAKE_MARKUP.encode())  # legal, and markup if parsed
    # Links whose targets say hostile things (dangling: nothing is there).
    os.symlink("/nix/store/old" + EVIL, vm / "old")
    os.symlink("/nix/store/toplevel" + EVIL, vm / "toplevel")
    (vm / "booted").unlink()
    os.symlink("/nix/store/booted" + EVIL, vm / "booted")
    other = Path(os.readlink(state / BAD_HYPERVISOR / "current"))
    _w(other / "share" / "microvm" / "hypervisor", ("qemu" + EVIL + "\n").encode())
    odd = state / ODD_NAME
    (state / "vm0002").rename(odd)
    (odd / "flake").write_bytes(EVIL_BYTES)
    return state
