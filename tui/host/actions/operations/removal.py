"""Deleting a VM: stop its unit (refused if it may still run), move its folder out of the
listing in one rename, then remove it and its GC roots."""

from __future__ import annotations

import errno
import os
import shutil

from tui.host.actions.cancel import CancelToken
from tui.host.actions.errors import ActionError, CommandFailed
from tui.host.actions.lock import vm_lock
from tui.host.actions.operations.build import remove_gcroots
from tui.host.actions.operations.common import (
    Outcome,
    Reporter,
    begin,
    clean_debris,
    existing_vm_dir,
    refuse_declarative,
)
from tui.host.actions.operations.units import systemctl
from tui.host.actions.symlinks import temp_name
from tui.host.names import unit_name
from tui.host.safefs import opened_dir, rename_noreplace_at
from tui.host.settings import HostSettings

_ACTIVE_STATES = ("active", "activating", "deactivating", "reloading", "refreshing")


def delete(
    settings: HostSettings,
    name: str,
    reporter: Reporter | None = None,
    cancel: CancelToken | None = None,
) -> Outcome:
    """Stop microvm@NAME, remove STATE/NAME (volumes included) and its GC roots."""
    reporter, cancel, state = begin(settings, name, reporter, cancel)
    unit = unit_name(name)
    with vm_lock(state, name):
        clean_debris(state, name, reporter)
        vm_dir = existing_vm_dir(state, name)
        refuse_declarative(vm_dir, name, "deleted")
        reporter.log(f"systemctl stop {unit}")
        stopped = systemctl(settings, reporter, cancel, "stop", unit, check=False)
        if stopped.returncode != 0:
            probe = systemctl(
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
        remove_gcroots(settings, name, reporter)
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
