"""Building and switching a VM's runner: create, update (and ``install_runner``, which deploy
shares), rollback, and the GC roots that keep the runners.

What they do follows upstream's ``microvm -c`` / ``microvm -u`` and the FAQ's deploy recipe,
with these differences: every change of ``current``/``old`` is one atomic rename, a failed or
cancelled build changes nothing, and ``update`` also roots ``old`` (``old-NAME`` in the GC
roots folder) so a rollback target is not garbage-collected.
"""

from __future__ import annotations

import contextlib
import grp
import os
import shutil
import stat
from pathlib import Path

from tui.host.actions import nix
from tui.host.actions.cancel import CancelToken
from tui.host.actions.errors import ActionError, CommandFailed, Refused
from tui.host.actions.lock import vm_lock
from tui.host.actions.operations.common import (
    Outcome,
    Reporter,
    begin,
    check_name,
    clean_debris,
    existing_vm_dir,
    refuse_declarative,
    state_dir,
)
from tui.host.actions.operations.units import unit_verb
from tui.host.actions.symlinks import read_link, resolved, swap_links, temp_name
from tui.host.names import unit_name
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

DEFAULT_FLAKE = "git+file:///etc/nixos"
VM_GROUP = "kvm"
MAX_FLAKE_BYTES = 64 << 10


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


def _gcroot_links(name: str, vm_dir: Path) -> dict[str, Path]:
    return {
        name: vm_dir / "current",
        f"booted-{name}": vm_dir / "booted",
        f"old-{name}": vm_dir / "old",
    }


def add_gcroots(
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


def remove_gcroots(settings: HostSettings, name: str, reporter: Reporter) -> None:
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
    check_name(name)
    problem = flake_problem(flake)
    if problem:
        raise Refused(problem[0].upper() + problem[1:])
    state = state_dir(settings)
    with vm_lock(state, name):
        clean_debris(state, name, reporter)
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
            add_gcroots(settings, name, vm_dir, reporter, (name, f"booted-{name}"))
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
                    remove_gcroots(settings, name, Reporter())
            if isinstance(exc, OSError):
                raise ActionError(f"cannot create {vm_dir}: {describe(exc)}") from exc
            raise
        finally:
            os.close(state_fd)

        message = f"created {name} ({_label(built.out_path)})"
        if start:
            try:
                unit_verb(settings, name, "start", reporter, cancel)
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
    reporter, cancel, state = begin(settings, name, reporter, cancel)
    with vm_lock(state, name):
        clean_debris(state, name, reporter)
        vm_dir = existing_vm_dir(state, name)
        refuse_declarative(vm_dir, name, "updated")
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

    add_gcroots(settings, name, vm_dir, reporter, (name, f"booted-{name}", f"old-{name}"))
    changes = [("current", new)]
    if previous is not None:
        changes.insert(0, ("old", previous))
    _switch(vm_dir, changes)
    reporter.log(f"current -> {new}" + (f", old -> {previous}" if previous else ""))

    restart_needed = _restart_needed(vm_dir, new)
    message = f"{verb} {name}: {_label(previous)} -> {_label(new)}"
    if restart_needed and restart:
        unit_verb(settings, name, "restart", reporter, cancel)
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
    reporter, cancel, state = begin(settings, name, reporter, cancel)
    with vm_lock(state, name):
        clean_debris(state, name, reporter)
        vm_dir = existing_vm_dir(state, name)
        refuse_declarative(vm_dir, name, "rolled back")
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
