"""Helpers for the actions tests: a real flake with no inputs, built by the real nix.

The flake's derivations use a copy of the static /bin/busybox as their builder (busybox picks
its applet from argv[0], so the file is ``tools/busybox``). Each VM kind is one derivation:

- ``ok``: a runner package in microvm.nix's layout (bin/microvm-run, share/microvm/hypervisor)
  that depends on ``guest-data-VERSION``; VERSION comes from the file ``version``, so
  changing that file changes the runner and gives diff-closures something to show.
- ``fail``: prints two lines and exits 1.
- ``big``: like ``ok`` with a 1 MiB file in it (for recording substitution progress).
- ``chatty``: prints 3000 lines (``line 0`` ... ``line 2999``) and makes an empty runner.
- ``slow``: prints ``started MARKER`` and sleeps; MARKER lets a test find its processes.
"""

from __future__ import annotations

import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path

from tui.host.settings import HostSettings

NIX_OPTIONS = (
    "--extra-experimental-features",
    "nix-command flakes",
    "--option",
    "substituters",
    "",
)
GCROOTS_PARENT = Path("/nix/var/nix/gcroots")

_FLAKE = """{
  outputs = { self }: let
    bb = "${./tools}/busybox";
    system = "x86_64-linux";
    marker = "@MARKER@";  # makes every written flake build afresh
    version = builtins.replaceStrings ["\\n"] [""] (builtins.readFile ./version);
    data = derivation {
      name = "guest-data-${version}"; inherit system marker; builder = bb;
      args = [ "sh" "-c" "echo ${version} > $out" ];
    };
    ok = name: derivation {
      name = "microvm-qemu-${name}"; inherit system marker; builder = bb;
      args = [ "sh" "-c" ''
        echo "building the runner of ${name}"
        ${bb} mkdir -p $out/bin $out/share/microvm
        echo qemu > $out/share/microvm/hypervisor
        ${bb} ln -s ${data} $out/share/microvm/data
        printf '#!/bin/sh\\nexec /usr/bin/qemu-system-x86_64 -name ${name} -m 256\\n' \\
          > $out/bin/microvm-run
        ${bb} chmod 755 $out/bin/microvm-run
        echo "done"
      '' ];
    };
    fail = name: derivation {
      name = "microvm-qemu-${name}"; inherit system marker; builder = bb;
      args = [ "sh" "-c" "echo compiling ${name}; echo 'oops: broken on purpose' >&2; exit 1" ];
    };
    slow = name: derivation {
      name = "microvm-qemu-${name}"; inherit system marker; builder = bb;
      args = [ "sh" "-c" "echo started @MARKER@; ${bb} sleep 600 & wait" ];
    };
    big = name: derivation {
      name = "microvm-qemu-${name}"; inherit system marker; builder = bb;
      args = [ "sh" "-c" ''
        ${bb} mkdir -p $out/bin $out/share/microvm
        echo qemu > $out/share/microvm/hypervisor
        ${bb} ln -s ${data} $out/share/microvm/data
        ${bb} dd if=/dev/zero of=$out/share/microvm/blob bs=1024 count=1024 2>&1
      '' ];
    };
    chatty = name: derivation {
      name = "microvm-qemu-${name}"; inherit system marker; builder = bb;
      args = [ "sh" "-c" ''
        i=0
        while [ $i -lt 3000 ]; do echo "line $i"; i=$((i+1)); done
        ${bb} mkdir -p $out/bin
      '' ];
    };
    vm = name: kind: { config.microvm.declaredRunner = kind name; };
  in {
    nixosConfigurations = {
@VMS@
    };
  };
}
"""


@dataclass
class FlakeDir:
    """A flake folder; ``ref`` is its ``path:`` flake reference."""

    path: Path
    marker: str

    @property
    def ref(self) -> str:
        return f"path:{self.path}"

    def set_version(self, version: str) -> None:
        (self.path / "version").write_text(version + "\n")


def write_flake(path: Path, vms: dict[str, str], version: str = "1") -> FlakeDir:
    """Write a flake at PATH with nixosConfigurations NAME -> kind (see the module doc)."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "tools").mkdir(exist_ok=True)
    shutil.copy2("/bin/busybox", path / "tools" / "busybox")
    marker = f"actions-test-{uuid.uuid4().hex[:12]}"
    lines = "\n".join(f'      "{name}" = vm "{name}" {kind};' for name, kind in vms.items())
    text = _FLAKE.replace("@VMS@", lines).replace("@MARKER@", marker)
    (path / "flake.nix").write_text(text)
    flake = FlakeDir(path, marker)
    flake.set_version(version)
    return flake


def make_settings(state_dir: Path, gcroots_dir: Path, **extra: object) -> HostSettings:
    state_dir.mkdir(parents=True, exist_ok=True)
    return HostSettings(
        state_dir=state_dir,
        gcroots_dir=gcroots_dir,
        nix_options=NIX_OPTIONS,
        **extra,  # type: ignore[arg-type]
    )


def new_gcroots_dir() -> Path:
    """A GC roots folder of our own under /nix/var/nix/gcroots (remove it afterwards)."""
    return GCROOTS_PARENT / f"microvm-tui-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def listing(directory: Path) -> dict[str, str]:
    """Every entry below DIRECTORY (not following symlinks) -> what it is, for comparing
    a folder before and after: symlink targets, file contents, modes."""
    out: dict[str, str] = {}
    for root, dirs, files in os.walk(directory):
        for name in sorted(dirs + files):
            path = Path(root, name)
            rel = str(path.relative_to(directory))
            st = path.lstat()
            if path.is_symlink():
                out[rel] = f"link {os.readlink(path)}"
            elif path.is_dir():
                out[rel] = f"dir {st.st_mode:o}"
            else:
                out[rel] = f"file {st.st_mode:o} {path.read_bytes()!r}"
    return out


def processes_with(marker: str) -> list[int]:
    """Pids whose command line contains MARKER."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path("/proc", entry, "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            pids.append(int(entry))
    return pids


def pid_alive(pid: int) -> bool:
    """True while PID exists and is not a zombie."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def with_descendants(pids: list[int]) -> set[int]:
    """PIDS and every process below them (by /proc/PID/stat's parent pid)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path("/proc", entry, "stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    found = set(pids)
    grew = True
    while grew:
        grew = False
        for pid, ppid in parents.items():
            if ppid in found and pid not in found:
                found.add(pid)
                grew = True
    return found
