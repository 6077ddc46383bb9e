"""What every action on one VM shares: the ``Reporter`` it tells, the ``Outcome`` it returns,
the checks before it touches a VM (name, state dir, a real VM dir, not declarative), the cleanup of
what a killed job left."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandRecord
from tui.host.actions.errors import Refused
from tui.host.actions.nixlog import Progress
from tui.host.actions.symlinks import read_link
from tui.host.names import name_problem
from tui.host.settings import HostSettings


def _ignore(_: object) -> None:
    return None


@dataclass
class Reporter:
    """Where an action tells what it does. Callbacks may be called from worker threads."""

    log: Callable[[str], None] = _ignore
    progress: Callable[[Progress], None] = _ignore
    command: Callable[[CommandRecord], None] = _ignore


@dataclass(frozen=True)
class Outcome:
    message: str
    changed: bool = False
    restart_needed: bool | None = None  # None: not applicable
    diff: str | None = None  # `nix store diff-closures` output (update)
    out_path: str | None = None  # the runner now in `current`
    notes: tuple[str, ...] = field(default_factory=tuple)


def check_name(name: str) -> None:
    problem = name_problem(name)
    if problem:
        raise Refused(problem[0].upper() + problem[1:])


def state_dir(settings: HostSettings) -> Path:
    state = settings.state_dir
    if not state.is_dir():
        raise Refused(f"the state directory {state} does not exist")
    return state


def begin(
    settings: HostSettings, name: str, reporter: Reporter | None, cancel: CancelToken | None
) -> tuple[Reporter, CancelToken, Path]:
    """What every operation on an existing VM does first: a checked name and state dir."""
    check_name(name)
    return reporter or Reporter(), cancel or CancelToken(), state_dir(settings)


def existing_vm_dir(state: Path, name: str) -> Path:
    """STATE/NAME, refused unless it is a real directory directly inside STATE."""
    vm_dir = state / name
    try:
        st = os.lstat(vm_dir)
    except FileNotFoundError:
        raise Refused(f"there is no VM {name} in {state}") from None
    if stat.S_ISLNK(st.st_mode):
        target = read_link(vm_dir) or "?"
        raise Refused(f"{vm_dir} is a symlink to {target}; refusing to follow it out of {state}")
    if not stat.S_ISDIR(st.st_mode):
        raise Refused(f"{vm_dir} is not a directory")
    if Path(os.path.realpath(vm_dir)).parent != Path(os.path.realpath(state)):
        raise Refused(f"{vm_dir} is not inside {state}")
    return vm_dir


def refuse_declarative(vm_dir: Path, name: str, what: str) -> None:
    if os.path.lexists(vm_dir / "toplevel"):
        raise Refused(
            f"{name} is managed fully declaratively (it has a 'toplevel' link), so it cannot "
            f"be {what} here: change microvm.vms.{name} in the host's configuration"
        )


def clean_debris(state: Path, name: str, reporter: Reporter) -> None:
    """Remove what a job on NAME that was killed outright (no cleanup ran) left behind: its
    temp dirs beside the state dir and temp links in the VM dir. Only called with NAME's
    lock held, so no running job owns them."""
    leftovers = re.compile(rf"\.{re.escape(name)}\.(?:create|delete)-[A-Za-z0-9_]{{8}}")
    temp_links = re.compile(r"\.(?:current\.update|(?:current|old|booted)\.new)-[0-9a-f]{8}")
    with contextlib.suppress(OSError), os.scandir(state) as entries:
        for entry in entries:
            if leftovers.fullmatch(entry.name) and entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path, ignore_errors=True)
                reporter.log(f"removed the leftover {entry.path}")
    vm_dir = state / name
    if vm_dir.is_symlink() or not vm_dir.is_dir():
        return
    with contextlib.suppress(OSError), os.scandir(vm_dir) as entries:
        for entry in entries:
            if temp_links.fullmatch(entry.name) and entry.is_symlink():
                os.unlink(entry.path)
                reporter.log(f"removed the leftover link {entry.path}")
