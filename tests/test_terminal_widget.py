"""Functional tests of the serial-console TerminalWidget (and its hostile-input hardening)."""

from __future__ import annotations

import os
import random
import sys
import threading
import time

import pytest
from rich.style import Style
from textual import events
from textual.app import App, ComposeResult
from textual.geometry import Region
from textual.pilot import Pilot
from textual.strip import Strip
from textual.widgets import Input as TextInput

from tests.test_text_sanitiser import UNSAFE_RE
from tui.vt import TerminalEmulator, TerminalScreen, line_cells
from tui.vt.limits import MAX_OSC_LEN
from tui.widgets.terminal import TerminalWidget

CONTROL = UNSAFE_RE  # controls, and bidi and other format characters too


class TermApp(App[None]):
    """One terminal; every message it posts is collected."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.kwargs = kwargs
        self.sent: list[bytes] = []
        self.detached = 0
        self.resized: list[tuple[int, int]] = []
        self.copied: list[str] = []

    def compose(self) -> ComposeResult:
        yield TerminalWidget(**self.kwargs)  # type: ignore[arg-type]

    def on_mount(self) -> None:
        self.query_one(TerminalWidget).focus()

    @property
    def term(self) -> TerminalWidget:
        return self.query_one(TerminalWidget)

    def on_terminal_widget_input(self, message: TerminalWidget.Input) -> None:
        self.sent.append(message.data)

    def on_terminal_widget_detach(self, message: TerminalWidget.Detach) -> None:
        self.detached += 1

    def on_terminal_widget_resized(self, message: TerminalWidget.Resized) -> None:
        self.resized.append((message.cols, message.rows))

    def copy_to_clipboard(self, text: str) -> None:
        # The terminal-facing edge (OSC 52 written by the driver): capture instead.
        self.copied.append(text)


def text(term: TerminalWidget, y: int) -> str:
    return term.render_line(y).text.rstrip()


def screen_text(term: TerminalWidget) -> list[str]:
    return [text(term, y) for y in range(term.rows)]


def style_at(strip: Strip, x: int) -> Style:
    """Style of the cell at column x."""
    position = 0
    for segment in strip:
        width = segment.cell_length
        if position <= x < position + width:
            return segment.style or Style.null()
        position += width
    raise IndexError(x)


def assert_clean(term: TerminalWidget) -> None:
    """No control character in any rendered segment: live screen, hint bar, scrollback."""
    lines = [term.render_line(y) for y in range(term.rows + 1)]
    history = len(term.emulator.screen.history)
    if history:
        term.scroll_history(history)
        lines += [term.render_line(y) for y in range(term.rows)]
        term.scroll_to_live()
    for strip in lines:
        for segment in strip:
            assert not CONTROL.search(segment.text), repr(segment.text)


async def start(pilot: Pilot[None]) -> TerminalWidget:
    await pilot.pause()
    return pilot.app.query_one(TerminalWidget)  # type: ignore[no-any-return]


# --- rendering ------------------------------------------------------------------------------


async def test_text_colours_and_attributes() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(
            b"plain \x1b[31mred\x1b[0m \x1b[38;5;208m256\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[0m "
            b"\x1b[48;2;10;20;30mbg\x1b[0m \x1b[1;3;4;9mfancy\x1b[0m \x1b[7mrev\x1b[0m "
            b"\x1b[38:2::4:5:6mcolon\x1b[0m \x1b[94mbright\x1b[0m"
        )
        await pilot.pause()
        strip = term.render_line(0)
        assert strip.text.rstrip() == "plain red 256 rgb bg fancy rev colon bright"
        assert style_at(strip, 6).color.number == 1  # type: ignore[union-attr]
        assert style_at(strip, 10).color.number == 208  # type: ignore[union-attr]
        assert style_at(strip, 14).color.triplet == (1, 2, 3)  # type: ignore[union-attr]
        assert style_at(strip, 18).bgcolor.triplet == (10, 20, 30)  # type: ignore[union-attr]
        fancy = style_at(strip, 21)
        assert fancy.bold and fancy.italic and fancy.underline and fancy.strike
        assert style_at(strip, 27).reverse
        assert style_at(strip, 31).color.triplet == (4, 5, 6)  # type: ignore[union-attr]
        assert style_at(strip, 37).color.number == 12  # type: ignore[union-attr]
        # Default cells get the widget's own colours underneath.
        assert style_at(strip, 0).bgcolor == term.rich_style.bgcolor
        assert strip.cell_length == 80


async def test_cursor_shown_only_with_focus() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"$ ")
        await pilot.pause()
        assert term.cursor_position == (2, 0)
        assert style_at(term.render_line(0), 2).reverse
        assert not style_at(term.render_line(0), 1).reverse
        app.set_focus(None)
        await pilot.pause()
        assert not style_at(term.render_line(0), 2).reverse
        term.focus()
        term.feed(b"\x1b[?25l")  # DECTCEM off: the guest hides its cursor
        await pilot.pause()
        assert not style_at(term.render_line(0), 2).reverse


async def test_dec_line_drawing_and_wide_characters() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"\x1b(0qqq\x1b(B\r\n\x1b(0lqk\x1b(Bx\r\n\xe4\xb8\xad\xe6\x96\x87ab\r\n")
        term.feed(b"\x1b)0\x0eqq\x0fqq")  # G1 = DEC graphics, shift out / shift in
        await pilot.pause()
        assert text(term, 0) == "───"
        assert text(term, 1) == "┌─┐x"
        line = term.render_line(2)
        assert line.text.rstrip() == "中文ab"
        assert line.cell_length == 80
        assert text(term, 3) == "──qq"
        term.feed(b"\r\n\xe4\xb8\xad")
        await pilot.pause()
        assert term.cursor_position == (2, 4)


async def test_utf8_split_across_feeds() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        data = "é中😀ok".encode()
        for byte in data:  # worst case: one byte per read
            term.feed(bytes([byte]))
        await pilot.pause()
        assert text(term, 0) == "é中😀ok"
        # An escape sequence split anywhere works too.
        for chunk in (b"\x1b", b"[3", b"1", b"mred\x1b[", b"0m"):
            term.feed(chunk)
        await pilot.pause()
        strip = term.render_line(0)
        assert strip.text.rstrip() == "é中😀okred"
        assert style_at(strip, 9).color.number == 1  # type: ignore[union-attr]


async def test_alternate_screen_restores_main_screen() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"shell line\r\n$ ")
        term.feed(b"\x1b[?1049h\x1b[Hfull screen app")
        await pilot.pause()
        assert text(term, 0) == "full screen app"
        term.feed(b"\x1b[?1049l")
        await pilot.pause()
        assert screen_text(term)[:2] == ["shell line", "$"]
        assert term.cursor_position == (2, 1)


async def test_cell_containing_controls_is_sanitized() -> None:
    """Defence in depth: even if a control got into pyte's buffer, it is never rendered."""
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"ab")
        screen = term.emulator.screen
        screen.buffer[0][0] = screen.buffer[0][0]._replace(data="\x1b[2J\x9b")
        screen.buffer[0][1] = screen.buffer[0][1]._replace(data="\x07")
        screen.dirty.add(0)
        await pilot.pause()
        line = term.render_line(0)
        assert line.cell_length == 80
        assert not CONTROL.search(line.text)
        assert line.text.startswith("␛")


# --- keys -----------------------------------------------------------------------------------


KEYS = [
    ("enter", b"\r"),
    ("backspace", b"\x7f"),
    ("tab", b"\t"),
    ("escape", b"\x1b"),
    ("up", b"\x1b[A"),
    ("down", b"\x1b[B"),
    ("right", b"\x1b[C"),
    ("left", b"\x1b[D"),
    ("home", b"\x1b[H"),
    ("end", b"\x1b[F"),
    ("pageup", b"\x1b[5~"),
    ("pagedown", b"\x1b[6~"),
    ("insert", b"\x1b[2~"),
    ("delete", b"\x1b[3~"),
    ("f1", b"\x1bOP"),
    ("f4", b"\x1bOS"),
    ("f5", b"\x1b[15~"),
    ("f12", b"\x1b[24~"),
    ("ctrl+a", b"\x01"),
    ("ctrl+c", b"\x03"),
    ("ctrl+d", b"\x04"),
    ("ctrl+z", b"\x1a"),
    ("shift+tab", b"\x1b[Z"),
    ("ctrl+up", b"\x1b[1;5A"),
    ("a", b"a"),
    ("A", b"A"),
    ("space", b" "),
    ("é", "é".encode()),
]


@pytest.mark.parametrize(("key", "expected"), KEYS)
async def test_key_encoding(key: str, expected: bytes) -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        await pilot.press(key)
        await pilot.pause()
        assert app.sent == [expected]


async def test_application_cursor_mode() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"\x1b[?1h")  # DECCKM, as vim/less set it
        await pilot.press("up", "left", "home")
        term.feed(b"\x1b[?1l")
        await pilot.press("up")
        await pilot.pause()
        assert app.sent == [b"\x1bOA", b"\x1bOD", b"\x1bOH", b"\x1b[A"]


async def test_detach_key_posts_detach_and_sends_nothing() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause()
        assert app.detached == 1
        assert app.sent == []
        # Configurable (reactive): the old key now goes to the guest.
        term.detach_key = "ctrl+b"
        await pilot.press("ctrl+b", "ctrl+right_square_bracket")
        await pilot.pause()
        assert app.detached == 2
        assert app.sent == [b"\x1d"]
        assert "ctrl+b" in text(term, term.rows)


async def test_detach_key_from_constructor() -> None:
    app = TermApp(detach_key="ctrl+x")
    async with app.run_test(size=(80, 24)) as pilot:
        await start(pilot)
        await pilot.press("ctrl+x")
        await pilot.pause()
        assert (app.detached, app.sent) == (1, [])


async def test_read_only_sends_nothing_but_detach_scroll_search_work() -> None:
    app = TermApp(read_only=True, read_only_reason="owned by another session")
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"".join(b"line %d\r\n" % i for i in range(60)))
        term.feed(b"\x1b[6n")  # a DSR query gets no reply either
        await pilot.press("a", "enter", "ctrl+c", "up")
        await pilot.pause()
        assert app.sent == []
        hint = text(term, term.rows)
        assert "read-only: owned by another session" in hint
        await pilot.press("shift+pageup")
        assert term.scrollback_offset > 0
        assert term.search("line 3")
        await pilot.press("ctrl+right_square_bracket")
        await pilot.pause()
        assert app.detached == 1
        term.read_only = False
        await pilot.press("a")
        await pilot.pause()
        assert app.sent == [b"a"]
        assert "read-only" not in text(term, term.rows)


async def test_size_key_types_stty_with_the_screen_size_unless_read_only() -> None:
    app = TermApp(size_key="f12")
    async with app.run_test(size=(90, 30)) as pilot:
        term = await start(pilot)
        assert (term.columns, term.rows) == (90, 29)
        assert "f12 send size" in text(term, term.rows)
        await pilot.press("f12")
        await pilot.pause()
        assert app.sent == [b"stty rows 29 cols 90\r"]
        assert "sent: stty rows 29 cols 90" in text(term, term.rows)
        term.read_only = True
        await pilot.pause()
        assert "send size" not in text(term, term.rows)
        await pilot.press("f12")
        await pilot.pause()
        assert app.sent == [b"stty rows 29 cols 90\r"]  # nothing more
        assert "read-only: the size is not sent" in text(term, term.rows)


def test_resize_cursor_report_dance_gets_the_screen_size() -> None:
    """busybox resize (console-tools/resize.c) writes ESC 7, CSI r, CSI 999;999 H, CSI 6n
    and reads CSI rows;cols R; xterm's CSI 18 t asks for the size directly."""
    emulator = TerminalEmulator(100, 37)
    emulator.feed(b"\x1b[5;10r\x1b[?6h")  # margins and origin mode left behind by a program
    emulator.feed(b"\x1b7\x1b[r\x1b[999;999H\x1b[6n")
    assert emulator.take_responses() == b"\x1b[37;100R"
    emulator.feed(b"\x1b8\x1b[18t")
    assert emulator.take_responses() == b"\x1b[8;37;100t"
    emulator.feed(b"\x1b[14t\x1b[19t\x1b[21t")  # other window reports: never answered
    assert emulator.take_responses() == b""
    emulator.feed(b"\x1b[?6l\x1b[H" + b"x" * 100 + b"\x1b[6n")  # a wrap pending at the edge
    assert emulator.take_responses() == b"\x1b[1;100R"


async def test_paste_and_bracketed_paste() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.post_message(events.Paste("echo 1\necho 2"))
        await pilot.pause()
        term.feed(b"\x1b[?2004h")
        term.post_message(events.Paste("x\x1b[201~y"))
        await pilot.pause()
        assert app.sent == [b"echo 1\recho 2", b"\x1b[200~xy\x1b[201~"]


async def test_device_status_reports_go_back_to_the_guest() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"\x1b[5;10H\x1b[6n\x1b[c" + b"\x1b[6n" * 1000)
        await pilot.pause()
        replies = b"".join(app.sent)
        assert replies.startswith(b"\x1b[5;10R\x1b[?6c")
        assert len(replies) < 400  # a flood of queries gets a bounded number of answers


# --- hostile guests -------------------------------------------------------------------------

B64 = b"ZWNobyBwd25lZCA+IC9yb290Ly5zc2gvYXV0aG9yaXplZF9rZXlz"
HOSTILE = {
    "osc52_bel": b"\x1b]52;c;" + B64 + b"\x07",
    "osc52_st": b"\x1b]52;c;" + B64 + b"\x1b\\",
    "osc52_c1": "\x9d52;c;".encode() + B64 + "\x9c".encode(),
    "osc0_title": b"\x1b]0;pwned \x08\x9b title\x07\x1b]1;pwned icon\x1b\\",
    "osc2_title": b"\x1b]2;owned\x1b\\",
    "osc8_link": b"\x1b]8;;http://evil/\x1b\\click\x1b]8;;\x1b\\",
    "dcs_decrqss": b'\x1bP$qm\x1b\\\x1bP$q"p\x1b\\',
    "dcs_c1": "\x90$qm\x9c".encode(),
    "apc_pm_sos": b"\x1b_Gpayload\x1b\\\x1b^privacy\x1b\\\x1bXstring\x1b\\",
    "huge_cup": b"\x1b[99999999;99999999H",
    "huge_ich": b"\x1b[999999999@",
    "huge_many": b"\x1b[" + b";".join([b"99999999"] * 5000) + b"m",
    "long_digits": b"\x1b[" + b"9" * 100_000 + b"L",
    "huge_ops": b"\x1b[99999L\x1b[99999M\x1b[99999P\x1b[99999X\x1b[99999S\x1b[99999T\x1b[99999b",
    "huge_margins": b"\x1b[99999;1r\x1b[0;99999r\x1b[?6h\x1b[99999d",
    "title_report": b"\x1b[21t\x1b[?3h\x1b[5n",
    "c1_raw": bytes(range(0x80, 0xA0)),
    "c1_utf8": "".join(chr(c) for c in range(0x80, 0xA0)).encode(),
    "c0_all": bytes(range(0x00, 0x20)) + b"\x7f",
    "save_cursor_flood": b"\x1b7" * 50_000 + b"\x1b[s" * 50_000,
    "combining_flood": b"e" + "\u0301".encode() * 50_000,
    "bidi": "\u202eevil\u202c \u2066x\u2069".encode(),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
async def test_hostile_stream(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        started = time.monotonic()
        data = HOSTILE[name]
        for offset in range(0, len(data), 4096):
            term.feed(data[offset : offset + 4096])
        await pilot.pause()
        assert time.monotonic() - started < 10
        assert_clean(term)
        rendered = "\n".join(screen_text(term))
        assert B64.decode() not in rendered
        assert "pwned" not in rendered and "payload" not in rendered
        assert app.copied == []  # nothing reaches the admin's clipboard
        assert not any(CONTROL.search(c) for c in term.guest_title)
        assert app.title == "TermApp"
        # Still a working terminal afterwards (CAN aborts whatever was pending).
        term.feed(b"\x18\x1b[0m\x1b[r\x1b[?6l\x1b[2J\x1b[HOK")
        await pilot.pause()
        assert text(term, 0) == "OK"
        await pilot.press("x")
        await pilot.pause()
        assert app.sent[-1:] == [b"x"]


async def test_title_is_kept_sanitized_and_never_forwarded() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"\x1b]0;vm-a\x08\xc2\x9bx\x07")
        await pilot.pause()
        assert term.guest_title == "vm-a␈?x"
        assert app.title == "TermApp" and app.sub_title == ""


async def test_endless_unterminated_osc_is_bounded() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        started = time.monotonic()
        term.feed(b"\x1b]0;")
        chunk = b"A" * 65536
        for _ in range(80):  # 5 MiB, never terminated
            term.feed(chunk)
        assert time.monotonic() - started < 10
        assert len(term.emulator.parser._osc) <= MAX_OSC_LEN
        term.feed(b"\x07after")
        await pilot.pause()
        assert text(term, 0) == "after"
        assert len(term.guest_title) <= 256


async def test_random_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = random.Random(20241122)
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        started = time.monotonic()
        for _ in range(300):
            size = rng.randint(1, 2048)
            # Mostly escape-heavy noise: ESC, '[', ']', digits, ';' and random bytes.
            alphabet = b"\x1b[];0123456789?P\\\x07\x9b\x9d\xc2"
            data = bytes(
                rng.choice(alphabet) if rng.random() < 0.5 else rng.randrange(256)
                for _ in range(size)
            )
            term.feed(data)
        await pilot.pause()
        assert time.monotonic() - started < 30
        assert_clean(term)
        assert app.copied == []
        term.feed(b"\x18\x1bc\x1b[HOK")
        await pilot.pause()
        assert text(term, 0) == "OK"


# --- scrollback, search, selection -----------------------------------------------------------


def numbered(count: int, start: int = 0) -> bytes:
    return b"".join(b"line %03d\r\n" % i for i in range(start, start + count))


async def test_scrollback_with_keys_and_wheel() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(numbered(100))
        await pilot.pause()
        assert term.rows == 23
        assert text(term, 21) == "line 099"
        await pilot.press("shift+pageup")
        assert term.scrollback_offset == 22
        assert text(term, 0) == "line 056"  # 78 lines of history, 22 of them now shown
        assert "scrollback -22/78" in text(term, term.rows)
        await pilot.press("shift+pagedown")
        assert term.scrollback_offset == 0
        term.post_message(events.MouseScrollUp(term, 1, 1, 0, -1, 0, False, False, False))
        await pilot.pause()
        assert term.scrollback_offset == 3
        # New output while scrolled back keeps the view on the same text.
        top = text(term, 0)
        term.feed(numbered(5, start=100))
        await pilot.pause()
        assert text(term, 0) == top
        # Any typed key returns to the live view (and is sent).
        await pilot.press("q")
        await pilot.pause()
        assert term.scrollback_offset == 0
        assert text(term, 21) == "line 104"
        assert app.sent == [b"q"]


async def test_guest_clearing_scrollback_while_scrolled_back() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(numbered(100))
        term.scroll_history(50)
        term.feed(b"\x1b[H\x1b[2J\x1b[3J$ ")  # what `clear` sends
        await pilot.pause()
        assert term.scrollback_offset == 0
        assert text(term, 0) == "$"


async def test_scrollback_is_bounded() -> None:
    app = TermApp(scrollback=50)
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(numbered(1000))
        await pilot.pause()
        assert len(term.emulator.screen.history) == 50
        term.scroll_history(10_000)
        assert term.scrollback_offset == 50
        assert text(term, 0) == "line 928"  # 978 scrolled off, the last 50 kept


async def test_search_jumps_to_previous_match_and_highlights() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(numbered(10))
        term.feed(b"the Needle one\r\n")
        term.feed(numbered(50, start=10))
        term.feed(b"xx needle two\r\n")
        term.feed(numbered(5, start=60))
        await pilot.pause()
        assert term.search("NEEDLE")
        assert term.scrollback_offset == 0  # "two" is on the live screen
        y = next(y for y in range(term.rows) if text(term, y) == "xx needle two")
        match_style = term.get_component_rich_style("terminal--search-match", partial=True)
        strip = term.render_line(y)
        assert style_at(strip, 3).bgcolor == match_style.bgcolor
        assert style_at(strip, 8).bgcolor == match_style.bgcolor
        assert style_at(strip, 9).bgcolor != match_style.bgcolor
        assert term.search("NEEDLE")  # the previous one, in the scrollback
        assert term.scrollback_offset > 0
        y = next(y for y in range(term.rows) if text(term, y) == "the Needle one")
        assert style_at(term.render_line(y), 4).bgcolor == match_style.bgcolor
        assert not term.search("NEEDLE")  # nothing older
        assert not term.search("absent")
        await pilot.press("a")  # typing returns to live and drops the highlight
        assert term.scrollback_offset == 0


async def test_search_box_binding() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"alpha\r\n" + numbered(60) + b"beta\r\n")
        await pilot.press("ctrl+f")
        box = term.query_one("#terminal-search", TextInput)
        assert box.has_focus and box.display
        await pilot.press(*"alpha", "enter")
        await pilot.pause()
        assert term.scrollback_offset > 0
        assert any(text(term, y) == "alpha" for y in range(term.rows))
        await pilot.press("escape")
        await pilot.pause()
        assert term.has_focus and not box.display
        assert app.sent == []  # nothing typed in the box went to the guest


async def test_mouse_selection_copies_cell_text() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed("hello wörld\r\n中文 line two\r\n".encode())
        await pilot.pause()
        await pilot.mouse_down(term, offset=(6, 0))
        await pilot.hover(term, offset=(3, 1))
        await pilot.mouse_up(term, offset=(3, 1))
        await pilot.pause()
        assert app.copied == ["wörld\n中文"]
        selection = term.get_component_rich_style("terminal--selection", partial=True)
        assert style_at(term.render_line(0), 6).bgcolor == selection.bgcolor
        assert style_at(term.render_line(0), 5).bgcolor != selection.bgcolor
        assert "copied" in text(term, term.rows)
        # A plain click clears the selection and copies nothing.
        await pilot.click(term, offset=(1, 1))
        await pilot.pause()
        assert term.selected_text() == ""
        assert len(app.copied) == 1


# --- repaint, resize, threads, memory -------------------------------------------------------


async def test_feed_only_marks_dirty_and_timer_refreshes_dirty_rows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        term.feed(b"first\r\nsecond\r\n")
        await pilot.pause(0.1)
        calls: list[tuple[Region, ...]] = []
        original = term.refresh

        def spy(*regions: Region, **kwargs: object) -> object:
            calls.append(regions)
            return original(*regions, **kwargs)  # type: ignore[arg-type]

        monkeypatch.setattr(term, "refresh", spy)
        cached = term.render_line(0)
        assert term.render_line(0) is cached  # per-line cache
        term.feed(b"\x1b[5;1Hfifth")
        assert calls == []  # feed() never repaints by itself
        term._flush()
        # Row 2 (where the cursor was) and row 4 (text + cursor), not row 3.
        assert calls == [(Region(0, 2, 80, 1), Region(0, 4, 80, 1))]
        assert term.render_line(0) is cached  # untouched line: still cached
        assert text(term, 4) == "fifth"


async def test_resize_resizes_screen_and_posts_resized() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        assert app.resized == [(80, 23)]
        term.feed(numbered(30))
        await pilot.resize_terminal(100, 30)
        await pilot.pause()
        assert (term.columns, term.rows) == (100, 29)
        assert app.resized[-1] == (100, 29)
        await pilot.resize_terminal(40, 10)
        await pilot.pause()
        assert (term.columns, term.rows) == (40, 9)
        # Shrinking keeps the cursor line; what no longer fits went to the scrollback.
        assert text(term, term.cursor_position[1] - 1) == "line 029"
        assert term.render_line(0).cell_length == 40


async def test_feed_from_another_thread_is_refused() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        errors: list[BaseException] = []

        def worker() -> None:
            try:
                term.feed(b"x")
            except RuntimeError as error:
                errors.append(error)
            app.call_from_thread(term.feed, b"via call_from_thread")

        thread = threading.Thread(target=worker)
        thread.start()
        while thread.is_alive():
            await pilot.pause(0.01)
        await pilot.pause()
        assert len(errors) == 1
        assert text(term, 0) == "via call_from_thread"


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_ten_megabyte_flood_uses_bounded_memory() -> None:
    app = TermApp(scrollback=1000)
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        line = b"\x1b[32m[  OK  ]\x1b[0m " + b"x" * 150 + b"\r\n"
        chunk = line * (65536 // len(line))
        for _ in range(16):  # 1 MiB: fill the scrollback and the caches first
            term.feed(chunk)
        await pilot.pause()
        blocks, rss = sys.getallocatedblocks(), rss_bytes()
        fed = 0
        while fed < 10 * 1024 * 1024:
            term.feed(chunk)
            fed += len(chunk)
            if fed % (1024 * 1024) < len(chunk):
                await pilot.pause()  # let the repaint timer run now and then
        await pilot.pause()
        # Steady state: 10 more MiB allocate (almost) nothing that stays.
        assert sys.getallocatedblocks() - blocks < 20_000
        assert rss_bytes() - rss < 32 * 1024 * 1024
        assert len(term.emulator.screen.history) == 1000
        assert_clean(term)


def test_emulator_alone_handles_split_csi_and_clamps() -> None:
    emulator = TerminalEmulator(10, 3, scrollback=5)
    for byte in b"\x1b[2;999Hx\x1b[999;1Hy":
        emulator.feed(bytes([byte]))
    screen = emulator.screen
    assert screen.buffer[1][9].data == "x"
    assert screen.buffer[2][0].data == "y"


# --- scrolling floods: the bulk line layout and the O(1) scroll -----------------------------


def row_texts(emulator: TerminalEmulator) -> list[str]:
    screen = emulator.screen
    return [
        "".join(c.data for c in line_cells(screen.buffer.get(y), screen.columns))
        for y in range(screen.lines)
    ]


def history_texts(emulator: TerminalEmulator) -> list[str]:
    return ["".join(c.data for c in line) for line in emulator.screen.history]


def chunked(data: bytes, how: str) -> list[bytes]:
    if how == "whole":
        return [data]
    if how == "bytes":
        return [data[i : i + 1] for i in range(len(data))]
    if how == "lines":
        return [line + b"\n" for line in data.split(b"\n")[:-1]] + [data.rsplit(b"\n", 1)[1]]
    rng = random.Random(4)
    cuts = sorted(rng.sample(range(1, len(data)), 40))
    return [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]


@pytest.mark.parametrize("how", ["whole", "bytes", "lines", "random"])
@pytest.mark.parametrize("scrollback", [5000, 100])
def test_scroll_of_many_lines_leaves_exact_screen_and_scrollback(how: str, scrollback: int) -> None:
    emulator = TerminalEmulator(80, 24, scrollback=scrollback)
    for chunk in chunked("\r\n".join(map(str, range(1, 1001))).encode(), how):
        emulator.feed(chunk)
    screen = emulator.screen
    assert row_texts(emulator) == [str(n) for n in range(977, 1001)]
    assert (screen.cursor.x, screen.cursor.y) == (4, 23)
    assert screen.history_total == 976
    kept = min(976, scrollback)
    assert history_texts(emulator) == [str(n) for n in range(977 - kept, 977)]
    # And the next line feed scrolls exactly one more line.
    emulator.feed(b"\r\n1001\r\n")
    assert row_texts(emulator) == [str(n) for n in range(979, 1002)] + [""]
    assert history_texts(emulator)[-2:] == ["977", "978"]
    assert screen.history_total == 978


def test_scroll_keeps_wrapped_lines_colours_and_the_alternate_screen() -> None:
    emulator = TerminalEmulator(10, 4, scrollback=50)
    emulator.feed(b"\x1b[31m" + b"".join(b"%02d-abcdefghij\r\n" % n for n in range(6)))
    # 13 characters wrap onto two rows (00-abcdefg / hij): 12 rows and the empty one.
    assert history_texts(emulator) == [
        *(row for n in range(4) for row in (f"{n:02d}-abcdefg", "hij")),
        "04-abcdefg",
    ]
    assert row_texts(emulator) == ["hij", "05-abcdefg", "hij", ""]
    assert {c.fg for line in emulator.screen.history for c in line} == {"1"}
    emulator.feed(b"\x1b[?1049h" + b"x\r\n" * 20)  # the alternate screen never scrolls back
    assert emulator.screen.history_total == 9
    assert row_texts(emulator) == ["x", "x", "x", ""]
    emulator.feed(b"\x1b[?1049l")
    assert row_texts(emulator) == ["hij", "05-abcdefg", "hij", ""]
    emulator.feed(b"\x1b[2;3r\x1b[3;1H" + b"y\r\n" * 5 + b"\x1b[r")  # a scroll region
    assert row_texts(emulator) == ["hij", "y", "", ""]
    assert emulator.screen.history_total == 9


def test_bulk_line_layout_matches_feeding_byte_by_byte(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whole chunks take the bulk path for runs of CR LF lines; single bytes never do."""
    bulk: list[int] = []
    scroll_in = TerminalScreen._scroll_in

    def counted(screen: TerminalScreen, texts: list[str]) -> None:
        bulk.append(len(texts))
        scroll_in(screen, texts)

    monkeypatch.setattr(TerminalScreen, "_scroll_in", counted)
    pieces = [
        *["\r\n"] * 12,
        *["ab", "0123456789", "x" * 23, "wörd", "中", "\t", "\r", "\n", "\x1b[31m", "\x1b[0m"],
        *["\x1b[2J", "\x1b[H", "\x1b[3;2H", "\x1b[2;4r", "\x1b[r", "\x1b[?1049h", "\x1b[?1049l"],
        *["\x1b(0qx\x1b(B", "\x1b[?7l", "\x1b[?7h", "\x1b[4h", "\x1b[4l", "\x1b[?5h", "\x1b[?5l"],
        *["\x1b[3J", "\x1bM", "\x1b[2S", "\x1b[T", "\x1b[L", "\x1b[M", "\x1b[20h", "\x1b[20l"],
        *["\x0e", "\x0f", "\x1b7", "\x1b8", "\x1b[K", "\x1b[2@", "\x1b[3b", "\x1bc"],
    ]
    rng = random.Random(11)
    for _ in range(150):
        size = (rng.randint(1, 12), rng.randint(1, 6), rng.choice([0, 2, 40]))
        data = "".join(rng.choices(pieces, k=rng.randint(1, 200))).encode()
        whole, single = TerminalEmulator(*size), TerminalEmulator(*size)
        whole.feed(data)
        for byte in data:
            single.feed(bytes([byte]))
        assert row_texts(whole) == row_texts(single), data
        assert list(whole.screen.history) == list(single.screen.history), data
        assert [line_cells(whole.screen.buffer.get(y), size[0]) for y in range(size[1])] == [
            line_cells(single.screen.buffer.get(y), size[0]) for y in range(size[1])
        ], data
        assert whole.screen.history_total == single.screen.history_total
        assert (whole.screen.cursor.x, whole.screen.cursor.y) == (
            single.screen.cursor.x,
            single.screen.cursor.y,
        )
        assert whole.screen.last_char == single.screen.last_char
    assert len(bulk) > 100  # the comparison did exercise the bulk path


def test_rows_not_marked_dirty_keep_their_content_across_scrolls() -> None:
    """What the widget relies on: rows shift by ``scrolled``; a row neither new nor dirty
    shows what it showed before."""
    emulator = TerminalEmulator(12, 6, scrollback=10)
    screen = emulator.screen
    rng = random.Random(5)
    pieces = ["line\r\n", "\r\n", "word ", "x" * 20, "\x1b[H", "\x1b[4;1H", "\x1b[K", "\x1bM"]
    shown = row_texts(emulator)
    screen.dirty.clear()
    screen.scrolled = 0
    for _ in range(300):
        emulator.feed("".join(rng.choices(pieces, k=rng.randint(1, 30))).encode())
        shift = min(screen.scrolled, screen.lines)
        carried = shown[shift:] + [None] * shift
        now = row_texts(emulator)
        for y, before in enumerate(carried):
            if before is not None and y not in screen.dirty:
                assert now[y] == before
        shown = now
        screen.dirty.clear()
        screen.scrolled = 0


async def test_widget_after_a_flood_of_short_lines() -> None:
    app = TermApp()
    async with app.run_test(size=(80, 24)) as pilot:
        term = await start(pilot)
        data = "".join(f"{n}\r\n" for n in range(1, 20001)).encode()
        for offset in range(0, len(data), 16384):
            term.feed(data[offset : offset + 16384])
        await pilot.pause(0.2)
        assert screen_text(term) == [str(n) for n in range(19979, 20001)] + [""]
        assert term.cursor_position == (0, 22)
        term.scroll_history(10_000)
        assert term.scrollback_offset == 5000
        assert screen_text(term) == [str(n) for n in range(14979, 15002)]
        term.scroll_to_live()
        assert term.search("15000")
        assert "15000" in screen_text(term)  # the match was scrolled into view
