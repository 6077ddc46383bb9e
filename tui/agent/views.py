"""The app's console and logs of a remote host's VMs (``--host NAME``): the console manager
whose connections go through the host's agent, and the Logs view's remote source.

View only: a remote console takes keys unless this app was started read-only (its own uid
does not matter: the host's agent, as its login, decides for the host and says so)."""

from __future__ import annotations

from tui.agent.console_client import remote_console_factory
from tui.agent.logs_client import RemoteLogs
from tui.config import Settings
from tui.host.actions.plan import read_only_reason
from tui.host.console import ConsoleManager


def remote_view_only(settings: Settings) -> str | None:
    """Why a remote VM's console is view only on this side (None: the agent decides)."""
    return read_only_reason(True) if settings.read_only else None


def remote_consoles(settings: Settings, name: str) -> ConsoleManager:
    host = settings.hosts[name]
    view_only = remote_view_only(settings) is not None
    return ConsoleManager(
        settings.host,
        read_only=view_only,
        factory=remote_console_factory(host, read_only=view_only),  # type: ignore[arg-type]
    )


def remote_logs(settings: Settings, name: str) -> RemoteLogs:
    return RemoteLogs(settings.hosts[name])
