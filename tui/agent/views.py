"""The app's console and logs of a remote host's VMs (``--host NAME``): the console manager
whose connections go through the host's agent, and the Logs view's remote source; and
``StreamRoutes``, which says where a VM's console and Logs view go in every mode (this host,
one remote host, or the fleet's VM's own host).

View only: a remote console takes keys unless this app was started read-only or the host's
config says ``read_only = true`` (the app's own uid does not matter: the host's agent, as its
login, decides for the host and says so)."""

from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass

from tui.agent.console_client import remote_console_factory
from tui.agent.logs_client import RemoteLogs
from tui.config import Settings
from tui.feed.fleet import FLEET_REMOTE, FleetSnapshot
from tui.feed.snapshot import Snapshot
from tui.host.actions.plan import read_only_reason
from tui.host.console import ConsoleManager
from tui.host.model import VM


def remote_view_only(settings: Settings, name: str) -> str | None:
    """Why host NAME's consoles are view only on this side (None: its agent decides)."""
    if settings.read_only:
        return read_only_reason(True)
    host = settings.hosts.get(name)
    if host is not None and host.read_only:
        return f"read_only = true in [hosts.{name}]"
    return None


def remote_consoles(settings: Settings, name: str) -> ConsoleManager:
    host = settings.hosts[name]
    why = remote_view_only(settings, name)
    return ConsoleManager(
        settings.host,
        read_only=why is not None,
        factory=remote_console_factory(host, read_only=why or False),  # type: ignore[arg-type]
    )


def remote_logs(settings: Settings, name: str) -> RemoteLogs:
    return RemoteLogs(settings.hosts[name])


@dataclass(frozen=True)
class ConsoleRoute:
    """A VM's console: the VM as its own host names it, that host's console manager, and why
    this side shows it view only (None: interactive, unless the host's agent says otherwise)."""

    vm: VM
    manager: ConsoleManager
    read_only_reason: str | None


@dataclass(frozen=True)
class LogsRoute:
    """A VM's Logs view: the VM as its own host names it; None: this host's journal."""

    vm: VM
    source: RemoteLogs | None


_HERE = ""  # the managers' key for this host's VMs (no host is named "")


class StreamRoutes:
    """Where a VM's console and Logs view go. One host (REMOTE None): CONSOLES, this app's
    manager. ``--host NAME``: CONSOLES, already that host's (``remote_consoles``). The fleet
    (``--all-hosts``): by the VM's host in the fleet snapshot; this host's VMs through a local
    manager whose view-only rule is this host's (the fleet's own read-only line is about
    actions), each remote host's through a manager of its own made on first use. A fleet VM
    goes out under its own name: ``HOST/NAME`` is the fleet's key, which no host knows.

    A refusal is one line (str) for the app to say."""

    def __init__(
        self,
        settings: Settings,
        remote: str | None,
        consoles: ConsoleManager,
        local_reason: str | None,
    ) -> None:
        self.settings = settings
        self.remote = remote
        self.consoles = consoles
        self.local_reason = local_reason  # why this host's consoles are view only here
        self.fleet = remote == FLEET_REMOTE
        self._managers: dict[str, ConsoleManager] = {}  # the fleet's, by host (_HERE: this)
        self._lock = threading.Lock()  # close_all runs in a worker thread at exit

    def console(self, vm: VM, snapshot: Snapshot | None) -> ConsoleRoute | str:
        where = self._where(vm, snapshot)
        if isinstance(where, str):
            return where
        host, own = where
        if not self.fleet:
            why = self.local_reason if host is None else remote_view_only(self.settings, host)
            return ConsoleRoute(own, self.consoles, why)
        if host is None:
            why = read_only_reason(self.settings.read_only)
            return ConsoleRoute(own, self._manager(_HERE), why)
        return ConsoleRoute(own, self._manager(host), remote_view_only(self.settings, host))

    def logs(self, vm: VM, snapshot: Snapshot | None) -> LogsRoute | str:
        where = self._where(vm, snapshot)
        if isinstance(where, str):
            return where
        host, own = where
        return LogsRoute(own, None if host is None else remote_logs(self.settings, host))

    def _where(self, vm: VM, snapshot: Snapshot | None) -> tuple[str | None, VM] | str:
        """VM's host (None: this one) and the VM under its own name there."""
        if self.remote is None:
            return None, vm
        if not self.fleet:
            host = self.remote
        else:
            if not isinstance(snapshot, FleetSnapshot) or vm.name not in snapshot.members:
                return f"{vm.name} is not in the fleet's last poll."
            host, name = snapshot.members[vm.name]
            vm = dataclasses.replace(vm, name=name)
            if any(s.local for s in snapshot.hosts if s.name == host):
                return None, vm
        if host not in self.settings.hosts:
            return (
                f"Consoles and logs of {host}'s VMs are not available: "
                f"no [hosts.{host}] in the config says how to reach it."
            )
        return host, vm

    def _manager(self, host: str) -> ConsoleManager:
        with self._lock:
            manager = self._managers.get(host)
            if manager is None:
                if host == _HERE:
                    why = read_only_reason(self.settings.read_only)
                    manager = ConsoleManager(self.settings.host, read_only=why is not None)
                else:
                    manager = remote_consoles(self.settings, host)
                self._managers[host] = manager
            return manager

    def close_all(self, timeout: float = 2.0) -> None:
        with self._lock:
            managers = [self.consoles, *self._managers.values()]
        for manager in managers:
            manager.close_all(timeout)
