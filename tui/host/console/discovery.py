"""Where a VM's serial console is right now (see :mod:`tui.host.console.endpoints` for the
order of preference): systemd says whether it runs, QMP ``query-chardev`` (or, without QMP, the
runner's arguments) says where its serial port is, the takeover marker says whether the app
took it over. Nothing here raises for an ordinary situation. No Textual here."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from typing import Any

from tui.host.console.chardevs import Chardev, parse_chardevs, same_path, serial_chardev
from tui.host.console.endpoints import ConsoleEndpoint, EndpointKind
from tui.host.console.history import config_hint, history_endpoint, history_words
from tui.host.console.marker import STDIO_CHARDEV, read_marker, takeover_paths
from tui.host.console.trust import pty_problem, socket_problem
from tui.host.model import VM, Drift, UnitState
from tui.host.names import unit_name
from tui.host.qmp import QMPCommandError, QMPError, qmp_execute
from tui.host.settings import HostSettings
from tui.host.systemd import Systemctl, unit_states

QMP_HYPERVISORS = ("qemu", "stratovirt")


def fresh_unit(vm: VM, settings: HostSettings) -> UnitState | None:
    """The unit's state now (the VM object may be a few seconds old); the VM's copy on error."""
    if not vm.name_valid:
        return vm.unit
    name = unit_name(vm.name)
    report = unit_states(Systemctl(settings), [name])
    return vm.unit if report.error else report.units[name]


def _state_words(unit: UnitState | None) -> str:
    if unit is None:
        return "unknown"
    if unit.error and unit.active in (None, "unknown"):
        return f"state unknown: {unit.error}"
    words = unit.active or "unknown"
    if unit.sub and unit.sub != unit.active:
        words += f"/{unit.sub}"
    return words


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _socket_endpoint(
    vm: VM, path: str, source: str, explanation: str, pid: int | None, **kw: Any
) -> ConsoleEndpoint:
    return ConsoleEndpoint(
        vm=vm.name,
        kind=EndpointKind.UNIX,
        path=path,
        interactive=True,
        explanation=explanation,
        source=source,
        main_pid=pid,
        **kw,
    )


def _busy_note(dev: Chardev) -> str:
    if dev.connected:
        return (
            " Another client is attached to it now; the hypervisor serves one client at a "
            "time, so output appears once it leaves."
        )
    return ""


def discover_endpoint(
    vm: VM,
    settings: HostSettings,
    *,
    unit: UnitState | None = None,
    qmp_timeout: float | None = None,
    refresh_unit: bool = True,
) -> ConsoleEndpoint:
    """Where VM's serial console is right now. Never raises for an ordinary situation."""
    timeout = qmp_timeout if qmp_timeout is not None else min(2.0, settings.timeout)
    if unit is None:
        unit = fresh_unit(vm, settings) if refresh_unit else vm.unit
    hint = config_hint(vm)
    pid = unit.main_pid if unit is not None and unit.main_pid else None
    active = unit.active if unit is not None else None
    systemd_known = unit is not None and active not in (None, "unknown")

    if vm.drift is Drift.BROKEN and not (active == "active" and pid):
        why = next(iter(vm.problems), "its runner is missing or unreadable")
        return ConsoleEndpoint(
            vm=vm.name,
            kind=EndpointKind.NONE,
            explanation=f"{vm.name} cannot run, so it has no console: {why}.",
            main_pid=pid,
        )

    running = active in ("active", "reloading") and pid is not None
    if systemd_known and not running:
        words = _state_words(unit)
        if active in ("activating", "deactivating"):
            text = f"{vm.name} is {words}: the console attaches once it runs."
        else:
            text = f"{vm.name} is not running ({words}): start it to get a console."
        fallback = history_endpoint(vm, settings, f"{vm.name} is not running", hint)
        return ConsoleEndpoint(
            vm=vm.name,
            kind=EndpointKind.NONE,
            explanation=text,
            fallback=fallback,
            transient=active in ("activating", "deactivating", "reloading"),
        )

    # Running (or systemd could not say): ask the hypervisor.
    hypervisor = vm.hypervisor or "unknown"
    chardevs: list[Chardev] | None = None
    qmp_problem = ""
    if hypervisor in QMP_HYPERVISORS and vm.socket:
        try:
            chardevs = parse_chardevs(qmp_execute(vm.socket, "query-chardev", timeout=timeout))
        except QMPCommandError as exc:
            qmp_problem = f"QMP query-chardev failed: {exc.desc or exc.error_class}"
        except QMPError as exc:
            qmp_problem = f"QMP is not reachable ({exc})"
    elif hypervisor in QMP_HYPERVISORS:
        qmp_problem = "it has no QMP control socket"

    if not systemd_known and chardevs is None:
        why = unit.error if unit is not None and unit.error else "systemd could not be asked"
        return ConsoleEndpoint(
            vm=vm.name,
            kind=EndpointKind.NONE,
            explanation=f"{vm.name}'s state is unknown ({why}) and QMP does not answer.",
            fallback=history_endpoint(vm, settings, "the VM's state is unknown", hint),
        )

    if chardevs is not None:
        found = _from_chardevs(vm, settings, chardevs, pid, hint)
        if found is not None:
            return found
    return _from_runner(vm, settings, pid, hint, qmp_problem)


def _from_chardevs(
    vm: VM, settings: HostSettings, chardevs: list[Chardev], pid: int | None, hint: str
) -> ConsoleEndpoint | None:
    dev = serial_chardev(vm, chardevs)
    marker = read_marker(vm)
    if marker is not None and (pid is None or marker.main_pid != pid):
        marker = None  # stale: from an earlier run of the hypervisor
    if marker is not None:
        dev_marked = next((d for d in chardevs if d.label == marker.chardev), None)
        # The marker is a file in a directory others can write: believed only when it names
        # the takeover's own socket and transcript (the transcript is read back as history).
        ours = takeover_paths(vm)
        if (
            dev_marked is not None
            and same_path(dev_marked.unix_path(vm.path), marker.socket)
            and same_path(marker.socket, ours[0])
            and same_path(marker.logfile, ours[1])
            and socket_problem(vm, marker.socket) is None
        ):
            return _socket_endpoint(
                vm,
                marker.socket,
                "takeover",
                f"Taken over (QMP chardev-change of '{marker.chardev}'): the serial console "
                f"stays on this socket until {vm.name} restarts; its transcript is "
                f"{marker.logfile}.",
                pid,
                transcript=marker.logfile,
                chardev=marker.chardev,
                busy=dev_marked.connected,
            )
    if dev is None:
        return None
    match dev.backend:
        case "unix":
            path = dev.unix_path(vm.path)
            if not path:
                return None
            refused = socket_problem(vm, path)
            if refused is not None:
                return _refused(vm, settings, dev, refused, hint, pid)
            if not dev.server:
                return history_endpoint(
                    vm,
                    settings,
                    f"its serial chardev '{dev.label}' connects out to {path} (qemu is the "
                    "client), which the app cannot serve",
                    hint,
                    pid,
                )
            what = f"Serial chardev '{dev.label}' is a unix socket server."
            if dev.label == STDIO_CHARDEV:
                what = (
                    "The stdio serial chardev was switched to a unix socket (by another tool or "
                    f"an earlier session without a marker); it stays there until {vm.name} "
                    "restarts."
                )
            return _socket_endpoint(
                vm,
                path,
                "qmp",
                what + _busy_note(dev),
                pid,
                chardev=dev.label,
                busy=dev.connected,
            )
        case "pty":
            path = dev.pty_path
            if not path:
                return None
            refused = pty_problem(path, pid)
            if refused is not None:
                return _refused(vm, settings, dev, refused, hint, pid)
            return ConsoleEndpoint(
                vm=vm.name,
                kind=EndpointKind.PTY,
                path=path,
                interactive=True,
                explanation=f"Serial chardev '{dev.label}' is the pty {path}.",
                source="qmp",
                main_pid=pid,
                chardev=dev.label,
            )
        case "stdio" if dev.label == STDIO_CHARDEV and vm.hypervisor == "qemu":
            return _takeover_proposal(vm, settings, dev, pid, hint)
        case "stdio":
            return history_endpoint(
                vm,
                settings,
                f"its serial console is on the hypervisor's stdio ({vm.hypervisor} cannot "
                "switch it to a socket while it runs)",
                hint,
                pid,
            )
    return history_endpoint(
        vm,
        settings,
        f"its serial chardev '{dev.label}' is '{dev.filename}', which is not interactive",
        hint,
        pid,
    )


def _refused(
    vm: VM, settings: HostSettings, dev: Chardev, why: str, hint: str, pid: int | None
) -> ConsoleEndpoint:
    """QMP named a console the app will not open (see tui.host.console.trust): history only."""
    return history_endpoint(
        vm, settings, f"QMP's answer for serial chardev '{dev.label}' was refused: {why}", hint, pid
    )


def _takeover_proposal(
    vm: VM, settings: HostSettings, dev: Chardev, pid: int | None, hint: str
) -> ConsoleEndpoint:
    sock, log = takeover_paths(vm)
    fallback = history_endpoint(
        vm,
        settings,
        f"{vm.name}'s serial console is on the hypervisor's stdio (microvm.nix's default)",
        hint,
        pid,
    )
    return ConsoleEndpoint(
        vm=vm.name,
        kind=EndpointKind.TAKEOVER,
        path=sock,
        interactive=False,
        needs_confirmation=True,
        explanation=(
            f"{vm.name}'s serial console is on stdio ({history_words(fallback)}). The app can "
            f"take it over: QMP chardev-change moves it to the socket {sock}, with a transcript "
            f"in {log}. This is one-way until {vm.name} restarts: until then, serial output "
            f"no longer goes to {history_words(fallback)}."
        ),
        hint=hint,
        source="qmp",
        transcript=log,
        main_pid=pid,
        chardev=dev.label,
        fallback=fallback,
    )


def _from_runner(
    vm: VM, settings: HostSettings, pid: int | None, hint: str, qmp_problem: str
) -> ConsoleEndpoint:
    """No usable answer from QMP: what the runner's arguments say."""
    spec = vm.serial
    kind = spec.kind if spec is not None else "unknown"
    why_qmp = f" ({qmp_problem})" if qmp_problem else ""
    if kind == "unix" and spec is not None and spec.path:
        if spec.server is False:
            return history_endpoint(
                vm, settings, f"its serial socket {spec.path} is a client socket", hint, pid
            )
        if _is_socket(spec.path):
            return _socket_endpoint(
                vm,
                spec.path,
                "runner",
                f"The runner puts the serial console on the unix socket {spec.path}.",
                pid,
            )
        return ConsoleEndpoint(
            vm=vm.name,
            kind=EndpointKind.NONE,
            explanation=f"The runner's serial socket {spec.path} does not exist (yet).",
            main_pid=pid,
            transient=True,
            fallback=history_endpoint(vm, settings, "the serial socket is missing", hint, pid),
        )
    if kind == "pty":
        why = "its serial console is a pty whose path only QMP can tell" + why_qmp
    elif kind == "stdio":
        why = "its serial console is on the hypervisor's stdio"
        if vm.hypervisor in QMP_HYPERVISORS:
            why += f" and it cannot be taken over{why_qmp}"
    elif kind in ("null", "tty", "file"):
        why = f"its serial console goes to {kind}" + (f" {spec.path}" if spec and spec.path else "")
    else:
        why = "no interactive serial endpoint was found" + why_qmp
    endpoint = history_endpoint(vm, settings, why, hint, pid)
    # QMP may just not be up yet (the VM is starting) or busy: look again soon.
    return replace(endpoint, transient=True) if qmp_problem else endpoint
