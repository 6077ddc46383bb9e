"""The actions on one VM, as plain functions a script can call.

Each takes the host settings, a VM name, a ``Reporter`` (log lines, build progress, the
commands run) and a ``CancelToken``; each returns an ``Outcome`` or raises an ``ActionError``
(``Refused`` when nothing was changed, ``Busy`` when another job holds the VM, ``Cancelled``,
``CommandFailed``/``BuildFailed``). Each holds the VM's lock (``lock.vm_lock``) throughout.

What they do follows upstream's ``microvm -c`` / ``microvm -u`` and the FAQ's deploy recipe,
with these differences: every change of ``current``/``old`` is one atomic rename, a failed or
cancelled build changes nothing, and ``update`` also roots ``old`` (``old-NAME`` in the GC
roots folder) so a rollback target is not garbage-collected.
"""

from __future__ import annotations

import contextlib
import errno
import grp
import os
import re
import shutil
import stat
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from tui.host.actions import nix
from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandRecord, CommandResult, run
from tui.host.actions.errors import ActionError, CommandFailed, Refused
from tui.host.actions.lock import vm_lock
from tui.host.actions.nixlog import Progress
from tui.host.actions.symlinks import read_link, resolved, swap_links, temp_name
from tui.host.names import name_problem, unit_name
from tui.host.safefs import (
    describe,
    make_dirs,
    make_temp_dir,
    open_dir,
    opened_dir,
    read_regular,
    rename_noreplace_at,
    replace_symlink_at,
    write_file_at,
)
from tui.host.settings import HostSettings
from tui.host.systemd import HELPERS, Systemctl, SystemdError

DEFAULT_FLAKE = "git+file:///etc/nixos"
VM_GROUP = "kvm"
# systemctl start/stop wait for the unit's job; microvm@ has TimeoutSec=150.
SYSTEMCTL_JOB_TIMEOUT = 200.0
MAX_FLAKE_BYTES = 64 << 10
_ACTIVE_STATES = ("active", "activating", "deactivating", "reloading", "refreshing")


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


# --- checks ------------------------------------------------------------------------------


def flake_problem(flake: str) -> str | None:
    """Why FLAKE is not a flake reference we pass to nix, or None."""
    if not flake:
        return "the flake reference is empty"
    if flake.startswith("-"):
        return f"the flake reference '{flake}' starts with '-'"
    if any(c.isspace() for c in flake) or not flake.isprintable():
        return "the flake reference has spaces or control characters"
    if "#" in flake:
        return f"the flake reference '{flake}' has a '#' (give the flake only, not an output)"
    return None


def runner_installable(flake: str, name: str) -> str:
    """FLAKE#nixosConfigurations.NAME.config.microvm.declaredRunner (NAME quoted if it has
    dots, which would otherwise split the attribute path)."""
    attr = f'"{name}"' if "." in name else name
    return f"{flake}#nixosConfigurations.{attr}.config.microvm.declaredRunner"


def _check_name(name: str) -> None:
    problem = name_problem(name)
    if problem:
        raise Refused(problem[0].upper() + problem[1:])


def _state_dir(settings: HostSettings) -> Path:
    state = settings.state_dir
    if not state.is_dir():
        raise Refused(f"the state directory {state} does not exist")
    return state


def _begin(
    settings: HostSettings, name: str, reporter: Reporter | None, cancel: CancelToken | None
) -> tuple[Reporter, CancelToken, Path]:
    """What every operation on an existing VM does first: a checked name and state dir."""
    _check_name(name)
    return reporter or Reporter(), cancel or CancelToken(), _state_dir(settings)


def _vm_dir(state: Path, name: str) -> Path:
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


def _refuse_declarative(vm_dir: Path, name: str, what: str) -> None:
    if os.path.lexists(vm_dir / "toplevel"):
        raise Refused(
            f"{name} is managed fully declaratively (it has a 'toplevel' link), so it cannot "
            f"be {what} here: change microvm.vms.{name} in the host's configuration"
        )


def _read_flake(vm_dir: Path) -> str:
    path = vm_dir / "flake"
    try:
        # Not followed if a link (it could name any file root can read), never a FIFO.
        data = read_regular(path, MAX_FLAKE_BYTES)
    except FileNotFoundError:
        raise Refused(f"{vm_dir.name} has no 'flake' file to rebuild from") from None
    except OSError as exc:
        raise Refused(f"cannot read {describe(exc)}") from exc
    flake = data.decode("utf-8", errors="replace").strip()
    problem = flake_problem(flake)
    if problem:
        raise Refused(f"{path} does not hold a usable flake reference: {problem}")
    return flake


def _same_target(a: str, b: str) -> bool:
    return os.path.realpath(a) == os.path.realpath(b)


# --- pieces ------------------------------------------------------------------------------


def _fix_permissions(top: Path, reporter: Reporter) -> list[str]:
    """Upstream's `chown :kvm -R; chmod -R a+rX; chmod g+w DIR` (plus u+rwX, as its build
    step does). Symlinks get the group only. Returns notes about what was skipped.

    TOP is the create's own 0700 temp dir, which only root can change, so the paths used
    here cannot be swapped for links between the lstat and the chmod."""
    notes: list[str] = []
    gid: int | None
    try:
        gid = grp.getgrnam(VM_GROUP).gr_gid
    except KeyError:
        gid = None
        notes.append(f"no group '{VM_GROUP}' on this host: left the files' group as it was")
    chown_failed = False
    for root, dirs, files in os.walk(top):
        for entry in [root, *(os.path.join(root, n) for n in (*dirs, *files))]:
            st = os.lstat(entry)
            if gid is not None and st.st_gid != gid and not chown_failed:
                try:
                    os.chown(entry, -1, gid, follow_symlinks=False)
                except PermissionError as exc:
                    chown_failed = True
                    notes.append(f"cannot give the files to group '{VM_GROUP}': {exc.strerror}")
            if stat.S_ISLNK(st.st_mode):
                continue
            mode = stat.S_IMODE(st.st_mode) | 0o644
            if stat.S_ISDIR(st.st_mode) or st.st_mode & 0o111:
                mode |= 0o755
            if entry == str(top):
                mode |= 0o020
            if mode != stat.S_IMODE(st.st_mode):
                os.chmod(entry, mode)
    for note in notes:
        reporter.log(f"note: {note}")
    return notes


def _clean_debris(state: Path, name: str, reporter: Reporter) -> None:
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


def _gcroot_links(name: str, vm_dir: Path) -> dict[str, Path]:
    return {
        name: vm_dir / "current",
        f"booted-{name}": vm_dir / "booted",
        f"old-{name}": vm_dir / "old",
    }


def _add_gcroots(
    settings: HostSettings, name: str, vm_dir: Path, reporter: Reporter, which: tuple[str, ...]
) -> None:
    roots = settings.gcroots_dir
    try:
        fd = make_dirs(roots, 0o755)
        try:
            for root, target in _gcroot_links(name, vm_dir).items():
                if root not in which:
                    continue
                if read_link(roots / root) == str(target):
                    continue
                replace_symlink_at(fd, root, str(target))
                reporter.log(f"GC root {roots / root} -> {target}")
        finally:
            os.close(fd)
    except OSError as exc:
        raise ActionError(
            f"cannot write the GC roots in {roots}: {exc.strerror or exc} "
            "(the runner may be garbage-collected)"
        ) from exc


def _remove_gcroots(settings: HostSettings, name: str, reporter: Reporter) -> None:
    try:
        fd = os.open(settings.gcroots_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return  # no roots folder: no roots
    try:
        for root in _gcroot_links(name, settings.state_dir / name):
            path = settings.gcroots_dir / root
            if os.path.islink(path):
                try:
                    os.unlink(root, dir_fd=fd)
                    reporter.log(f"removed GC root {path}")
                except OSError as exc:
                    reporter.log(f"note: cannot remove GC root {path}: {exc.strerror or exc}")
    finally:
        os.close(fd)


def _systemctl(
    settings: HostSettings,
    reporter: Reporter,
    cancel: CancelToken,
    *args: str,
    timeout: float = SYSTEMCTL_JOB_TIMEOUT,
    check: bool = True,
) -> CommandResult:
    argv = settings.systemctl_argv(*args)
    result = run(
        argv,
        env=settings.command_env(),
        log=reporter.command,
        cancel=cancel,
        timeout=timeout,
        grace=2.0,
    )
    if result.cancelled:
        cancel.check(" ".join(args))
    if check and result.returncode != 0:
        raise CommandFailed(f"systemctl {' '.join(args)} failed", result.error_text())
    return result


def _reset_failed_helpers(
    settings: HostSettings, name: str, reporter: Reporter, cancel: CancelToken
) -> list[str]:
    """`systemctl reset-failed` on exactly the VM's helper units that failed (a failed helper,
    its start limit hit, fails the VM's start as "a dependency job failed"). Returns them."""
    helpers = [template.format(name) for template, _program in HELPERS]
    try:
        # list-units names the loaded ones (a failed unit stays loaded); never loads a unit.
        states = Systemctl(settings).list_units(helpers)
    except SystemdError as exc:
        reporter.log(f"note: cannot tell whether a helper unit failed: {exc}")
        return []
    failed = [h for h in helpers if (u := states.get(h)) is not None and u.active == "failed"]
    if failed:
        reporter.log(f"systemctl reset-failed {' '.join(failed)} (failed helper units)")
        _systemctl(settings, reporter, cancel, "reset-failed", "--", *failed)
    return failed


def _unit_verb(
    settings: HostSettings, name: str, verb: str, reporter: Reporter, cancel: CancelToken
) -> None:
    """`systemctl VERB microvm@NAME`; a start or restart (also after create and update) first
    resets the VM's failed helper units."""
    if verb in ("start", "restart"):
        _reset_failed_helpers(settings, name, reporter, cancel)
    unit = unit_name(name)
    reporter.log(f"systemctl {verb} {unit}")
    _systemctl(settings, reporter, cancel, verb, unit)


def _restart_needed(vm_dir: Path, runner: str) -> bool:
    booted = resolved(vm_dir / "booted")
    return booted is not None and booted != os.path.realpath(runner)


def _label(path: str | None) -> str:
    """``/nix/store/HASH-microvm-qemu-web`` -> ``HASH8…-microvm-qemu-web`` (names alone are
    usually the same before and after an update)."""
    if not path:
        return "nothing"
    base = os.path.basename(path.rstrip("/"))
    digest, dash, rest = base.partition("-")
    return f"{digest[:8]}…-{rest}" if dash and len(digest) == 32 else base


def _switch(vm_dir: Path, changes: list[tuple[str, str]]) -> None:
    """Point the links of CHANGES in VM_DIR at their targets, all or none: a full disk in
    the middle leaves `current` and `old` both as they were (``safefs.replace_symlinks_at``)."""
    try:
        swap_links(vm_dir, changes)
    except OSError as exc:
        names = " and ".join(f"'{name}'" for name, _ in changes)
        raise ActionError(
            f"cannot switch {names} in {vm_dir}: {describe(exc)}; left them as they were"
        ) from exc


# --- actions -----------------------------------------------------------------------------


def create(
    settings: HostSettings,
    name: str,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
    *,
    flake: str = DEFAULT_FLAKE,
    start: bool = False,
) -> Outcome:
    """`microvm -c NAME -f FLAKE`: build the runner, then move a complete STATE/NAME into
    place in one rename. Nothing appears in STATE unless the build succeeded."""
    reporter = reporter or Reporter()
    cancel = cancel or CancelToken()
    _check_name(name)
    problem = flake_problem(flake)
    if problem:
        raise Refused(problem[0].upper() + problem[1:])
    state = _state_dir(settings)
    with vm_lock(state, name):
        _clean_debris(state, name, reporter)
        vm_dir = state / name
        if os.path.lexists(vm_dir):
            raise Refused(f"{vm_dir} already exists")
        cancel.check("create")
        try:
            state_fd = open_dir(state, follow=True)
        except OSError as exc:
            raise ActionError(f"cannot open {describe(exc)}") from exc
        tmp_name: str | None = None
        moved = roots_written = False
        try:
            # A fresh 0700 dir of ours (O_EXCL-like mkdir at the state dir's fd): nothing in
            # it can be planted by others, so the build and the permission fix work in it.
            tmp_name = make_temp_dir(state_fd, f"{name}.create")
            tmp = state / tmp_name
            # Like upstream's `echo -n "$FLAKE" > flake`: no newline.
            with opened_dir(tmp_name, dir_fd=state_fd) as tmp_fd:
                write_file_at(tmp_fd, "flake", flake.encode("utf-8"), 0o644)
            installable = runner_installable(flake, name)
            reporter.log(f"building {installable}")
            built = nix.build(
                settings,
                installable,
                tmp / "current",
                on_progress=reporter.progress,
                on_line=reporter.log,
                log=reporter.command,
                cancel=cancel,
            )
            reporter.log(f"built {built.out_path}")
            notes = _fix_permissions(tmp, reporter)
            cancel.check("create")
            if os.path.lexists(vm_dir):
                raise Refused(f"{vm_dir} appeared while building; left it alone")
            # Root the runner before the move so it is never unrooted: the out link's own
            # root (gcroots/auto -> TMP/current) breaks at the move.
            roots_written = True
            _add_gcroots(settings, name, vm_dir, reporter, (name, f"booted-{name}"))
            try:
                rename_noreplace_at(state_fd, tmp_name, state_fd, name)
            except FileExistsError:
                roots_written = False  # they now root whoever made VM_DIR: keep them
                raise Refused(f"{vm_dir} appeared while building; left it alone") from None
            moved = True
            reporter.log(f"created {vm_dir}")
        except BaseException as exc:
            if not moved:
                if tmp_name is not None:
                    shutil.rmtree(tmp_name, ignore_errors=True, dir_fd=state_fd)
                if roots_written and not os.path.lexists(vm_dir):
                    _remove_gcroots(settings, name, Reporter())
            if isinstance(exc, OSError):
                raise ActionError(f"cannot create {vm_dir}: {describe(exc)}") from exc
            raise
        finally:
            os.close(state_fd)

        message = f"created {name} ({_label(built.out_path)})"
        if start:
            try:
                _unit_verb(settings, name, "start", reporter, cancel)
            except ActionError as exc:
                raise ActionError(f"{name} was created, but did not start: {exc}") from exc
            message += " and started it"
        return Outcome(message, changed=True, out_path=built.out_path, notes=tuple(notes))


def update(
    settings: HostSettings,
    name: str,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
    *,
    restart: bool = False,
) -> Outcome:
    """`microvm -u NAME`: rebuild from the stored flake; if the runner changed, keep the
    previous one as `old` and switch `current`, each in one rename."""
    reporter, cancel, state = _begin(settings, name, reporter, cancel)
    with vm_lock(state, name):
        _clean_debris(state, name, reporter)
        vm_dir = _vm_dir(state, name)
        _refuse_declarative(vm_dir, name, "updated")
        flake = _read_flake(vm_dir)
        previous = read_link(vm_dir / "current")
        out_link = temp_name(vm_dir, "current.update")
        try:
            installable = runner_installable(flake, name)
            reporter.log(f"building {installable}")
            built = nix.build(
                settings,
                installable,
                out_link,
                on_progress=reporter.progress,
                on_line=reporter.log,
                log=reporter.command,
                cancel=cancel,
            )
            new = built.out_path
            reporter.log(f"built {new}")
            cancel.check("update")
            return install_runner(
                settings, name, vm_dir, previous, new, reporter, cancel, restart=restart
            )
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(out_link)


def install_runner(
    settings: HostSettings,
    name: str,
    vm_dir: Path,
    previous: str | None,
    new: str,
    reporter: Reporter,
    cancel: CancelToken,
    *,
    restart: bool = False,
    verb: str = "updated",
) -> Outcome:
    """Make NEW (a runner in the store, rooted by the caller until this returns) the VM's
    ``current``, keeping PREVIOUS as ``old``: the closure diff against ``booted`` (or
    PREVIOUS) in the job log, GC roots for all three, one atomic two-link switch, and the
    restart if asked. The caller holds the VM's lock. Shared by update and deploy."""
    if previous is not None and _same_target(str(vm_dir / "current"), new):
        stale = _restart_needed(vm_dir, new)
        message = f"{name} is up to date: nothing to do"
        if stale:
            message += " (it runs an older runner: restart it to apply the current one)"
        return Outcome(message, changed=False, restart_needed=stale, out_path=new)

    base = read_link(vm_dir / "booted") or previous
    diff: str | None = None
    if base is not None:
        try:
            diff = nix.diff_closures(settings, base, new, log=reporter.command, cancel=cancel)
        except CommandFailed as exc:
            reporter.log(f"note: {exc}")
        if diff is not None:
            for line in diff.splitlines() or ["(no package changes)"]:
                reporter.log(f"diff: {line}")
    cancel.check(verb)  # last point where nothing has changed

    _add_gcroots(settings, name, vm_dir, reporter, (name, f"booted-{name}", f"old-{name}"))
    changes = [("current", new)]
    if previous is not None:
        changes.insert(0, ("old", previous))
    _switch(vm_dir, changes)
    reporter.log(f"current -> {new}" + (f", old -> {previous}" if previous else ""))

    restart_needed = _restart_needed(vm_dir, new)
    message = f"{verb} {name}: {_label(previous)} -> {_label(new)}"
    if restart_needed and restart:
        _unit_verb(settings, name, "restart", reporter, cancel)
        message += "; restarted it"
        restart_needed = False
    elif restart_needed:
        message += f"; restart {unit_name(name)} to run it"
    return Outcome(message, changed=True, restart_needed=restart_needed, diff=diff, out_path=new)


def rollback(
    settings: HostSettings,
    name: str,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> Outcome:
    """Swap `current` and `old` (each in one rename)."""
    reporter, cancel, state = _begin(settings, name, reporter, cancel)
    with vm_lock(state, name):
        _clean_debris(state, name, reporter)
        vm_dir = _vm_dir(state, name)
        _refuse_declarative(vm_dir, name, "rolled back")
        current = read_link(vm_dir / "current")
        old = read_link(vm_dir / "old")
        if current is None:
            raise Refused(f"{name} has no 'current' runner link")
        if old is None:
            raise Refused(f"{name} has no 'old' runner to roll back to")
        if not os.path.isdir(os.path.join(vm_dir, old)):
            raise Refused(
                f"'old' of {name} points to {old}, which no longer exists (garbage-collected?)"
            )
        cancel.check("rollback")
        _switch(vm_dir, [("current", old), ("old", current)])
        reporter.log(f"current -> {old}, old -> {current}")
        restart_needed = _restart_needed(vm_dir, old)
        message = f"rolled {name} back: {_label(current)} -> {_label(old)}"
        if restart_needed:
            message += f"; restart {unit_name(name)} to run it"
        return Outcome(message, changed=True, restart_needed=restart_needed, out_path=old)


def _unit_action(verb: str, done: str) -> Callable[..., Outcome]:
    def action(
        settings: HostSettings,
        name: str,
        reporter: Reporter | None = None,
        cancel: CancelToken | None = None,
    ) -> Outcome:
        reporter, cancel, state = _begin(settings, name, reporter, cancel)
        with vm_lock(state, name):
            _unit_verb(settings, name, verb, reporter, cancel)
        return Outcome(f"{done} {name}", changed=True)

    action.__name__ = verb
    action.__qualname__ = verb
    action.__doc__ = f"`systemctl {verb} microvm@NAME.service`."
    return action


start = _unit_action("start", "started")
stop = _unit_action("stop", "stopped")
restart = _unit_action("restart", "restarted")


def force_stop(
    settings: HostSettings,
    name: str,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> Outcome:
    """SIGKILL everything in microvm@NAME, then `systemctl stop` so it stays down."""
    reporter, cancel, state = _begin(settings, name, reporter, cancel)
    unit = unit_name(name)
    with vm_lock(state, name):
        reporter.log(f"systemctl kill --signal=SIGKILL {unit}")
        killed = _systemctl(
            settings,
            reporter,
            cancel,
            "kill",
            "--signal=SIGKILL",
            unit,
            timeout=max(settings.timeout, 10.0),
            check=False,
        )
        if killed.returncode != 0:
            reporter.log(f"note: nothing killed: {killed.error_text(1)}")
        _unit_verb(settings, name, "stop", reporter, cancel)
    return Outcome(f"force-stopped {name}", changed=True)


def delete(
    settings: HostSettings,
    name: str,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> Outcome:
    """Stop microvm@NAME, remove STATE/NAME (volumes included) and its GC roots."""
    reporter, cancel, state = _begin(settings, name, reporter, cancel)
    unit = unit_name(name)
    with vm_lock(state, name):
        _clean_debris(state, name, reporter)
        vm_dir = _vm_dir(state, name)
        _refuse_declarative(vm_dir, name, "deleted")
        reporter.log(f"systemctl stop {unit}")
        stopped = _systemctl(settings, reporter, cancel, "stop", unit, check=False)
        if stopped.returncode != 0:
            probe = _systemctl(
                settings,
                reporter,
                cancel,
                "is-active",
                unit,
                timeout=max(settings.timeout, 10.0),
                check=False,
            )
            active = (probe.stdout.strip().splitlines() or ["unknown"])[0]
            # Unknown (systemd unreachable) is fine only when nothing says it runs.
            booted = os.path.lexists(vm_dir / "booted")
            if active in _ACTIVE_STATES or (active == "unknown" and booted):
                why = f"it is {active}" + (" and has a 'booted' link" if booted else "")
                raise CommandFailed(
                    f"cannot stop {unit} ({why}); not deleting a VM that may be running",
                    stopped.error_text(),
                )
            reporter.log(f"note: {unit} is {active}: {stopped.error_text(1)}")
        cancel.check("delete")
        # Move it out of the listing first: a half-removed folder never shows as a VM.
        trash = temp_name(state, f"{name}.delete")
        try:
            with opened_dir(state, follow=True) as state_fd:
                rename_noreplace_at(state_fd, name, state_fd, trash.name)
        except OSError as exc:
            raise ActionError(f"cannot remove {vm_dir}: {exc.strerror or exc}") from exc
        _remove_gcroots(settings, name, reporter)
        errors: list[str] = []

        def onerror(_func, path, exc_info) -> None:  # type: ignore[no-untyped-def]
            exc = exc_info[1]
            if not (isinstance(exc, OSError) and exc.errno == errno.ENOENT):
                errors.append(f"{path}: {getattr(exc, 'strerror', None) or exc}")

        shutil.rmtree(trash, onerror=onerror)
        if errors:
            raise ActionError(
                f"{name} is gone from {state}, but {trash} could not be removed fully: "
                + "; ".join(errors[:3])
            )
        reporter.log(f"removed {vm_dir}")
        return Outcome(f"deleted {name}", changed=True)


ACTIONS: dict[str, Callable[..., Outcome]] = {
    "create": create,
    "update": update,
    "rollback": rollback,
    "start": start,
    "stop": stop,
    "restart": restart,
    "force-stop": force_stop,
    "delete": delete,
}
