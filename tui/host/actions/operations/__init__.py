"""The actions on one VM, as plain functions a script can call.

Each takes the host settings, a VM name, a ``Reporter`` (log lines, build progress, the
commands run) and a ``CancelToken``; each returns an ``Outcome`` or raises an ``ActionError``
(``Refused`` when nothing was changed, ``Busy`` when another job holds the VM, ``Cancelled``,
``CommandFailed``/``BuildFailed``). Each holds the VM's lock (``lock.vm_lock``) throughout.

- ``common``: ``Reporter``, ``Outcome`` and the steps every action shares (checks,
  debris, GC roots).
- ``build``: ``create``, ``update``, ``install_runner`` (shared with deploy), ``rollback``.
- ``units``: ``start``, ``stop``, ``restart``, ``force_stop`` (systemd).
- ``removal``: ``delete``.

This package's names are the public surface; ``ACTIONS`` maps each action's id to it.
"""

from __future__ import annotations

from collections.abc import Callable

from tui.host.actions.operations.build import (
    DEFAULT_FLAKE,
    create,
    flake_problem,
    install_runner,
    rollback,
    runner_installable,
    update,
)
from tui.host.actions.operations.common import Outcome, Reporter
from tui.host.actions.operations.removal import delete
from tui.host.actions.operations.units import force_stop, restart, start, stop

__all__ = [
    "ACTIONS",
    "DEFAULT_FLAKE",
    "Outcome",
    "Reporter",
    "create",
    "delete",
    "flake_problem",
    "force_stop",
    "install_runner",
    "restart",
    "rollback",
    "runner_installable",
    "start",
    "stop",
    "update",
]

ACTIONS: dict[str, Callable[..., Outcome]] = {
    "create": create,
    "update": update,
    "rollback": rollback,
    "start": start,
    "stop": stop,
    "restart": restart,
    "force-stop": force_stop,
    "delete": delete,
}
