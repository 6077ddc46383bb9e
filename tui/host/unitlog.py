"""The last thing a unit logged: why a helper unit failed, in one line.

The same source as the console's history: the unit's log file in ``console_log_dir`` where no
journald runs (the lab: one file per unit, ``NAME.log`` for a VM, ``UNIT.log`` for a helper),
else the journal (``journalctl -u UNIT -n 1``).
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

from tui.host.logs.query import LogQuery
from tui.host.logs.reader import read_journal
from tui.host.settings import HostSettings

TAIL_BYTES = 4096  # the last line is in here, or it is too long to show anyway
MAX_LINE = 200
JOURNAL_TTL_S = 10.0  # a failed unit logs nothing more: ask journalctl seldom

_journal_cache: dict[tuple[str, str], tuple[float, str | None]] = {}


def _one_line(text: str) -> str | None:
    for line in reversed(text.splitlines()):
        line = "".join(c if c.isprintable() else " " for c in line).strip()
        if line:
            return line if len(line) <= MAX_LINE else line[: MAX_LINE - 1] + "…"
    return None


def _tail_of_file(path: Path) -> str | None:
    """The last TAIL_BYTES of a regular file, never following a link, never blocking."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        os.lseek(fd, max(0, st.st_size - TAIL_BYTES), os.SEEK_SET)
        return os.read(fd, TAIL_BYTES).decode("utf-8", errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def _from_journal(settings: HostSettings, unit: str) -> str | None:
    """The unit's last line in the journal, through the Logs view's reader (one journalctl
    invocation for the whole app: scope, --directory, --user-unit, bounds)."""
    key = (settings.systemd_scope, unit)
    now = time.monotonic()
    cached = _journal_cache.get(key)
    if cached is not None and now - cached[0] < JOURNAL_TTL_S:
        return cached[1]
    result = read_journal(settings, LogQuery(units=(unit,), lines=1))
    texts = [entry.text for entry in result.lines if entry.text.strip()]
    line = _one_line(texts[-1]) if texts else None
    _journal_cache[key] = (now, line)
    return line


def last_log_line(settings: HostSettings, unit: str) -> str | None:
    """UNIT's last log line (cleaned, at most MAX_LINE characters), or None."""
    if "/" in unit or unit.startswith("."):
        return None
    if settings.console_log_dir is not None:
        text = _tail_of_file(Path(settings.console_log_dir) / f"{unit}.log")
        return _one_line(text) if text else None
    return _from_journal(settings, unit)


def failed_helper_problem(settings: HostSettings, unit: str, result: str | None) -> str:
    """The problem sentence for a failed helper unit: it blocks the VM's next start."""
    why = last_log_line(settings, unit)
    if why is None and result and result != "success":
        why = f"result {result}"
    text = f"{unit} failed (start/restart resets it)"
    return f"{text}: {why}" if why else text
