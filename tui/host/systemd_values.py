"""What systemd says over D-Bus, checked: every value from a reply or a signal passes here.

Types (a D-Bus variant's signature and the Python type jeepney made of it), unit names (well
formed and ours), object paths (under systemd's unit tree), state words (short, printable
ASCII), cgroup paths (absolute, printable, no '..'), sizes. A value that fails is left out
(None, or the row dropped): it never reaches the table, the screen or a path we open.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from fnmatch import fnmatchcase
from typing import Any

from tui.host.dbus import BusError
from tui.host.model import UnitState
from tui.host.systemd import PATTERNS

MAX_UNITS = 100_000  # units of ours in the table; more ends the watch (systemctl answers)
MAX_WORD = 64  # a state word (active, auto-restart, exit-code, ...)
MAX_UNIT_NAME = 256  # systemd's own limit
MAX_CGROUP = 4096

_UNIT_NAME = re.compile(r"[A-Za-z0-9:_.\\@-]{1,256}")
_OBJECT_PATH = re.compile(r"/org/freedesktop/systemd1/unit/[A-Za-z0-9_]{1,1024}")
_WORD = re.compile(r"[A-Za-z0-9_.+-]{1,64}")


# --- checked values from outside -------------------------------------------------------------


def word(value: Any) -> str | None:
    """A state word systemd sends (ActiveState, SubState, Result, ...), or None."""
    return value if isinstance(value, str) and _WORD.fullmatch(value) else None


def unit_name(value: Any, patterns: Sequence[str] = PATTERNS) -> str | None:
    """VALUE if it is a well-formed unit name matching one of PATTERNS, else None."""
    if not isinstance(value, str) or not _UNIT_NAME.fullmatch(value):
        return None
    return value if any(fnmatchcase(value, p) for p in patterns) else None


def object_path(value: Any) -> str | None:
    return value if isinstance(value, str) and _OBJECT_PATH.fullmatch(value) else None


def cgroup(value: Any) -> str | None:
    """A ControlGroup: an absolute path without '..', NUL or control characters; "" -> None."""
    if not isinstance(value, str) or not value.startswith("/") or len(value) > MAX_CGROUP:
        return None
    if not value.isprintable() or "/../" in value + "/" or "/./" in value + "/":
        return None
    return value


def variant(value: Any, signature: str) -> Any:
    """The content of a D-Bus variant (jeepney: (signature, value)) if it has SIGNATURE."""
    if isinstance(value, tuple) and len(value) == 2 and value[0] == signature:
        return value[1]
    return None


def _uint(value: Any, bits: int = 32) -> int | None:
    if type(value) is int and 0 <= value < (1 << bits):
        return value
    return None


def _int32(value: Any) -> int | None:
    if type(value) is int and -(1 << 31) <= value < (1 << 31):
        return value
    return None


def apply_properties(state: UnitState, props: Any) -> None:
    """Set STATE's fields from PROPS (a{sv}: name -> variant) of the Unit or Service
    interface; values of the wrong type or shape are left out."""
    if not isinstance(props, dict):
        return
    for key, value in props.items():
        if key == "ActiveState":
            state.active = word(variant(value, "s")) or state.active
        elif key == "SubState":
            state.sub = word(variant(value, "s")) or state.sub
        elif key == "LoadState":
            state.load = word(variant(value, "s")) or state.load
        elif key == "Result":
            state.result = word(variant(value, "s")) or state.result
        elif key == "MainPID":
            pid = _uint(variant(value, "u"))
            if pid is not None:
                state.main_pid = pid or None
        elif key == "NRestarts":
            restarts = _uint(variant(value, "u"))
            if restarts is not None:
                state.restarts = restarts
        elif key == "ExecMainStatus":
            status = _int32(variant(value, "i"))
            if status is not None:
                state.exec_main_status = status
        elif key == "ActiveEnterTimestamp":
            usec = _uint(variant(value, "t"), 64)
            if usec is not None:
                state.active_enter_usec = usec or None
        elif key == "ControlGroup":
            group = variant(value, "s")
            if isinstance(group, str):
                state.control_group = cgroup(group)


def listed_units(body: Any, patterns: Sequence[str] = PATTERNS) -> dict[str, tuple[str, UnitState]]:
    """A ``ListUnitsByPatterns`` reply (a(ssssssouso)): name -> (object path, load/active/sub),
    rows that are not well formed or not ours left out."""
    rows = body[0] if isinstance(body, tuple) and body and isinstance(body[0], list) else None
    if rows is None:
        raise BusError("ListUnitsByPatterns gave no list of units")
    if len(rows) > MAX_UNITS:
        raise BusError(f"systemd listed {len(rows)} units of ours (at most {MAX_UNITS})")
    units: dict[str, tuple[str, UnitState]] = {}
    for row in rows:
        if not isinstance(row, tuple) or len(row) != 10:
            continue
        name, path = unit_name(row[0], patterns), object_path(row[6])
        if name is None or path is None:
            continue
        units[name] = (
            path,
            UnitState(name, load=word(row[2]), active=word(row[3]), sub=word(row[4])),
        )
    return units
