"""Read-only history of a VM's serial console (what a connection shows when nothing
interactive is there): the file the unit appends its output to where no journald runs
(``settings.console_log_dir``), else the unit's journal; and the config hints that say how to
get an interactive console instead. No Textual here."""

from __future__ import annotations

from pathlib import Path

from tui.host.console.endpoints import ConsoleEndpoint, EndpointKind
from tui.host.console.journal import HISTORY_LINES
from tui.host.logs.query import LogQuery, journal_argv
from tui.host.model import VM
from tui.host.names import unit_name
from tui.host.settings import HostSettings

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


def config_hint(vm: VM) -> str:
    return QEMU_CONFIG_HINT if (vm.hypervisor or "qemu") == "qemu" else OTHER_CONFIG_HINT


def history_words(endpoint: ConsoleEndpoint) -> str:
    if endpoint.kind is EndpointKind.LOGFILE:
        return f"the log file {endpoint.path}"
    return f"the journal of {unit_name(endpoint.vm)}"
