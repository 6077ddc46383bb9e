"""The `journalctl -o json` parser, on lines journalctl itself wrote.

No journald runs on the development machines, so the fixtures were made once by a private
systemd-journald (systemd 252) in a private mount namespace, fed with `systemd-cat -t
microvm@web < logs/web.log` (a lab guest's real serial output) plus a few extra lines, then read
back with `journalctl -D DIR -o json ...` exactly as the app asks (see
tests/fixtures/console_streams/README.md).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tui.host.console.history import history_endpoint
from tui.host.console.journal import (
    HISTORY_LINES,
    JournalDecoder,
    entry_bytes,
    lines_to_terminal,
    parse_journal_line,
)
from tui.host.model import VM
from tui.host.settings import HostSettings

STREAMS = Path(__file__).parent / "fixtures" / "console_streams"


def lines(name: str) -> list[bytes]:
    return (STREAMS / name).read_bytes().splitlines(keepends=True)


def test_message_as_string_loses_nothing() -> None:
    line = next(raw for raw in lines("journal_web.jsonl") if b"guest web up" in raw)
    assert b'"MESSAGE":"' in line
    entry = parse_journal_line(line)
    assert entry is not None
    assert entry.message == b"microvm-lab guest web up"  # journald took the \r\n off
    assert entry.cursor and entry.cursor.startswith("s=")
    assert entry.realtime_usec and entry.realtime_usec > 1_600_000_000_000_000
    assert not entry.from_systemd


def test_message_as_byte_array_keeps_escapes_and_invalid_utf8() -> None:
    arrays = [raw for raw in lines("journal_web.jsonl") if b'"MESSAGE":[' in raw]
    assert arrays, "the fixture must hold byte-array messages"
    messages = [parse_journal_line(raw).message for raw in arrays]  # type: ignore[union-attr]
    assert b"\x1b[1;32mweb:/#\x1b[0m echo $((6*7))" in messages
    assert b"bad \xff byte" in messages  # not valid UTF-8: kept byte for byte
    assert b"\r" in messages  # an empty serial line: journald kept the lone \r
    # SeaBIOS's reset sequence before the kernel's first line makes it a byte array too.
    assert any(m and m.startswith(b"\x1bc") and b"Linux version" in m for m in messages)


def test_plain_string_message_with_utf8() -> None:
    entry = next(
        e
        for e in map(parse_journal_line, lines("journal_web.jsonl"))
        if e and e.message and e.message.startswith(b"caf")
    )
    assert entry.message == "café ── ok".encode()


def test_missing_and_null_message() -> None:
    no_message = [parse_journal_line(raw) for raw in lines("journal_web_no_message.jsonl")]
    assert no_message and all(e is not None and e.message is None for e in no_message)
    assert all(entry_bytes(e) == b"" for e in no_message if e)
    # Without --all, a field over 4096 bytes is null: an entry, but no message.
    defaults = [parse_journal_line(raw) for raw in lines("journal_web_default.jsonl")]
    nulls = [e for e in defaults if e is not None and e.message is None]
    assert len(nulls) == 1
    with_all = [
        e
        for e in map(parse_journal_line, lines("journal_web.jsonl"))
        if e and e.message and e.message.startswith(b"xxxx")
    ]
    assert len(with_all) == 1 and len(with_all[0].message or b"") == 5000


def test_systemd_messages_are_notes() -> None:
    entry = next(
        e
        for e in map(parse_journal_line, lines("journal_web.jsonl"))
        if e and e.message and e.message.startswith(b"Stopping microvm@web")
    )
    assert entry.from_systemd
    assert entry_bytes(entry) == b"\x1b[2m-- Stopping microvm@web.service... --\x1b[0m\r\n"


@pytest.mark.parametrize(
    "line",
    [b"", b"   \n", b"not json\n", b"[1,2,3]\n", b'"a string"\n', b"{truncated"],
)
def test_lines_that_are_not_entries(line: bytes) -> None:
    assert parse_journal_line(line) is None


def test_odd_field_shapes() -> None:
    def message(value: object) -> bytes | None:
        entry = parse_journal_line(json.dumps({"MESSAGE": value, "_PID": "7"}))
        assert entry is not None
        return entry.message

    assert message([104, 105]) == b"hi"
    assert message([]) == b""
    assert message([300, 1]) is None  # not bytes
    assert message(["one", [116, 119, 111]]) == b"one\ntwo"  # a field set twice
    assert message(42) is None
    assert message(None) is None


def test_entry_bytes_puts_the_line_end_back() -> None:
    entry = parse_journal_line(json.dumps({"MESSAGE": [13]}))
    assert entry is not None and entry_bytes(entry) == b"\r\n"
    entry = parse_journal_line(json.dumps({"MESSAGE": "42"}))
    assert entry is not None and entry_bytes(entry) == b"42\r\n"
    # A field set twice is joined with LF: still lines on a terminal, not a staircase.
    entry = parse_journal_line(json.dumps({"MESSAGE": ["one", "two\r"]}))
    assert entry is not None and entry_bytes(entry) == b"one\r\ntwo\r\n"


def test_lines_to_terminal_ends_every_line_with_cr_lf() -> None:
    assert lines_to_terminal(b"a\nb\r\nc\n\nd") == b"a\r\nb\r\nc\r\n\r\nd"
    assert lines_to_terminal(b"\r\r\n") == b"\r\r\n"  # already a line end: shows the same
    assert lines_to_terminal(b"\x1b[31mred\x1b[0m\n") == b"\x1b[31mred\x1b[0m\r\n"


def test_decoder_reassembles_split_lines_and_tracks_the_cursor() -> None:
    data = (STREAMS / "journal_web.jsonl").read_bytes()
    whole = JournalDecoder().feed(data)
    decoder = JournalDecoder()
    pieces = b"".join(decoder.feed(data[i : i + 777]) for i in range(0, len(data), 777))
    assert pieces == whole
    assert b"microvm-lab guest web up\r\n" in whole
    assert b"42\r\n" in whole
    last = json.loads(data.splitlines()[-1])
    assert decoder.last_cursor == last["__CURSOR"]


def test_follow_command() -> None:
    """The console's history follows with the Logs view's journal reader."""
    settings = HostSettings(systemd_scope="system")
    argv = history_endpoint(VM(name="web", path=Path("/x/web")), settings, "why").argv
    assert argv[0].endswith("/journalctl")
    assert "--follow" in argv and "--output=json" in argv and "--all" in argv
    assert "--unit=microvm@web.service" in argv and f"--lines={HISTORY_LINES}" in argv
