"""What to read from a journal, and the one `journalctl` command line that reads it.

A query never reads a whole journal: the last LINES entries that match (`--lines`, read from the
journal's end), then, when following, what comes after the last cursor. Unit, priority and text
filters go to journalctl (its indexes and `--grep`), not through Python.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, replace

from tui.host.logs.entry import OUTPUT_FIELDS
from tui.host.settings import HostSettings
from tui.host.systemd import HELPERS

DEFAULT_LINES = 500
MAX_LINES = 100_000


class Since(enum.Enum):
    BOOT = "boot"  # this start of the VM: since its units' current activation
    HOUR = "hour"
    TODAY = "today"
    ALL = "all"

    @property
    def label(self) -> str:
        return {"boot": "this boot", "hour": "last hour", "today": "today", "all": "all"}[
            self.value
        ]


# The priority filter: at most this level (journalctl -p 0..N).
PRIORITIES = {"err": 3, "warning": 4, "info": 6, "all": None}


class QueryError(ValueError):
    """A filter that cannot be used (a bad regular expression), said in one line."""


def vm_units(vm: str) -> tuple[str, ...]:
    """microvm@NAME and every helper unit of the host module, install-microvm-NAME last."""
    return (
        f"microvm@{vm}.service",
        *(template.format(vm) for template, _ in HELPERS),
        f"install-microvm-{vm}.service",
    )


@dataclass(frozen=True)
class LogQuery:
    units: tuple[str, ...] = ()  # empty: every entry of the journal (a guest's own journal)
    since: Since = Since.ALL
    priority: int | None = None  # at most this level (3 err, 4 warning, 6 info)
    grep: str = ""  # a regular expression (PCRE2, journalctl --grep; case-insensitive if lower)
    lines: int = DEFAULT_LINES
    since_usec: int | None = None  # Since.BOOT resolved to a wall-clock time (see boot_start)

    def checked(self) -> LogQuery:
        """The query with its regular expression checked (QueryError) and its bounds applied."""
        if self.grep:
            try:
                re.compile(self.grep)
            except re.error as exc:
                raise QueryError(f"not a regular expression: {exc}") from None
        lines = min(max(int(self.lines), 1), MAX_LINES)
        return replace(self, lines=lines)


def _since_args(query: LogQuery) -> list[str]:
    match query.since:
        case Since.HOUR:
            return ["--since=-1h"]
        case Since.TODAY:
            return ["--since=today"]
        case Since.BOOT if query.since_usec is not None:
            return [f"--since=@{query.since_usec / 1_000_000:.6f}"]
        case _:
            return []


def journal_argv(
    settings: HostSettings,
    query: LogQuery,
    *,
    files: tuple[str, ...] = (),
    follow: bool = False,
    after_cursor: str = "",
) -> list[str]:
    """journalctl reading QUERY: from the host's journal (settings: system, the user manager's,
    or the lab's --directory), or from FILES (a guest's journal files) when given."""
    base = settings.journalctl_argv() if not files else [settings.journalctl_argv()[0]]
    argv = [*base, *(f"--file={f}" for f in files)]
    # A user manager's units are --user-unit in its own journal; a journald of its own (the
    # lab's) and guest journal files know them as plain units.
    user = settings.systemd_scope == "user" and not (settings.journal_dir or files)
    unit_flag = "--user-unit" if user else "--unit"
    argv += [f"{unit_flag}={unit}" for unit in query.units]
    if query.priority is not None:
        argv.append(f"--priority=0..{query.priority}")
    if query.grep:
        argv.append(f"--grep={query.grep}")
    argv += _since_args(query)
    if after_cursor:
        argv.append(f"--after-cursor={after_cursor}")
    else:
        argv.append(f"--lines={query.lines}")
    argv += ["--output=json", f"--output-fields={OUTPUT_FIELDS}", "--all", "--no-pager", "--quiet"]
    if follow:
        argv.append("--follow")
    return argv
