"""The actions on a VM's systemd unit: start, stop, restart, force stop, and the
`systemctl` call (with the failed helper units reset before a start) the others use too."""

from __future__ import annotations

from collections.abc import Callable

from tui.host.actions.cancel import CancelToken
from tui.host.actions.commands import CommandResult, run
from tui.host.actions.errors import CommandFailed
from tui.host.actions.lock import vm_lock
from tui.host.actions.operations.common import Outcome, Reporter, begin
from tui.host.names import unit_name
from tui.host.settings import HostSettings
from tui.host.systemd import HELPERS, Systemctl, SystemdError

# systemctl start/stop wait for the unit's job; microvm@ has TimeoutSec=150.
SYSTEMCTL_JOB_TIMEOUT = 200.0


def systemctl(
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
        systemctl(settings, reporter, cancel, "reset-failed", "--", *failed)
    return failed


def unit_verb(
    settings: HostSettings, name: str, verb: str, reporter: Reporter, cancel: CancelToken
) -> None:
    """`systemctl VERB microvm@NAME`; a start or restart (also after create and update) first
    resets the VM's failed helper units."""
    if verb in ("start", "restart"):
        _reset_failed_helpers(settings, name, reporter, cancel)
    unit = unit_name(name)
    reporter.log(f"systemctl {verb} {unit}")
    systemctl(settings, reporter, cancel, verb, unit)


def _unit_action(verb: str, done: str) -> Callable[..., Outcome]:
    def action(
        settings: HostSettings,
        name: str,
        reporter: Reporter | None = None,
        cancel: CancelToken | None = None,
    ) -> Outcome:
        reporter, cancel, state = begin(settings, name, reporter, cancel)
        with vm_lock(state, name):
            unit_verb(settings, name, verb, reporter, cancel)
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
    reporter, cancel, state = begin(settings, name, reporter, cancel)
    unit = unit_name(name)
    with vm_lock(state, name):
        reporter.log(f"systemctl kill --signal=SIGKILL {unit}")
        killed = systemctl(
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
        unit_verb(settings, name, "stop", reporter, cancel)
    return Outcome(f"force-stopped {name}", changed=True)
