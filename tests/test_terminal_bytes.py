"""The real `microvm-tui` process against a hostile state dir, in a pty: every byte it writes to
the terminal is either text that passed the sanitiser or an escape sequence Textual itself
emits. A title set (OSC 0/2), a clipboard write (OSC 52), a DCS, a bare BEL, a C1 control or a
bidi control planted in the state dir and reaching the terminal fails the test.

What Textual 8 writes on a 120x40 xterm-256color (a run with plain data, classified): SGR
(``CSI … m``), cursor positions (``CSI row;col H``), DEC private modes set and reset
(alternate screen 1049, cursor 25, autowrap 7, mouse 1000/1003/1015/1006, focus events 1004,
bracketed paste 2004, synchronized output 2026, in-band resize 2048), the mode queries
``CSI ? 2026 $ p`` / ``CSI ? 2048 $ p``, the kitty keyboard protocol push ``CSI > N u`` and pop
``CSI < u``, and one OSC: 22, the pointer shape (``OSC 22 ; default BEL``). Text: printable
characters, CR and LF. Anything else is not Textual's.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

from tests.hostile_host import make_hostile_host
from tests.test_text_sanitiser import UNSAFE_RE

COLUMNS, LINES = 120, 40
TEXTUAL_MODES = {1, 7, 25, 1000, 1003, 1004, 1006, 1015, 1049, 2004, 2026, 2048}

# One token of terminal output: a CSI, an OSC (BEL or ST ended), a DCS/APC/PM/SOS string, any
# other ESC sequence, a C1 control, or a run of anything else.
_TOKEN = re.compile(
    r"\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]"
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"
    r"|\x1b[\x20-\x7e]?"
    r"|[\x80-\x9f]"
    r"|[^\x1b\x80-\x9f]+",
    re.DOTALL,
)
_ALLOWED = [
    re.compile(r"\x1b\[[0-9;:]*m"),  # SGR
    re.compile(r"\x1b\[(?:[0-9]+;[0-9]+)?H"),  # cursor position
    re.compile(r"\x1b\[\?([0-9]+)[hl]"),  # DEC private mode set / reset (checked below)
    re.compile(r"\x1b\[\?(2026|2048)\$p"),  # DECRQM
    re.compile(r"\x1b\[>[0-9]+u|\x1b\[<u"),  # kitty keyboard protocol push / pop
    re.compile(r"\x1b\]22;[a-z-]+\x07"),  # pointer shape
]


def foreign_sequences(output: str) -> list[str]:
    """Tokens of OUTPUT that Textual does not emit (see the module docstring)."""
    bad = []
    for token in _TOKEN.findall(output):
        if not token.startswith("\x1b") and not ("\x80" <= token[0] <= "\x9f"):
            text = token.replace("\r", "").replace("\n", "")
            if UNSAFE_RE.search(text):
                bad.append(token)
            continue
        for pattern in _ALLOWED:
            match = pattern.fullmatch(token)
            if match is not None:
                if pattern is _ALLOWED[2] and int(match.group(1)) not in TEXTUAL_MODES:
                    bad.append(token)
                break
        else:
            bad.append(token)
    return bad


def test_the_classifier_catches_what_a_guest_or_host_could_plant() -> None:
    planted = [
        "\x1b]0;TITLE\x1b\\",
        "\x1b]2;TITLE\x07",
        "\x1b]52;c;cHduZWQ=\x07",
        "\x1bP+q544e\x1b\\",
        "\x1b_Gpayload\x1b\\",
        "\x07",
        "\x9b31m",
        "a\u202eb",
        "\x1b[?9h",
        "\x1b[6n",
        "\x1b[21t",
        "\x1bc",
    ]
    for text in planted:
        assert foreign_sequences("\x1b[1mok\x1b[0m" + text), repr(text)
    ours = (
        "\x1b[?1049h\x1b[?25l\x1b[>25u\x1b[?2026$p\x1b]22;default\x07"
        "\x1b[3;4H\x1b[1;38;2;1;2;3mx\r\n\x1b[<u\x1b[?1049l"
    )
    assert foreign_sequences(ours) == []


class AppInPty:
    def __init__(self, root: Path, state: Path) -> None:
        config = root / "config.toml"
        config.write_text(  # systemd: a user manager that is not there (unreachable)
            '[host]\nsystemd_scope = "user"\n'
            f'[host.systemd_env]\nXDG_RUNTIME_DIR = "{root}/nomgr"\n'
        )
        os.chmod(config, 0o600)
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", LINES, COLUMNS, 0, 0))
        env = {
            "PATH": os.environ["PATH"],
            "TERM": "xterm-256color",
            "LANG": "C.UTF-8",
            "HOME": str(root),
            "XDG_CONFIG_HOME": str(root / "no-config"),
            "PYTHONPATH": str(Path(__file__).resolve().parents[1]),
        }
        argv = [sys.executable, "-m", "tui", "--state-dir", str(state), "--config", str(config)]
        self.proc = subprocess.Popen(
            argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True
        )
        os.close(slave)
        self.output = bytearray()

    def text(self) -> str:
        return self.output.decode("utf-8", errors="replace")

    def read_until(self, predicate, timeout: float = 30.0, *, eof: bool = False) -> None:  # type: ignore[no-untyped-def]
        """Read what the app writes until PREDICATE(output text) holds; EOF: until the app
        closed the terminal (it exited)."""
        deadline = time.monotonic() + timeout
        while not predicate(self.text()):
            left = deadline - time.monotonic()
            assert left > 0, f"timed out; the app wrote: {self.text()[-2000:]!r}"
            ready, _, _ = select.select([self.master], [], [], left)
            if not ready:
                continue
            try:
                data = os.read(self.master, 65536)
            except OSError:  # EIO: the app exited and closed the pty
                data = b""
            if not data:
                assert eof or predicate(self.text()), f"the app exited: {self.text()[-2000:]!r}"
                return
            self.output += data

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def close(self) -> int:
        """Wait for the app to exit, reading what it still writes."""
        self.read_until(lambda t: False, timeout=15, eof=True)
        return self.proc.wait(10)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


def test_app_in_a_pty_writes_only_textuals_sequences(tmp_path: Path) -> None:
    state = make_hostile_host(tmp_path)
    app = AppInPty(tmp_path, state)
    try:
        # Drawn: the hostile hypervisor name made visible, and the odd entry's name.
        app.read_until(lambda t: "␛]0;PWNED-TITLE" in t and "odd[b]x[red]" in t)
        app.type(b"/")
        app.read_until(lambda t: "filter by name or state" in t)  # the filter bar is open
        app.type(b"zz[/")
        app.read_until(lambda t: "zz[/" in t and "No VM matches" in t)
        app.type(b"\x11")  # ctrl+q (the filter has the focus: q would be typed)
        app.read_until(lambda t: "\x1b[?1049l" in t)  # left the alternate screen: quitting
        code = app.close()
    finally:
        app.kill()
    assert code == 0
    output = app.output.decode("utf-8")  # strict: nothing undecodable was written either
    assert foreign_sequences(output) == []
