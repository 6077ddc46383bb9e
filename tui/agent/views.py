"""The app's console and logs of a remote host's VMs (``--host NAME``): the console manager
whose connections go through the host's agent, and the Logs view's remote source.

View only: a remote console takes keys unless this app was started read-only or the host's
config says ``read_only = true`` (the app's own uid does not matter: the host's agent, as its
login, decides for the host and says so)."""

from __future__ import annotations

from tui.agent.console_client import remote_console_factory
from tui.agent.logs_client import RemoteLogs
from tui.config import Settings
from tui.host.actions.plan import read_only_reason
from tui.host.console import ConsoleManager


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
