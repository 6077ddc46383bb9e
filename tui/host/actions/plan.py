"""What an action's confirmation states about a VM, read from the host before asking.

The dialogs (``tui.actions.dialogs``) only word these facts; every look at the file system
they need is here, so the UI never calls ``os.path`` itself. Also the one answer to "may the
app change the host at all?" (``read_only_reason``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tui.host.model import VM
from tui.host.settings import HostSettings

SHUTDOWN_SCRIPT = os.path.join("bin", "microvm-shutdown")


@dataclass(frozen=True)
class ActionPlan:
    """The facts about one VM that its confirmation dialogs name."""

    shutdown_script: bool  # the runner that stops it has bin/microvm-shutdown (a clean stop)
    runs_other_than_current: bool  # it booted a runner that is not `current` now
    runs_old: bool  # it booted the runner `old` points at (a rollback needs no restart)
    volumes_inside: tuple[str, ...]  # volume images inside its state dir (deleted with it)
    volumes_outside: tuple[str, ...]  # volume images elsewhere (a delete keeps them)
    gcroots_dir: Path


def has_shutdown_script(runner: str) -> bool:
    """microvm@NAME's ExecStop runs the runner's bin/microvm-shutdown when it has one."""
    return os.path.exists(os.path.join(runner, SHUTDOWN_SCRIPT))


def is_inside(path: str, folder: Path) -> bool:
    """PATH (relative to FOLDER, or absolute) resolves to somewhere below FOLDER."""
    real = os.path.realpath(os.path.join(folder, path))
    return real.startswith(os.path.realpath(folder) + os.sep)


def plan(vm: VM, settings: HostSettings) -> ActionPlan:
    """Look once at what VM's dialogs will say (a few stats; no file is opened)."""
    stopping_runner = vm.booted or vm.runner
    booted = os.path.realpath(vm.booted) if vm.booted else None
    images = [volume.image for volume in vm.volumes]
    return ActionPlan(
        shutdown_script=bool(stopping_runner) and has_shutdown_script(stopping_runner or ""),
        runs_other_than_current=bool(booted and vm.runner and booted != vm.runner),
        runs_old=bool(booted and vm.old and booted == os.path.realpath(vm.old)),
        volumes_inside=tuple(i for i in images if is_inside(i, vm.path)),
        volumes_outside=tuple(i for i in images if not is_inside(i, vm.path)),
        gcroots_dir=settings.gcroots_dir,
    )


def name_taken(state_dir: Path, name: str) -> bool:
    """Something (even a dangling link) already has STATE_DIR/NAME."""
    return os.path.lexists(state_dir / name)


def read_only_reason(read_only: bool) -> str | None:
    """Why the app may not change the host (the flag, or not being root), or None: the one
    place this is decided."""
    if read_only:
        return "started with --read-only"
    if os.geteuid() != 0:
        return "not running as root"
    return None
