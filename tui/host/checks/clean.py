"""Cleaning a leftover the checks found, after the admin confirmed it. Each step checks again
that what it removes is still what was found (a VM may have come back meanwhile), and removes
only that: a link by its name in a directory we opened without following links."""

from __future__ import annotations

import os
import stat

from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandResult
from tui.host.actions.errors import CommandFailed
from tui.host.actions.operations.common import Reporter
from tui.host.actions.operations.units import systemctl
from tui.host.checks.findings import CleanKind, CleanStep
from tui.host.checks.leftovers import deletable_link, gcroot_owner
from tui.host.links import LinkReadError
from tui.host.names import is_valid_name
from tui.host.settings import HostSettings

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class CleanError(Exception):
    """Why a leftover was not cleaned (one line)."""


def _state_dir_has(settings: HostSettings, vm: str) -> bool:
    return os.path.lexists(os.path.join(settings.state_dir, vm))


def _unlink_in(directory: str, name: str, want: int) -> None:
    if "/" in name or name in ("", ".", ".."):
        raise CleanError(f"refusing to remove {name!r}: not a plain name")
    try:
        fd = os.open(directory, _DIR)
    except OSError as exc:
        raise CleanError(f"cannot open {directory}: {exc.strerror or exc}") from exc
    try:
        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
        if stat.S_IFMT(st.st_mode) != want:
            raise CleanError(f"{directory}/{name} changed since the check: left alone")
        os.unlink(name, dir_fd=fd)
    except FileNotFoundError:
        return  # gone already
    except OSError as exc:
        raise CleanError(f"cannot remove {directory}/{name}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _systemctl(settings: HostSettings, *args: str) -> CommandResult:
    """The actions' ``systemctl`` (argv, environment, deadline); its exit status is ours to
    judge, a command that cannot start is a CleanError."""
    try:
        return systemctl(
            settings,
            Reporter(),
            CancelToken(),
            *args,
            timeout=max(settings.timeout, 30.0),
            check=False,
        )
    except CommandFailed as exc:
        raise CleanError(f"systemctl {args[0]}: {exc}") from exc


def clean(step: CleanStep, settings: HostSettings) -> str:
    """Carry out STEP; what was done (one line). Raises CleanError."""
    if step.kind is CleanKind.STOP_UNIT:
        vm = step.target.removeprefix("microvm@").removesuffix(".service")
        if not step.target.startswith("microvm@") or not is_valid_name(vm):
            raise CleanError(f"refusing to stop {step.target!r}")
        if _state_dir_has(settings, vm):
            raise CleanError(f"{vm} has a state dir again: {step.target} left alone")
        proc = _systemctl(settings, "stop", "--", step.target)
        if proc.returncode != 0:
            raise CleanError(f"systemctl stop {step.target}: {proc.error_text(1)}")
        _systemctl(settings, "reset-failed", "--", step.target)
        return f"stopped {step.target}"
    if step.kind is CleanKind.REMOVE_GCROOT:
        vm = gcroot_owner(step.target)
        if step.directory != str(settings.gcroots_dir) or vm is None:
            raise CleanError(f"refusing to remove {step.target!r} outside the GC roots dir")
        if _state_dir_has(settings, vm):
            raise CleanError(f"{vm} has a state dir again: its GC root left alone")
        _unlink_in(step.directory, step.target, stat.S_IFLNK)
        return f"removed the GC root {step.directory}/{step.target}"
    if step.kind is CleanKind.DELETE_LINK:
        from tui.host.rtnl import delete_link  # imports pyroute2 on use: 0.15-0.6 s

        try:
            done = delete_link(step.netns, step.target, deletable_link)
        except LinkReadError as exc:
            raise CleanError(str(exc)) from exc
        if done == "refused":
            raise CleanError(f"{step.target} is no longer an unused tap or macvtap: left alone")
        return f"deleted the interface {step.target}"
    if step.kind is CleanKind.REMOVE_SOCKET:
        directory = step.directory or ""
        if os.path.dirname(os.path.normpath(directory)) != os.path.normpath(settings.state_dir):
            raise CleanError(f"refusing to remove a socket outside a VM's state dir: {directory}")
        vm = os.path.basename(os.path.normpath(directory))
        active = _systemctl(settings, "is-active", "--", f"microvm@{vm}.service").stdout.strip()
        if active not in ("inactive", "failed", "unknown"):
            raise CleanError(f"{vm} is {active or 'in an unknown state'}: its socket left alone")
        _unlink_in(directory, step.target, stat.S_IFSOCK)
        return f"removed the socket {directory}/{step.target}"
    raise CleanError(f"unknown cleaning step {step.kind}")
