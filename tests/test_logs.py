"""The journal reader (tui/host/logs) on real journal files: written by systemd-journal-remote
from export format, read by the real journalctl, exactly as the Logs view and `logs` ask.

The lab tests (test_logs_lab.py) read the lab's live journald; these check what needs no VM:
hostile lines, a guest journal share planted with links and special files, a corrupted file,
another user's journal, a missing journalctl, and the bounds of a read.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import replace
from pathlib import Path

import pytest

from tui.host.logs.entry import LogLine, clean_message, parse_line, short_unit
from tui.host.logs.guest import FAQ_HINT, find_guest_journal, opened_journal_files
from tui.host.logs.query import LogQuery, QueryError, Since, journal_argv, vm_units
from tui.host.logs.reader import read_journal
from tui.host.logs.summary import vm_of_unit
from tui.host.model import VM, Share
from tui.host.settings import HostSettings
from tui.host.text import is_clean
from tui.lab.guest_journal import find_journal_remote

MID = "0123456789abcdef0123456789abcdef"
BOOT = "fedcba9876543210fedcba9876543210"


def export(entries: list[dict[str, object]]) -> bytes:
    """Journal export format: KEY=VALUE lines (binary-safe form for values with newlines or
    bytes that are not text), entries separated by an empty line."""
    now = int(time.time() * 1_000_000)
    out = bytearray()
    for i, entry in enumerate(entries):
        fields: dict[str, object] = {
            "__REALTIME_TIMESTAMP": now - (len(entries) - i) * 1000,
            "__MONOTONIC_TIMESTAMP": i + 1,
            "_BOOT_ID": BOOT,
            "_MACHINE_ID": MID,
            **entry,
        }
        for key, value in fields.items():
            data = value if isinstance(value, bytes) else str(value).encode()
            if b"\n" in data or any(b < 0x20 and b != 9 for b in data):
                out += key.encode() + b"\n" + len(data).to_bytes(8, "little") + data + b"\n"
            else:
                out += key.encode() + b"=" + data + b"\n"
        out += b"\n"
    return bytes(out)


def write_journal(directory: Path, entries: list[dict[str, object]], name: str = "a") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / f"{name}.journal"
    subprocess.run(
        [str(find_journal_remote()), f"--output={target}", "-"],
        input=export(entries),
        check=True,
        capture_output=True,
    )
    return target


def settings_for(journal_dir: Path) -> HostSettings:
    return HostSettings(state_dir=journal_dir.parent, journal_dir=journal_dir)


HOSTILE = [
    b"\x1b]0;owned title\x07title set",
    b"\x1b[31mred\x1b[0m and [/bold] markup [b]x[/b]",
    b"bidi \xe2\x80\xae evil \xe2\x80\xac end",
    b"invalid utf-8 \xff\xfe here",
    b"\x1b]52;c;ZXZpbA==\x07clipboard",
    b"\x9b31mC1 CSI",
    b"x" * 20_000,
]


@pytest.fixture
def unit_journal(tmp_path: Path) -> Path:
    """A journal dir as the lab's journald would have it: lines of microvm@web and its helper
    units, several priorities, and hostile messages."""
    entries: list[dict[str, object]] = []
    for i in range(30):
        entries.append(
            {"_SYSTEMD_UNIT": "microvm@web.service", "PRIORITY": 6, "MESSAGE": f"boot line {i}"}
        )
    entries.append(
        {"_SYSTEMD_UNIT": "microvm-tap-interfaces@web.service", "PRIORITY": 3, "MESSAGE": "tap"}
    )
    entries.append({"_SYSTEMD_UNIT": "microvm@web.service", "PRIORITY": 4, "MESSAGE": "warn"})
    entries.append({"_SYSTEMD_UNIT": "microvm@db.service", "PRIORITY": 3, "MESSAGE": "db err"})
    for raw in HOSTILE:
        entries.append({"_SYSTEMD_UNIT": "microvm@web.service", "PRIORITY": 6, "MESSAGE": raw})
    directory = tmp_path / "journal"
    write_journal(directory / MID, entries)
    return directory


def test_units_merged_and_marked(unit_journal: Path) -> None:
    result = read_journal(settings_for(unit_journal), LogQuery(units=vm_units("web"), lines=1000))
    assert result.error is None
    units = {line.unit for line in result.lines}
    assert units == {"microvm@web.service", "microvm-tap-interfaces@web.service"}
    stamps = [line.usec for line in result.lines]
    assert stamps == sorted(stamps)  # merged by time
    assert not any("db err" in line.text for line in result.lines)


def test_last_lines_only(unit_journal: Path) -> None:
    result = read_journal(settings_for(unit_journal), LogQuery(units=vm_units("web"), lines=3))
    assert len(result.lines) == 3
    assert result.lines[-1].text.startswith("x")  # the newest


def test_priority_and_unit_filters(unit_journal: Path) -> None:
    settings = settings_for(unit_journal)
    errors = read_journal(settings, LogQuery(units=vm_units("web"), priority=3)).lines
    assert [(e.unit, e.text) for e in errors] == [("microvm-tap-interfaces@web.service", "tap")]
    warnings = read_journal(settings, LogQuery(units=vm_units("web"), priority=4)).lines
    assert {e.text for e in warnings} == {"tap", "warn"}
    only_tap = read_journal(settings, LogQuery(units=("microvm-tap-interfaces@web.service",)))
    assert [e.text for e in only_tap.lines] == ["tap"]


def test_grep(unit_journal: Path) -> None:
    settings = settings_for(unit_journal)
    found = read_journal(settings, LogQuery(units=vm_units("web"), grep="boot line 2[0-9]"))
    assert [e.text for e in found.lines] == [f"boot line {i}" for i in range(20, 30)]
    with pytest.raises(QueryError, match="not a regular expression"):
        LogQuery(grep="(").checked()


def test_hostile_lines_are_text(unit_journal: Path) -> None:
    result = read_journal(settings_for(unit_journal), LogQuery(units=vm_units("web"), lines=7))
    texts = [line.text for line in result.lines]
    assert len(texts) == len(HOSTILE)
    for text in texts:
        assert is_clean(text), text
        assert "\x1b" not in text and "\x07" not in text and "\u202e" not in text
    assert texts[0] == "title set"  # the OSC is dropped whole, not shown as garbage
    assert texts[1] == "red and [/bold] markup [b]x[/b]"  # brackets stay text
    assert "\ufffd" in texts[3]
    assert texts[4] == "clipboard"
    assert len(texts[6]) <= 4096 and texts[6].endswith("…")


def test_parse_line_rejects_garbage() -> None:
    for raw in (b"", b"not json", b"[1,2]", b'{"MESSAGE": [300, 1]}', b"\xff\xfe"):
        entry = parse_line(raw)
        assert entry is None or is_clean(entry.text)
    entry = parse_line(json.dumps({"MESSAGE": [27, 91, 50, 74, 104, 105], "PRIORITY": "99"}))
    assert entry is not None and entry.text == "hi" and entry.priority == 7


def test_clean_message_keeps_plain_text() -> None:
    assert clean_message(b"plain line\r") == "plain line"
    assert clean_message(b"a\tb") == "a    b"


def test_short_units_and_vm_of_unit() -> None:
    assert short_unit("microvm@web.service", "web") == "microvm"
    assert short_unit("microvm-tap-interfaces@web.service", "web") == "tap-interfaces"
    assert short_unit("install-microvm-web.service", "web") == "install"
    assert vm_of_unit("microvm-virtiofsd@a.b.service") == "a.b"
    assert vm_of_unit("install-microvm-web.service") == "web"
    assert vm_of_unit("sshd.service") is None


def test_argv_never_reads_everything() -> None:
    settings = HostSettings(journal_dir=Path("/j"))
    argv = journal_argv(settings, LogQuery(units=("microvm@web.service",), lines=50))
    assert argv[0].endswith("/journalctl") and argv[1] == "--directory=/j"
    assert "--lines=50" in argv and "--unit=microvm@web.service" in argv
    follow = journal_argv(settings, LogQuery(), follow=True, after_cursor="s=1")
    assert "--after-cursor=s=1" in follow and "--follow" in follow
    assert not any(a.startswith("--lines") for a in follow)
    boot = journal_argv(settings, LogQuery(since=Since.BOOT, since_usec=1_500_000))
    assert "--since=@1.500000" in boot
    user = journal_argv(HostSettings(systemd_scope="user"), LogQuery(units=("u.service",)))
    assert "--user" in user and "--user-unit=u.service" in user
    huge = LogQuery(lines=10**9).checked()
    assert huge.lines == 100_000


# --- the guest's own journal ------------------------------------------------------------


def vm_with_share(tmp_path: Path, source: Path) -> VM:
    return VM(
        name="web",
        path=tmp_path,
        shares=[Share(tag="journal", proto="virtiofs", source=str(source))],
    )


GUEST = [
    {"PRIORITY": 6, "SYSLOG_IDENTIFIER": "kernel", "MESSAGE": "Linux version"},
    {"PRIORITY": 3, "SYSLOG_IDENTIFIER": "nginx", "MESSAGE": "bind() failed"},
]


def test_guest_journal_found_and_read(tmp_path: Path) -> None:
    source = tmp_path / "journal"
    write_journal(source / MID, GUEST, name="system")
    vm = vm_with_share(tmp_path, source)
    journal, why = find_guest_journal(vm)
    assert journal is not None and journal.machine_id == MID, why
    with opened_journal_files(journal) as (files, fds):
        assert len(files) == 1
        result = read_journal(HostSettings(), LogQuery(priority=3), files=files, pass_fds=fds)
    assert [(e.unit, e.text) for e in result.lines] == [("nginx", "bind() failed")]


def test_no_guest_journal_gives_the_faq_lines(tmp_path: Path) -> None:
    vm = VM(name="web", path=tmp_path)
    journal, why = find_guest_journal(vm)
    assert journal is None
    assert why == FAQ_HINT.format(vm="web")
    assert 'mountPoint = "/var/log/journal";' in why and "microvm.machineId" in why


def test_guest_journal_links_and_special_files_are_not_followed(tmp_path: Path) -> None:
    """A guest writes its share: a machine-id dir that is a link out of it, or journal files
    that are links or fifos, are never opened."""
    secret = tmp_path / "host-journal" / MID
    write_journal(secret, [{"MESSAGE": "host secret", "PRIORITY": 6}])
    source = tmp_path / "journal"
    source.mkdir()
    (source / MID).symlink_to(secret)
    journal, _why = find_guest_journal(vm_with_share(tmp_path, source))
    assert journal is None  # a link is not a machine-id directory

    (source / MID).unlink()
    (source / MID).mkdir()
    (source / MID / "a.journal").symlink_to(secret / "a.journal")
    os.mkfifo(source / MID / "b.journal")
    journal, _why = find_guest_journal(vm_with_share(tmp_path, source))
    assert journal is not None
    with opened_journal_files(journal) as (files, _fds):
        assert files == ()  # neither the link nor the fifo (which would block a reader)


def test_two_machine_ids_are_named(tmp_path: Path) -> None:
    source = tmp_path / "journal"
    (source / MID).mkdir(parents=True)
    (source / ("f" * 32)).mkdir()
    journal, why = find_guest_journal(vm_with_share(tmp_path, source))
    assert journal is None and "2 machine-id directories" in why


def test_corrupted_journal_file_is_one_line(tmp_path: Path) -> None:
    source = tmp_path / "journal"
    (source / MID).mkdir(parents=True)
    (source / MID / "system.journal").write_bytes(b"LPKSHHRH" + os.urandom(4000))
    journal, _ = find_guest_journal(vm_with_share(tmp_path, source))
    assert journal is not None
    with opened_journal_files(journal) as (files, fds):
        result = read_journal(HostSettings(), LogQuery(), files=files, pass_fds=fds)
    assert result.lines == []
    said = result.error or result.note
    assert said and "\n" not in said and is_clean(said)


def test_missing_journalctl_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = settings_for(tmp_path)
    monkeypatch.setattr(
        HostSettings, "journalctl_argv", lambda self, *a: ["/nonexistent/journalctl", *a]
    )
    result = read_journal(settings, LogQuery())
    assert result.error == "journalctl is not installed"


def test_another_users_journal_is_refused_with_a_reason(
    unit_journal: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """journalctl run as a user outside the journal groups (setpriv drops to nobody), on
    root's 0640 journal files: one line that says so, no traceback, no lines."""
    os.chmod(unit_journal.parent, 0o755)
    os.chmod(unit_journal, 0o755)
    original = HostSettings.journalctl_argv
    drop = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"]
    monkeypatch.setattr(
        HostSettings, "journalctl_argv", lambda self, *a: [*drop, *original(self, *a)]
    )
    result = read_journal(settings_for(unit_journal), LogQuery(units=vm_units("web")))
    assert result.lines == []
    said = result.error or result.note
    assert said and "\n" not in said and is_clean(said)
    assert "permission" in said.lower(), said


def test_read_is_bounded_by_its_deadline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A journalctl that never ends (here: a follower by mistake) is cut at the deadline."""
    directory = tmp_path / "journal"
    write_journal(directory / MID, [{"MESSAGE": "one", "PRIORITY": 6}])
    settings = settings_for(directory)
    original = HostSettings.journalctl_argv
    monkeypatch.setattr(
        HostSettings, "journalctl_argv", lambda self, *a: [*original(self, *a), "--follow"]
    )
    started = time.monotonic()
    result = read_journal(replace(settings, timeout=0.5), LogQuery())
    assert time.monotonic() - started < 3
    assert [e.text for e in result.lines] == ["one"]
    assert result.note and "did not finish" in result.note


def test_log_line_json_is_plain() -> None:
    line = LogLine(usec=1, unit="u", priority=3, text="t", cursor="c")
    assert line.to_json() == {"usec": 1, "unit": "u", "priority": "err", "text": "t", "cursor": "c"}
