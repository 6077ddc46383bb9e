"""Synthetic microvm.nix state dirs for tests and benchmarks: N qemu VMs in a fake store.

The runner scripts follow the shape of microvm.nix lib/runner.nix + lib/runners/qemu.nix.
Nothing runs; this only gives `list` realistic files to read.
"""

from __future__ import annotations

import hashlib
import os
import shlex
import subprocess
from pathlib import Path


def _runner_script(name: str, i: int) -> str:
    args = [
        "/nix/store/8x2m-qemu-host-cpu-only-9.2.0/bin/qemu-system-x86_64",
        "-name",
        name,
        "-M",
        "microvm,accel=kvm:tcg,acpi=on,mem-merge=on,pcie=on,pic=off,pit=off,rtc=on,usb=off",
        "-m",
        "512M",
        "-smp",
        "2",
        "-nodefaults",
        "-no-user-config",
        "-no-reboot",
        "-kernel",
        "/nix/store/k3rn-linux-6.12/bzImage",
        "-initrd",
        "/nix/store/1n1t-initrd/initrd",
        "-chardev",
        "stdio,id=stdio,signal=off",
        "-device",
        "virtio-rng-pci",
        "-serial",
        "chardev:stdio",
        "-enable-kvm",
        "-cpu",
        "host,+x2apic,-sgx",
        "-device",
        "i8042",
        "-append",
        "earlyprintk=ttyS0 console=ttyS0 reboot=t panic=-1",
        "-nographic",
        "-sandbox",
        "on",
        "-qmp",
        f"unix:{name}.sock,server,nowait",
        "-device",
        "virtio-balloon-pci,free-page-reporting=on,id=balloon0",
        "-drive",
        f"id=vda,format=raw,file={name}-var.img,if=none,aio=io_uring,discard=unmap,read-only=off",
        "-device",
        "virtio-blk-pci,drive=vda",
        "-numa",
        "node,memdev=mem",
        "-object",
        "memory-backend-memfd,id=mem,size=512M,share=on",
        "-fsdev",
        "local,id=fs0,path=/nix/store,security_model=none,readonly=true",
        "-device",
        "virtio-9p-pci,fsdev=fs0,mount_tag=ro-store",
        "-netdev",
        f"tap,id=vm-{i:04d},ifname=vm-{i:04d},script=no,downscript=no",
        "-device",
        f"virtio-net-pci,netdev=vm-{i:04d},mac=02:00:00:00:{i // 256:02x}:{i % 256:02x}",
    ]
    return (
        "#! /nix/store/b4sh-bash-5.2/bin/bash\nset -eou pipefail\n\n\nruntime_args=\n\n"
        f'exec -a "microvm@{name}" {shlex.join(args)} ${{runtime_args:-}}\n'
    )


def make_host(root: Path, count: int, *, nix_store: bool = False) -> Path:
    """Make ROOT/store and ROOT/microvms with COUNT VMs; return the state dir.

    NIX_STORE: also add each runner to the real Nix store (``nix-store --add``, one call) and
    point the VMs there, as on a real host, where runners are immutable store paths. Those
    paths have no GC root: the next ``nix-collect-garbage`` removes them."""
    store = root / "store"
    state = root / "microvms"
    store.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    runners = []
    for i in range(count):
        name = f"vm{i:04d}"
        digest = hashlib.sha1(name.encode()).hexdigest()[:32]
        # nix-store --add names a path HASH-BASENAME: there the fake hash is left out
        runner = store / (f"microvm-qemu-{name}" if nix_store else f"{digest}-microvm-qemu-{name}")
        (runner / "bin").mkdir(parents=True, exist_ok=True)
        (runner / "share" / "microvm").mkdir(parents=True, exist_ok=True)
        (runner / "bin" / "microvm-run").write_text(_runner_script(name, i))
        (runner / "bin" / "tap-up").write_text("#!/bin/sh\n")
        share = runner / "share" / "microvm"
        (share / "hypervisor").write_text("qemu\n")
        (share / "tap-interfaces").write_text(f"vm-{i:04d}\n")
        (share / "tap-flags").write_text("vnet_hdr\nmulti_queue\n")
        runners.append(runner)
    if nix_store:
        out = subprocess.run(
            ["nix-store", "--add", *map(str, runners)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.split()
        assert len(out) == count, out
        runners = [Path(p) for p in out]
    for i, runner in enumerate(runners):
        name = f"vm{i:04d}"
        vm = state / name
        vm.mkdir(exist_ok=True)
        for link in ("current", "booted"):
            if not os.path.lexists(vm / link):
                os.symlink(runner, vm / link)
        (vm / "flake").write_text("git+file:///etc/nixos")
        (vm / f"{name}-var.img").write_bytes(b"")
    return state
