"""The lab's Nix invocations: the steps of `microvm -c` / `-u` (pkgs/microvm-command.nix)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

# What a `nix` command needs on these machines: flakes are experimental in Nix 2.8, there is no
# network (no substituters), and the Debian build of Nix cannot sandbox.
NIX_OPTIONS: tuple[str, ...] = (
    "--extra-experimental-features",
    "nix-command flakes",
    "--option",
    "substituters",
    "",
    "--option",
    "sandbox",
    "false",
)


class NixError(RuntimeError):
    pass


def runner_attr(flake_ref: str, name: str) -> str:
    return f"{flake_ref}#nixosConfigurations.{name}.config.microvm.declaredRunner"


def toplevel_attr(flake_ref: str, name: str) -> str:
    return f"{flake_ref}#nixosConfigurations.{name}.config.system.build.toplevel"


def _nix(args: list[str], cwd: Path | None = None, timeout: float = 600) -> str:
    argv = ["nix", *NIX_OPTIONS, *args]
    proc = subprocess.run(
        argv, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )
    if proc.returncode != 0:
        raise NixError(f"{' '.join(argv)} failed ({proc.returncode}):\n{proc.stderr.strip()}")
    return proc.stdout


def build_many(installables: list[str]) -> dict[str, str]:
    """Build several installables in one nix invocation, without out-links.
    Returns {derivation name: store path} (nix does not keep the order of the installables)."""
    if not installables:
        return {}
    out = _nix(["build", "--no-link", "--json", "--max-jobs", "4", *installables])
    built = {}
    for entry in json.loads(out):
        path = entry["outputs"]["out"]
        built[Path(path).name.split("-", 1)[1]] = path
    return built


def build_current(state: Path, flake_ref: str, name: str) -> str:
    """`nix build -o current FLAKE#...declaredRunner` in the state dir (`microvm -u`'s build)."""
    _nix(["build", "-o", "current", runner_attr(flake_ref, name)], cwd=state)
    return os.readlink(state / "current")


def create_state_dir(state_dir: Path, tmp_dir: Path, flake_ref: str, name: str) -> Path:
    """`microvm -c NAME -f FLAKE`: build in a temp dir, write `flake`, move into place."""
    final = state_dir / name
    if final.exists():
        raise FileExistsError(f"{final} already exists.")
    tmp_dir.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f"microvm-{name}-", dir=tmp_dir))
    try:
        (temp / "flake").write_text(flake_ref)  # echo -n
        build_current(temp, flake_ref, name)
        temp.chmod(0o775)
        temp.rename(final)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise
    return final


def add_gcroots(gcroots_dir: Path, state: Path, name: str) -> None:
    """GC roots as `microvm -c` adds them: NAME -> DIR/current, booted-NAME -> DIR/booted."""
    gcroots_dir.mkdir(parents=True, exist_ok=True)
    for link, target in ((name, state / "current"), (f"booted-{name}", state / "booted")):
        path = gcroots_dir / link
        if path.is_symlink() and os.readlink(path) == str(target):
            continue
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)
