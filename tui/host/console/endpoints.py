"""Where a VM's serial console can be reached, in this order:

1. an interactive endpoint the VM already has: a unix socket server or a pty, read from QMP
   ``query-chardev`` (what the running qemu really uses) or, without QMP, from the runner's
   arguments (``VM.serial``);
2. for a QEMU VM whose serial is on stdio (microvm.nix's default): a *takeover*, QMP
   ``chardev-change`` of the ``stdio`` chardev to a unix socket server in the VM's state dir
   with a logfile transcript. One-way until the VM restarts (serial output stops going to the
   journal / log file), so :func:`discover_endpoint` only *proposes* it
   (``needs_confirmation``) and ``tui.host.console.takeover.take_over`` does it once the admin
   said yes. A marker file in the state dir (``tui.host.console.marker``) remembers it, with
   the hypervisor's pid it applies to, so a later attach reattaches without asking;
3. read-only history: the journal of ``microvm@NAME`` (``journalctl -o json -f``), or, where no
   journald runs (``settings.console_log_dir``), the file the unit appends its output to.

Nothing here raises for an ordinary situation (stopped VM, no QMP, no endpoint): the answer is
a :class:`ConsoleEndpoint` whose ``explanation`` says why. No Textual here.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, replace
from enum import StrEnum
from pathlib import Path
from typing import Any

from tui.host.console.journal import HISTORY_LINES
from tui.host.console.marker import STDIO_CHARDEV, read_marker, takeover_paths
from tui.host.console.trust import pty_problem, socket_problem
from tui.host.logs.query import LogQuery, journal_argv
from tui.host.model import VM, Drift, UnitState
from tui.host.names import unit_name
from tui.host.qmp import QMPCommandError, QMPError, qmp_execute
from tui.host.settings import HostSettings
from tui.host.systemd import Systemctl, unit_states

QMP_HYPERVISORS = ("qemu", "stratovirt")

QEMU_CONFIG_HINT = (
    "For an interactive console that needs no takeover, give the VM a serial socket:\n"
    "  microvm.qemu.serialConsole = false;\n"
    '  microvm.qemu.extraArgs = [ "-chardev" "socket,id=console,path=console.sock,'
    'server=on,wait=off" "-serial" "chardev:console" ];\n'
    '  boot.kernelParams = [ "console=ttyS0" ];\n'
    "then restart the VM."
)
OTHER_CONFIG_HINT = (
    "For an interactive console, put the hypervisor's serial port on a unix socket in the "
    "VM's state dir (e.g. cloud-hypervisor --serial socket=console.sock) and restart the VM."
)


class EndpointKind(StrEnum):
    UNIX = "unix"  # a unix socket server (the hypervisor's, or ours after a takeover)
    PTY = "pty"  # a pseudo-terminal the hypervisor opened
    TAKEOVER = "takeover"  # proposed: chardev-change of stdio to a socket (needs a yes first)
    LOGFILE = "logfile"  # read-only: follow the file the unit's output is appended to
    JOURNAL = "journal"  # read-only: follow journalctl -u microvm@NAME
    NONE = "none"  # nothing to attach to (stopped, broken, ...)


@dataclass(frozen=True)
class ConsoleEndpoint:
    """One answer to "where is NAME's console?".

    ``path``: the socket, pty or log file (for TAKEOVER: the socket it would create).
    ``explanation``: one or two sentences for the admin: where it comes from, or why it is
    read-only / unavailable. ``hint``: how to get an interactive console (config lines).
    ``fallback``: for TAKEOVER and NONE, the read-only history to show meanwhile (or None).
    """

    vm: str
    kind: EndpointKind
    path: str | None = None
    interactive: bool = False
    needs_confirmation: bool = False
    explanation: str = ""
    hint: str = ""
    source: str = ""  # "qmp", "runner", "takeover", "log", "journal", "state"
    transcript: str | None = None  # takeover logfile: the session so far, shown as history
    main_pid: int | None = None  # the hypervisor this applies to (None: unknown)
    chardev: str | None = None  # QMP chardev label of the serial port
    busy: bool = False  # the socket server already has a client (qemu serves one at a time)
    fallback: ConsoleEndpoint | None = None
    argv: tuple[str, ...] = ()  # JOURNAL: the journalctl command
    transient: bool = False  # may change soon (starting, stopping, QMP not answering yet)

    @property
    def read_only(self) -> bool:
        return not self.interactive

    def describe(self) -> str:
        """A short label for a title line: "unix socket /…/console.sock", "journal of …"."""
        match self.kind:
            case EndpointKind.UNIX:
                what = "takeover socket" if self.source == "takeover" else "unix socket"
                return f"{what} {self.path}"
            case EndpointKind.PTY:
                return f"pty {self.path}"
            case EndpointKind.TAKEOVER:
                return f"serial on stdio (takeover possible: {self.path})"
            case EndpointKind.LOGFILE:
                return f"log file {self.path} (read-only)"
            case EndpointKind.JOURNAL:
                return f"journal of {unit_name(self.vm)} (read-only)"
        return "no console"


@dataclass(frozen=True)
class Chardev:
    label: str
    filename: str
    frontend_open: bool | None = None

    @property
    def connected(self) -> bool:
        return not self.filename.startswith("disconnected:")

    @property
    def address(self) -> str:
        return self.filename.removeprefix("disconnected:")

    @property
    def backend(self) -> str:
        return self.address.split(":", 1)[0]

    def unix_path(self, base: Path) -> str | None:
        """``unix:PATH,server=on`` -> PATH (relative ones against BASE, the qemu's cwd)."""
        if self.backend != "unix":
            return None
        rest = self.address[len("unix:") :]
        # qemu prints ",server=on" (and ", ..." details on some versions) after the path.
        for marker in (",server", ",wait", ",nowait", " "):
            cut = rest.find(marker)
            if cut >= 0:
                rest = rest[:cut]
        return str(base / rest) if rest and not os.path.isabs(rest) else rest or None

    @property
    def server(self) -> bool:
        return ",server" in self.address and ",server=off" not in self.address

    @property
    def pty_path(self) -> str | None:
        if self.backend != "pty":
            return None
        return self.address[len("pty:") :] or None


def parse_chardevs(reply: Any) -> list[Chardev]:
    """The ``query-chardev`` return value as Chardevs (odd entries are skipped)."""
    found = []
    for entry in reply if isinstance(reply, list) else []:
        if not isinstance(entry, dict):
            continue
        label, filename = entry.get("label"), entry.get("filename")
        if isinstance(label, str) and isinstance(filename, str):
            opened = entry.get("frontend-open")
            found.append(Chardev(label, filename, opened if isinstance(opened, bool) else None))
    return found


# --- systemd ------------------------------------------------------------------------------


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


# --- history (read-only) ------------------------------------------------------------------


def history_endpoint(
    vm: VM, settings: HostSettings, why: str, hint: str = "", main_pid: int | None = None
) -> ConsoleEndpoint:
    """Read-only history: the log file (no journald, e.g. the lab) or the unit's journal."""
    if settings.console_log_dir is not None:
        log = Path(settings.console_log_dir) / f"{vm.name}.log"
        where = f"its serial output is appended to {log}"
        if not log.exists():
            where += " (not written yet)"
        return ConsoleEndpoint(
            vm=vm.name,
            kind=EndpointKind.LOGFILE,
            path=str(log),
            explanation=f"Read-only: {why}; {where}.",
            hint=hint,
            source="log",
            main_pid=main_pid,
        )
    unit = unit_name(vm.name)
    return ConsoleEndpoint(
        vm=vm.name,
        kind=EndpointKind.JOURNAL,
        explanation=f"Read-only: {why}; its serial output goes to the journal of {unit}.",
        hint=hint,
        source="journal",
        main_pid=main_pid,
        argv=tuple(
            journal_argv(settings, LogQuery(units=(unit,), lines=HISTORY_LINES), follow=True)
        ),
    )


def _hint_for(vm: VM) -> str:
    return QEMU_CONFIG_HINT if (vm.hypervisor or "qemu") == "qemu" else OTHER_CONFIG_HINT


# --- discovery ----------------------------------------------------------------------------


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.stat(path).st_mode)
    except OSError:
        return False


def _same_path(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    return os.path.normpath(a) == os.path.normpath(b)


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


def _serial_chardev(vm: VM, chardevs: list[Chardev]) -> Chardev | None:
    """Which chardev is the serial console: matched by the runner's idea of it first."""
    spec = vm.serial
    if spec is not None and spec.kind == "unix" and spec.path:
        for dev in chardevs:
            if _same_path(dev.unix_path(vm.path), spec.path):
                return dev
    if spec is not None and spec.kind == "stdio":
        for dev in chardevs:
            if dev.label == STDIO_CHARDEV and dev.frontend_open is not False:
                return dev
    if spec is not None and spec.kind == "pty":
        ptys = [d for d in chardevs if d.backend == "pty"]
        for dev in ptys:
            if dev.label.startswith("serial"):
                return dev
        if ptys:
            return ptys[0]
    # Unknown runner: qemu's names for -serial without a chardev are serial0, serial1, ...
    for dev in chardevs:
        if dev.label == "serial0":
            return dev
    for dev in chardevs:
        if dev.label == STDIO_CHARDEV and dev.frontend_open:
            return dev
    return None


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
    hint = _hint_for(vm)
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
    dev = _serial_chardev(vm, chardevs)
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
            and _same_path(dev_marked.unix_path(vm.path), marker.socket)
            and _same_path(marker.socket, ours[0])
            and _same_path(marker.logfile, ours[1])
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
            f"{vm.name}'s serial console is on stdio ({_history_words(fallback)}). The app can "
            f"take it over: QMP chardev-change moves it to the socket {sock}, with a transcript "
            f"in {log}. This is one-way until {vm.name} restarts: until then, serial output "
            f"no longer goes to {_history_words(fallback)}."
        ),
        hint=hint,
        source="qmp",
        transcript=log,
        main_pid=pid,
        chardev=dev.label,
        fallback=fallback,
    )


def _history_words(endpoint: ConsoleEndpoint) -> str:
    if endpoint.kind is EndpointKind.LOGFILE:
        return f"the log file {endpoint.path}"
    return f"the journal of {unit_name(endpoint.vm)}"


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
