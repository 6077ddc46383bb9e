"""One journal entry as the Logs view and `microvm-tui logs` show it, parsed from
``journalctl --output=json``.

Everything in an entry is outside text: a guest's serial console, a helper script's output, or a
journal file a guest wrote itself. Escape sequences are dropped whole (a colour code shown as
``␛[0m`` helps nobody), what is left passes the one sanitiser, and a line is bounded.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from tui.host.text import sanitise

# What we ask journalctl for (it adds __CURSOR, __REALTIME_TIMESTAMP, __MONOTONIC_TIMESTAMP).
OUTPUT_FIELDS = ",".join(
    (
        "MESSAGE",
        "PRIORITY",
        "_PID",
        "SYSLOG_IDENTIFIER",
        "_SYSTEMD_UNIT",
        "_SYSTEMD_USER_UNIT",
        "UNIT",
        "USER_UNIT",
    )
)
MAX_TEXT = 4096  # characters of one line kept; the rest becomes "…"

# ECMA-48 sequences: CSI, OSC/DCS/APC/PM/SOS strings (to BEL or ST), two-byte escapes.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"
    r"|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[ -/]*[0-~]"
    r"|\x9b[0-?]*[ -/]*[@-~]"
)

PRIORITY_NAMES = ("emerg", "alert", "crit", "err", "warning", "notice", "info", "debug")


@dataclass(frozen=True)
class LogLine:
    usec: int  # wall clock, microseconds since the epoch (0: not known)
    unit: str  # the unit it belongs to ("microvm@web.service"), "" when not known
    priority: int  # 0 emerg … 7 debug; 6 (info) when the entry has none
    text: str  # one line, sanitised, escape sequences removed
    cursor: str = ""  # journalctl's cursor, to follow on from this entry
    from_manager: bool = False  # systemd's own message about the unit

    @property
    def priority_name(self) -> str:
        return PRIORITY_NAMES[self.priority]

    def to_json(self) -> dict[str, Any]:
        return {
            "usec": self.usec,
            "unit": self.unit,
            "priority": self.priority_name,
            "text": self.text,
            "cursor": self.cursor,
        }


def field_bytes(value: Any) -> bytes | None:
    """A journal JSON field value as bytes: string, byte array, or several values (joined)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value.encode("utf-8", "surrogateescape")
    if isinstance(value, list):
        if all(isinstance(b, int) and not isinstance(b, bool) for b in value):
            try:
                return bytes(value)
            except ValueError:  # a number outside 0..255: not a byte array
                return None
        parts = [field_bytes(v) for v in value]
        kept = [p for p in parts if p is not None]
        return b"\n".join(kept) if kept else None
    return None


def clean_message(raw: bytes) -> str:
    """A MESSAGE as one line of plain text: escapes dropped, controls made visible, bounded."""
    text = raw.decode("utf-8", "replace").removesuffix("\r")
    if "\x1b" in text or "\x9b" in text:
        text = _ESCAPES.sub("", text)
    text = text.replace("\r\n", "\n").replace("\r", "").replace("\t", "    ")
    # Several values of MESSAGE (or a message with newlines): one line, visibly joined.
    return sanitise(text.replace("\n", " ⏎ "), limit=MAX_TEXT)


def _text(record: dict[str, Any], key: str) -> str:
    data = field_bytes(record.get(key))
    return data.decode("utf-8", "replace") if data is not None else ""


def _int(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def json_record(line: bytes | str) -> dict[str, Any] | None:
    """One line of ``journalctl --output=json`` as its JSON object; None for a blank line or
    anything that is not one."""
    if isinstance(line, bytes):
        line = line.decode("utf-8", "replace")
    line = line.strip()
    if not line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def parse_line(line: bytes | str) -> LogLine | None:
    """One line of ``journalctl --output=json``; None for anything that is not an entry."""
    record = json_record(line)
    if record is None:
        return None
    message = field_bytes(record.get("MESSAGE"))
    priority = _int(_text(record, "PRIORITY") or 6, 6)
    ident = _text(record, "SYSLOG_IDENTIFIER")
    from_manager = _text(record, "_PID") == "1" or ident == "systemd"
    unit = (
        _text(record, "_SYSTEMD_UNIT")
        or _text(record, "_SYSTEMD_USER_UNIT")
        or (_text(record, "UNIT") or _text(record, "USER_UNIT") if from_manager else "")
        or ident  # a guest's own journal: whoever logged (kernel, a daemon)
    )
    return LogLine(
        usec=max(_int(record.get("__REALTIME_TIMESTAMP"), 0), 0),
        unit=sanitise(unit, limit=120),
        priority=min(max(priority, 0), 7),
        text=clean_message(message) if message is not None else "",
        cursor=sanitise(_text(record, "__CURSOR"), limit=512),
        from_manager=from_manager,
    )


def short_unit(unit: str, vm: str) -> str:
    """The unit's name without the VM's instance: "microvm", "tap-interfaces", "install"."""
    if unit == f"install-microvm-{vm}.service":
        return "install"
    if unit.endswith(f"@{vm}.service"):
        base = unit[: -len(f"@{vm}.service")]
        return base if base == "microvm" else base.removeprefix("microvm-")
    return unit.removesuffix(".service")
