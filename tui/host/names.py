"""VM name rules: what both the state dir and a systemd instance name accept safely."""

from __future__ import annotations

import re

# microvm.nix names are NixOS hostNames / attribute names. We allow what is safe as a path
# component and as a systemd instance name without escaping: no '/', no '\', no '@',
# no leading '.' or '-' (a leading '-' would read as an option to any tool).
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}")


def name_problem(name: str) -> str | None:
    """Why NAME is not a usable VM name, or None when it is fine."""
    if not name:
        return "the name is empty"
    if _NAME.fullmatch(name):
        return None
    shown = name.encode("unicode_escape", "backslashreplace").decode("ascii")
    if len(name) > 64:
        return f"the name '{shown[:40]}…' is longer than 64 characters"
    return (
        f"the name '{shown}' has characters systemd and microvm.nix do not accept "
        "(allowed: letters, digits, '_', '.', '+', '-'; not starting with '.', '+' or '-')"
    )


def is_valid_name(name: str) -> bool:
    return name_problem(name) is None


def unit_name(name: str) -> str:
    return f"microvm@{name}.service"
