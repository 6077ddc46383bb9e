"""Property tests (Hypothesis) of the stream readers: nix's internal-json log, QMP replies
from a hostile socket, and the terminal emulator fed arbitrary guest bytes.

Properties: nothing raises but the module's own error type, every call stays within a time
bound, the state kept stays within its size bounds, and the text that comes out (log lines,
progress, reasons, screen cells) carries no terminal controls.
"""

from __future__ import annotations

import json
import socket
import threading
from pathlib import Path
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from rich.cells import cell_len

from tests.fakes.qmp import json_stream
from tests.fuzz_support import Clock, assert_clean, mixed_text, special_text, strings_in
from tui.host.actions.nixlog import NixLogParser
from tui.host.qmp import QMPError, qmp_execute
from tui.host.sampling.qmp import query_qemu
from tui.vt import TerminalEmulator, line_cells, line_runs
from tui.vt.limits import MAX_CELL_LEN, MAX_RESPONSES, MAX_TITLE_LEN

pytestmark = pytest.mark.fuzz

TIME_BOUND = 1.0

# --- nix --log-format internal-json -----------------------------------------------------------

_NIX_KEYS = ["action", "id", "type", "fields", "text", "msg", "level", "parent", "raw_msg"]
nix_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([0, 1, 100, 101, 102, 103, 104, 105, 106, 107, 108, 111]),
    st.floats(allow_nan=True),
    mixed_text,
    st.sampled_from(["start", "stop", "result", "msg", "/nix/store/" + "a" * 32 + "-x.drv"]),
)
nix_events = st.dictionaries(
    st.one_of(st.sampled_from(_NIX_KEYS), mixed_text),
    st.one_of(nix_scalars, st.lists(nix_scalars, max_size=5)),
    max_size=7,
)
nix_lines = st.one_of(
    nix_events.map(lambda e: "@nix " + json.dumps(e)),
    mixed_text,
    mixed_text.map(lambda t: "@nix " + t),
)


@given(st.lists(nix_lines, max_size=40), st.booleans())
@example(["@nix " + json.dumps({"action": "msg", "level": 0, "msg": "\x1bP+q\x9b\u202e"})], True)
@example(["plain \x07\x1b(0 line\u2066"], False)
def test_nix_log_reader_never_raises_and_emits_clean_text(lines: list[str], ok: bool) -> None:
    parser = NixLogParser(tail_lines=5)
    with Clock() as clock:
        shown = [out for line in lines for out in parser.feed(line)]
        parser.finish(ok)
        progress = parser.progress()
        summary = progress.summary()
    assert clock.seconds < TIME_BOUND
    assert len(progress.log_tail) <= 5
    for text in [*shown, summary, *strings_in(progress)]:
        for line in text.split("\n"):  # Nix's messages span lines; each line must be clean
            assert_clean(line, "nix log output")


# --- QMP replies from a hostile socket --------------------------------------------------------

_QMP_KEYS = [
    "status", "thread-id", "cpu-index", "base-memory", "plugged-memory", "actual", "stats",
    "last-update", "stat-total-memory", "stat-available-memory", "stat-free-memory", "device",
    "rd_bytes", "wr_bytes", "class", "desc",
]  # fmt: skip
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | mixed_text,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.one_of(st.sampled_from(_QMP_KEYS), mixed_text), inner, max_size=5)
    ),
    max_leaves=20,
)
# What the server sends for one request: a reply (return or error) with the request's id,
# a stray event first, or a line of garbage.
replies = st.one_of(
    st.tuples(st.just("return"), json_values),
    st.tuples(st.just("error"), json_values),
    st.tuples(st.just("event"), json_values),
    st.tuples(st.just("raw"), st.binary(max_size=64)),
)


class HostileQMP:
    """A unix-socket server that greets, then answers each request (a JSON stream, as qemu
    reads it) from REPLIES."""

    def __init__(self, path: Path, greeting: bytes, answers: list[tuple[str, Any]]) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.greeting, self.answers = greeting, list(answers)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            try:
                conn.sendall(self.greeting)
                for request in json_stream(conn):
                    msg_id = request.get("id")
                    kind, value = self.answers.pop(0) if self.answers else ("return", {})
                    if kind == "raw":
                        out = value + b"\n"
                    elif kind == "event":
                        out = json.dumps({"event": value}).encode() + b"\n"
                        out += json.dumps({"return": {}, "id": msg_id}).encode() + b"\n"
                    else:
                        out = json.dumps({kind: value, "id": msg_id}).encode() + b"\n"
                    conn.sendall(out)
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        self.thread.join(5)


greetings = st.one_of(
    st.just(b'{"QMP": {"version": {}, "capabilities": []}}\n'),
    json_values.map(lambda v: json.dumps({"QMP": v}).encode() + b"\n"),
    st.binary(max_size=64).map(lambda b: b + b"\n"),
)


@given(greeting=greetings, answers=st.lists(replies, max_size=9), pipeline=st.booleans())
@example(
    greeting=b'{"QMP": {}}\n',
    answers=[("return", {})] * 4 + [("return", {"actual": 1e400})],
    pipeline=False,
)
def test_qmp_reader_never_raises_and_says_why_in_clean_text(
    tmp_path_factory: pytest.TempPathFactory,
    greeting: bytes,
    answers: list[tuple[str, Any]],
    pipeline: bool,
) -> None:
    path = tmp_path_factory.mktemp("qmp") / "q.sock"
    server = HostileQMP(path, greeting, answers)
    try:
        with Clock() as clock:
            info = query_qemu(str(path), timeout=0.2, pipeline=pipeline)
    finally:
        server.close()
    assert clock.seconds < 0.2 + TIME_BOUND
    for text in [info.error or "", *info.reasons.values()]:
        assert_clean(text, "a QMP reason")


class RawServer:
    """A unix-socket server that sends DATA to its one client, then ends its side."""

    def __init__(self, path: Path, data: bytes) -> None:
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.server.bind(str(path))
        self.server.listen(1)
        self.data = data
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        try:
            conn, _ = self.server.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(2)
            try:
                conn.sendall(self.data)
                conn.shutdown(socket.SHUT_WR)
                while conn.recv(65536):
                    pass
            except OSError:
                return

    def close(self) -> None:
        self.server.close()
        self.thread.join(5)


@given(st.binary(max_size=300))
@example(b"[" * 100000 + b"\n")
@example(b'{"QMP": {"version": {}, "capabilities": []}}\n{"return": {}, "id": [1]}\n')
@example(b'{"QMP": {"version": {}, "capabilities": []}}\n\xff\xfe\n')
def test_qmp_session_raises_only_qmp_error(
    tmp_path_factory: pytest.TempPathFactory, data: bytes
) -> None:
    path = tmp_path_factory.mktemp("qmpraw") / "q.sock"
    server = RawServer(path, data)
    try:
        with Clock() as clock:
            try:
                qmp_execute(str(path), "query-status", timeout=0.5)
            except QMPError as e:
                assert_clean(str(e), "a QMP error")
    finally:
        server.close()
    assert clock.seconds < 0.5 + TIME_BOUND


# --- the terminal emulator ------------------------------------------------------------------

_ESCAPES = [
    b"\x1b[", b"\x1b]", b"\x1bP", b"\x1b_", b"\x1b^", b"\x1bX", b"\x1b\\", b"\x07", b"\x9b",
    b"\x1b(0", b"\x1b)B", b"\x1b#8", b"\x1b[?1049h", b"\x1b[?1049l", b"\x1b[6n", b"\x1b[c",
    b"\x1b]0;", b"\x1b[38;2;", b"\x1b[r", b"\x1b[99999999999999999999L", b"\x1bc", b"\x1b7",
    b"\x1b8", b"\r\n", b"\n", b"\t", b"\x08", b";", b"9", b"m", b"\xcc\x81", b"\xe2\x80\xae",
    b"\xf0\x9f\x98\x80", b"\xef\xbc\xa1", b"\xff", b"\xc0",
]  # fmt: skip
guest_bytes = st.lists(
    st.one_of(st.sampled_from(_ESCAPES), st.binary(max_size=20), special_text.map(str.encode)),
    max_size=60,
).map(b"".join)


@given(
    chunks=st.lists(guest_bytes, min_size=1, max_size=4),
    size=st.tuples(st.integers(1, 30), st.integers(1, 10)),
)
@example(chunks=[b"\x1b]0;" + b"T" * 5000 + b"\x07", b"e\xcc\x81" * 50], size=(10, 3))
def test_terminal_emulator_takes_any_bytes(chunks: list[bytes], size: tuple[int, int]) -> None:
    columns, lines = size
    term = TerminalEmulator(columns, lines, scrollback=20)
    with Clock() as clock:
        for chunk in chunks:
            term.parser.feed(chunk)  # the parser itself: TerminalEmulator.feed hides errors
    assert clock.seconds < TIME_BOUND
    screen = term.screen
    rows = [line_cells(screen.buffer[y], columns) for y in range(screen.lines)]
    assert len(screen.history) <= 20
    rows += list(screen.history)
    for cells in rows:
        assert all(len(c.data) <= 1 + MAX_CELL_LEN for c in cells)
        runs = line_runs(cells, columns)
        text = "".join(t for t, _ in runs)
        assert_clean(text, "a screen line")
        assert cell_len(text) <= columns
    assert len(screen.title) <= MAX_TITLE_LEN
    assert len(screen.responses) <= MAX_RESPONSES
