"""Parse ``journalctl -o json`` output into the serial console's bytes.

Format facts (systemd's journal export JSON, ``man journalctl`` / ``systemd.journal-fields``):

* one JSON object per line; every value is a string, except
* a field whose data is not valid UTF-8 or holds non-printable bytes (an escape sequence in a
  serial console line is enough) is an *array of numbers*, the raw bytes;
* a field set more than once in one entry is an *array of values* (strings or byte arrays);
* a field larger than 4096 bytes is ``null`` unless ``--all`` is given; entries may lack
  ``MESSAGE`` altogether.

journald splits a service's stdout on ``\\n`` and drops the newline; a serial console ends its
lines with ``\\r\\n``, so the ``\\r`` stays at the end of MESSAGE. To feed a terminal emulator we
put ``\\r\\n`` back. systemd's own messages about the unit ("Started microvm@web.service") come
with ``_PID=1``/``SYSLOG_IDENTIFIER=systemd``: they are shown dimmed, as notes, not as guest
output.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tui.host.logs.entry import field_bytes, json_record

# The command line is the Logs view's (tui.host.logs.query.journal_argv): one journal reader.
HISTORY_LINES = 1000


@dataclass(frozen=True)
class JournalEntry:
    message: bytes | None  # None: the entry had no (readable) MESSAGE
    cursor: str | None = None
    realtime_usec: int | None = None
    from_systemd: bool = False  # a message of the service manager about the unit, not output


def _field_str(value: Any) -> str | None:
    data = field_bytes(value)
    return data.decode("utf-8", "replace") if data is not None else None


def parse_journal_line(line: bytes | str) -> JournalEntry | None:
    """One line of ``journalctl -o json``; None for a blank line or one that is not an entry."""
    record = json_record(line)
    if record is None:
        return None
    realtime = record.get("__REALTIME_TIMESTAMP")
    try:
        usec = int(realtime) if realtime is not None else None
    except (TypeError, ValueError):
        usec = None
    pid = _field_str(record.get("_PID"))
    ident = _field_str(record.get("SYSLOG_IDENTIFIER"))
    return JournalEntry(
        message=field_bytes(record.get("MESSAGE")),
        cursor=_field_str(record.get("__CURSOR")),
        realtime_usec=usec,
        from_systemd=pid == "1" or ident == "systemd",
    )


def lines_to_terminal(data: bytes) -> bytes:
    """Text made of lines (a log file, the journal) as a terminal shows lines: every bare LF
    becomes CR LF, or each line would start where the previous one ended (a "staircase":
    bare LFs come from the runner's and QEMU's own messages, not from the guest's tty). CR LF
    stays as it is; a CR at the end of one chunk and the LF at the start of the next become
    CR CR LF, which shows the same. For line sources only: a live console's bytes are the
    guest's (a full-screen program moves down with LF on purpose)."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def entry_bytes(entry: JournalEntry) -> bytes:
    """What to feed the terminal for one entry: the line with ``\\r\\n`` put back."""
    if entry.message is None:
        return b""
    message = lines_to_terminal(entry.message.removesuffix(b"\r"))  # a joined field: lines
    if entry.from_systemd:
        # Our own framing; the text still goes through the emulator like everything else.
        return b"\x1b[2m-- " + message + b" --\x1b[0m\r\n"
    return message + b"\r\n"


class JournalDecoder:
    """Incremental: feed chunks of journalctl's stdout, get terminal bytes back."""

    MAX_LINE = 1 << 20  # a runaway line without newline is dropped past this

    def __init__(self) -> None:
        self._partial = bytearray()
        self.last_cursor: str | None = None

    def feed(self, chunk: bytes) -> bytes:
        self._partial += chunk
        *lines, rest = bytes(self._partial).split(b"\n")
        self._partial = bytearray(rest if len(rest) <= self.MAX_LINE else b"")
        out = bytearray()
        for line in lines:
            entry = parse_journal_line(line)
            if entry is None:
                continue
            if entry.cursor:
                self.last_cursor = entry.cursor
            out += entry_bytes(entry)
        return bytes(out)
