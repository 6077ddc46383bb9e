"""How read-only mode is told: the reason itself is decided in one place,
``tui.host.actions.plan.read_only_reason``; these are the only wordings around it."""

from __future__ import annotations

from tui.host.actions.plan import read_only_reason

__all__ = ["read_only_reason", "refused", "tooltip"]


def tooltip(reason: str) -> str:
    """A disabled footer key's tooltip."""
    return f"read-only: {reason}"


def refused(reason: str) -> str:
    """The notification when a host-changing action is asked for anyway."""
    return f"{tooltip(reason)}."
