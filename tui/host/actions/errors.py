"""Why an action did not do what was asked. Every message is a sentence a person can act on."""

from __future__ import annotations


class ActionError(Exception):
    """The action failed; ``str(exc)`` says why."""

    @property
    def message(self) -> str:
        return str(self)


class Refused(ActionError):
    """The action was not started because it would be wrong (bad name, VM exists, ...).
    Nothing was changed."""


class Busy(Refused):
    """Another job holds the VM's lock."""

    def __init__(self, name: str, pid: int | None) -> None:
        holder = f" (pid {pid})" if pid else ""
        super().__init__(f"another job is running on {name}{holder}")
        self.name = name
        self.pid = pid


class Cancelled(ActionError):
    """The action was cancelled; whatever it had started was undone."""


class CommandFailed(ActionError):
    """An external command failed. ``details`` holds its error output (or Nix's errors)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message + (f": {details}" if details else ""))
        self.summary = message
        self.details = details
