"""The lab's flake folder: flake.nix (from tui/lab/files), vms.json, busybox, kernel, initrd."""

from __future__ import annotations

import json
import shutil
from importlib import resources
from pathlib import Path

from tui.lab import guest
from tui.lab.vms import VmSpec, vm_config

NIXOS_VERSION = "25.05.lab"
SEARCH_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FLAKE_LOCK = {"nodes": {"root": {}}, "root": "root", "version": 7}


def host_tools() -> dict[str, str]:
    """Absolute paths of the host programs the runners call at run time."""

    def need(name: str) -> str:
        path = shutil.which(name, path=SEARCH_PATH)
        if path is None:
            raise FileNotFoundError(f"{name} is not installed")
        return path

    return {
        "qemu": need("qemu-system-x86_64"),
        "ip": need("ip"),
        "socat": need("socat"),
        "jq": shutil.which("jq") or "jq",
        "bash": need("bash"),
        "extraPath": "/usr/sbin:/usr/bin:/sbin:/bin",
    }


def flake_nix_text() -> str:
    return resources.files("tui.lab").joinpath("files/flake.nix").read_text()


def vms_json(
    specs: list[VmSpec], root: Path, kernel_version: str, generations: dict[str, int]
) -> bytes:
    doc = {
        "host": host_tools(),
        "kernelVersion": kernel_version,
        "nixosVersion": NIXOS_VERSION,
        "vms": {s.name: vm_config(s, root, generations.get(s.name, 1)) for s in specs},
    }
    return (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def write_flake(
    flake_dir: Path, root: Path, specs: list[VmSpec], generations: dict[str, int]
) -> None:
    """Write (only what changed of) the flake folder."""
    kernel = guest.find_kernel()
    busybox = guest.find_busybox()
    (flake_dir / "tools").mkdir(parents=True, exist_ok=True)
    (flake_dir / "guest").mkdir(parents=True, exist_ok=True)
    guest.copy_if_changed(busybox, flake_dir / "tools" / "busybox", 0o755)
    guest.copy_if_changed(kernel.image, flake_dir / "guest" / "bzImage")
    guest.write_if_changed(flake_dir / "guest" / "initrd", guest.build_initramfs(busybox, kernel))
    guest.write_if_changed(flake_dir / "flake.nix", flake_nix_text().encode())
    guest.write_if_changed(flake_dir / "flake.lock", (json.dumps(FLAKE_LOCK) + "\n").encode())
    set_generations(flake_dir, root, specs, generations, kernel.version)


def set_generations(
    flake_dir: Path,
    root: Path,
    specs: list[VmSpec],
    generations: dict[str, int],
    kernel_version: str | None = None,
) -> bool:
    """Change the flake the way a user edits their configuration. True if vms.json changed."""
    if kernel_version is None:
        kernel_version = guest.find_kernel().version
    return guest.write_if_changed(
        flake_dir / "vms.json", vms_json(specs, root, kernel_version, generations)
    )
