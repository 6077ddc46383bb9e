"""The VT parser: an incremental UTF-8 decoder and ECMA-48 state machine driving a
:class:`~tui.vt.screen.TerminalScreen`, every buffer bounded and every number clamped."""

from __future__ import annotations

import codecs
import contextlib
import re
from functools import lru_cache

from pyte import modes as mo
from pyte.screens import Char

from tui.vt.limits import (
    ALT_SCREEN_MODES,
    MAX_CSI_LEN,
    MAX_OSC_LEN,
    MAX_PARAM,
    MAX_PARAMS,
    MAX_SGR_CACHE,
)
from tui.vt.screen import TerminalScreen

GROUND, ESCAPE, ESC_INTERMEDIATE, CSI, STRING, STRING_ESC = range(6)

_TEXT_RE = re.compile("[^\x00-\x1f\x7f-\x9f]+")
_LINES_RE = re.compile("(?:[^\x00-\x1f\x7f-\x9f]*+\r\n)+")  # plain lines ended by CR LF
_CSI_FAST_RE = re.compile("[0-?]{0,64}[ -/]{0,4}[@-~]")
_CSI_CHUNK_RE = re.compile("[ -?]+")
_ESC_CSI_RE = re.compile("\x1b\\[([0-?]{0,64}[ -/]{0,4}[@-~])")
_OSC_END_RE = re.compile("[\x07\x18\x1a\x1b\x9c]")
_STRING_END_RE = re.compile("[\x18\x1a\x1b\x9c]")  # DCS/SOS/PM/APC: BEL is payload
_PARAM_RE = re.compile(r"[0-9:;]*")


def _clamp(digits: str) -> int:
    # Never int() an unbounded digit string: Python raises past 4300 digits.
    digits = digits.lstrip("0")
    if len(digits) > 5:
        return MAX_PARAM
    return min(int(digits or 0), MAX_PARAM)


@lru_cache(maxsize=512)
def _parse_csi(body: str) -> tuple[str, str, str, str, list[list[int]]] | None:
    """Split a CSI body into (prefix, intermediates, final, params, groups); cached because
    real output repeats a handful of sequences (colours, cursor moves) endlessly."""
    if len(body) > MAX_CSI_LEN:
        return None
    final = body[-1]
    j = len(body) - 1
    while j > 0 and " " <= body[j - 1] <= "/":
        j -= 1
    inter = body[j:-1]
    params = body[:j]
    prefix = ""
    if params[:1] in ("<", "=", ">", "?"):
        prefix, params = params[0], params[1:]
    if not _PARAM_RE.fullmatch(params):
        return None  # malformed (e.g. a private marker in the middle): ignore
    groups = [[_clamp(p) for p in g.split(":")[:8]] for g in params.split(";")[:MAX_PARAMS]]
    return prefix, inter, final, params, groups


class TerminalParser:
    """Incremental UTF-8 decoder + escape-sequence state machine feeding a TerminalScreen.

    State survives between :meth:`feed` calls, so a UTF-8 character or an escape sequence
    split across reads is handled. Strings (OSC/DCS/SOS/PM/APC) are consumed without ever being
    drawn; only OSC 0/1/2 (titles) are interpreted, everything else (OSC 52 clipboard, 8, ...)
    is dropped. No reply is generated except for DA and DSR (queued on the screen).
    """

    def __init__(self, screen: TerminalScreen) -> None:
        self.screen = screen
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._state = GROUND
        self._buf = ""  # CSI body / ESC intermediates
        self._overflow = False
        self._string_is_osc = False
        self._osc = ""
        self._sgr_cache: dict[tuple[Char, str, bool], Char] = {}
        self.keypad_application = False

    def feed(self, data: bytes) -> None:
        self.feed_text(self._decoder.decode(data))

    def reset_state(self) -> None:
        self._state = GROUND
        self._buf = ""
        self._osc = ""

    def feed_text(self, s: str) -> None:
        screen = self.screen
        draw = screen.draw
        draw_lines = screen.draw_lines
        text_match = _TEXT_RE.match
        lines_match = _LINES_RE.match
        csi_match = _ESC_CSI_RE.match
        sgr_cache = self._sgr_cache
        i, n = 0, len(s)
        while i < n:
            state = self._state
            if state == GROUND:
                m = lines_match(s, i)
                if m is not None:
                    i = m.end()
                    draw_lines(m.group())
                    continue
                m = text_match(s, i)
                if m is not None:
                    i = m.end()
                    draw(m.group())
                    continue
                ch = s[i]
                if ch == "\x1b":
                    # Shortcut for the common case, a complete CSI sequence in this chunk.
                    m = csi_match(s, i)
                    if m is not None:
                        i = m.end()
                        body = m.group(1)
                        if body[-1] == "m":
                            # SGR: its only effect is the cursor's attributes, a function of
                            # the current ones, the sequence and DECSCNM. Remember it.
                            cursor = screen.cursor
                            key = (cursor.attrs, body, mo.DECSCNM in screen.mode)
                            attrs = sgr_cache.get(key)
                            if attrs is None:
                                self._dispatch_csi(body)
                                if len(sgr_cache) >= MAX_SGR_CACHE:
                                    sgr_cache.clear()
                                sgr_cache[key] = attrs = screen.cursor.attrs
                            cursor.attrs = attrs
                            continue
                        self._dispatch_csi(body)
                        continue
                    i += 1
                    self._state = ESCAPE
                    continue
                i += 1
                if ch == "\x9b":
                    self._start_csi()
                elif ch in "\x90\x98\x9d\x9e\x9f":
                    self._start_string(ch == "\x9d")
                else:
                    self._execute(ch)
            elif state == CSI:
                if not self._buf:
                    m = _CSI_FAST_RE.match(s, i)
                    if m is not None:
                        i = m.end()
                        self._state = GROUND
                        self._dispatch_csi(m.group())
                        continue
                m = _CSI_CHUNK_RE.match(s, i)
                if m is not None:
                    chunk = m.group()
                    i = m.end()
                    if len(self._buf) + len(chunk) > MAX_CSI_LEN:
                        self._overflow = True
                    else:
                        self._buf += chunk
                    continue
                ch = s[i]
                i += 1
                if "@" <= ch <= "~":
                    self._state = GROUND
                    if not self._overflow:
                        self._dispatch_csi(self._buf + ch)
                elif ch == "\x1b":
                    self._state = ESCAPE
                elif ch in "\x18\x1a":
                    self._state = GROUND
                elif ch < " ":
                    self._execute(ch)  # C0 controls act inside CSI (VT100 behaviour)
                elif ch != "\x7f":
                    self._state = GROUND  # not part of a CSI: abort the sequence
            elif state == STRING:
                end_re = _OSC_END_RE if self._string_is_osc else _STRING_END_RE
                m = end_re.search(s, i)
                end = m.start() if m is not None else n
                if self._string_is_osc and len(self._osc) < MAX_OSC_LEN:
                    self._osc += s[i : min(end, i + MAX_OSC_LEN - len(self._osc))]
                i = end
                if m is not None:
                    ch = s[end]
                    i = end + 1
                    if ch == "\x1b":
                        self._state = STRING_ESC
                    elif ch in "\x07\x9c":
                        self._finish_string()
                    else:  # CAN/SUB abort the string
                        self._state = GROUND
            elif state == STRING_ESC:
                if s[i] == "\\":
                    i += 1
                    self._finish_string()
                else:
                    self._state = ESCAPE  # ESC not followed by "\": abort, re-read as escape
            elif state == ESCAPE:
                ch = s[i]
                i += 1
                self._escape(ch)
            else:  # ESC_INTERMEDIATE
                ch = s[i]
                i += 1
                if " " <= ch <= "/":
                    if len(self._buf) < 4:
                        self._buf += ch
                elif "0" <= ch <= "~":
                    self._state = GROUND
                    self._dispatch_escape_intermediate(self._buf, ch)
                elif ch == "\x1b":
                    self._state = ESCAPE
                elif ch < " ":
                    if ch in "\x18\x1a":
                        self._state = GROUND
                    else:
                        self._execute(ch)
                else:
                    self._state = GROUND

    # --- helpers ------------------------------------------------------------------------
    def _start_csi(self) -> None:
        self._state = CSI
        self._buf = ""
        self._overflow = False

    def _start_string(self, is_osc: bool) -> None:
        self._state = STRING
        self._string_is_osc = is_osc
        self._osc = ""

    def _finish_string(self) -> None:
        self._state = GROUND
        if not self._string_is_osc:
            return  # DCS / SOS / PM / APC: never interpreted, never shown
        code, _, param = self._osc.partition(";")
        self._osc = ""
        if code in ("0", "1"):
            self.screen.set_icon_name(param)
        if code in ("0", "2"):
            self.screen.set_title(param)
        # Anything else (52 clipboard, 8 hyperlinks, 4/10/11 colour queries...) is dropped.

    def _execute(self, ch: str) -> None:
        screen = self.screen
        if ch == "\r":
            screen.carriage_return()
        elif ch in "\n\x0b\x0c":
            screen.linefeed()
        elif ch == "\x08":
            screen.backspace()
        elif ch == "\t":
            screen.tab()
        elif ch == "\x0e":
            screen.shift_out()
        elif ch == "\x0f":
            screen.shift_in()
        elif ch == "\x84":
            screen.index()
        elif ch == "\x85":
            screen.carriage_return()
            screen.linefeed()
        elif ch == "\x88":
            screen.set_tab_stop()
        elif ch == "\x8d":
            screen.reverse_index()
        # BEL, NUL, ENQ (answerback), other C0/C1: ignored.

    def _escape(self, ch: str) -> None:
        screen = self.screen
        self._state = GROUND
        if ch == "[":
            self._start_csi()
        elif ch == "]":
            self._start_string(True)
        elif ch in "PX^_":
            self._start_string(False)
        elif " " <= ch <= "/":
            self._state = ESC_INTERMEDIATE
            self._buf = ch
        elif ch == "\x1b":
            self._state = ESCAPE
        elif ch in "\x18\x1a":
            pass
        elif ch < " ":
            self._state = ESCAPE
            self._execute(ch)
        elif ch == "c":
            screen.reset()
            self.keypad_application = False
        elif ch == "D":
            screen.index()
        elif ch == "E":
            screen.carriage_return()
            screen.linefeed()
        elif ch == "H":
            screen.set_tab_stop()
        elif ch == "M":
            screen.reverse_index()
        elif ch == "7":
            screen.save_cursor()
        elif ch == "8":
            screen.restore_cursor()
        elif ch == "=":
            self.keypad_application = True
        elif ch == ">":
            self.keypad_application = False
        elif ch == "Z":
            screen.report_device_attributes(0)

    def _dispatch_escape_intermediate(self, inter: str, final: str) -> None:
        if inter in ("(", ")"):
            # Honoured in UTF-8 mode too (pyte ignores it): ncurses draws boxes with ESC ( 0.
            self.screen.define_charset(final, inter)
        elif inter == "#" and final == "8":
            self.screen.alignment_display()
        # ESC % G, ESC SP F, G2/G3 designations...: ignored.

    def _dispatch_csi(self, body: str) -> None:
        parsed = _parse_csi(body)
        if parsed is None:
            return
        # A pyte corner case must not take the console down: drop the sequence.
        with contextlib.suppress(Exception):
            self._csi(*parsed)

    def _csi(
        self, prefix: str, inter: str, final: str, params: str, groups: list[list[int]]
    ) -> None:
        screen = self.screen
        p = [g[0] for g in groups] if params else []
        if inter:
            return  # DECSCUSR, DECSTR, ...: nothing to do for a view-only emulator
        if prefix == "?":
            if final in "hl":
                self._private_modes(p, final == "h")
            return
        if prefix:
            return  # secondary DA, xterm modifyKeys, ...: no replies, no state
        arg = p[0] if p else 0
        limit = max(screen.columns, screen.lines)
        count = min(arg, limit) or 1
        if final == "m":
            screen.sgr_cached(params, groups)
        elif final in "Hf":
            screen.cursor_position(p[0] if p else None, p[1] if len(p) > 1 else None)
        elif final == "A":
            screen.cursor_up(count)
        elif final in "Be":
            screen.cursor_down(count)
        elif final in "Ca":
            screen.cursor_forward(count)
        elif final == "D":
            screen.cursor_back(count)
        elif final == "E":
            screen.cursor_down1(count)
        elif final == "F":
            screen.cursor_up1(count)
        elif final in "G`":
            screen.cursor_to_column(min(arg, screen.columns) or None)
        elif final == "d":
            if screen.margins is not None or mo.DECOM not in screen.mode:
                screen.cursor_to_line(min(arg, screen.lines) or None)
        elif final == "J":
            screen.erase_in_display(arg)
        elif final == "K":
            screen.erase_in_line(arg)
        elif final == "@":
            screen.insert_characters(count)
        elif final == "P":
            screen.delete_characters(count)
        elif final == "X":
            screen.erase_characters(count)
        elif final == "L":
            screen.insert_lines(count)
        elif final == "M":
            screen.delete_lines(count)
        elif final == "S":
            screen.scroll_up(count)
        elif final == "T" and len(p) <= 1:
            screen.scroll_down(count)
        elif final == "I":
            for _ in range(min(count, screen.columns)):
                screen.tab()
        elif final == "b":
            screen.repeat_last(count)
        elif final == "g":
            screen.clear_tab_stop(arg)
        elif final == "r":
            top = p[0] if p else 0
            bottom = p[1] if len(p) > 1 and p[1] else None
            screen.set_margins(top or None, bottom)
        elif final == "h":
            self._ansi_modes(p, True)
        elif final == "l":
            self._ansi_modes(p, False)
        elif final == "c":
            if arg == 0:
                screen.report_device_attributes(0)
        elif final == "n":
            if arg in (5, 6):
                screen.report_device_status(arg)
        elif final == "s" and not params:
            screen.save_cursor()
        elif final == "u" and not params:
            screen.restore_cursor()
        elif final == "t" and p == [18]:
            # xterm's "report the text area size in characters": what a serial guest's
            # resize scripts ask for (besides CSI 6n after CUP 999;999).
            screen.write_process_input(f"\x1b[8;{screen.lines};{screen.columns}t")
        # Other "t" (window ops, incl. title reports), "q", "p", ...: deliberately ignored.

    def _ansi_modes(self, modes: list[int], on: bool) -> None:
        wanted = [m for m in modes if m in (4, 20)]  # IRM, LNM
        if wanted:
            (self.screen.set_mode if on else self.screen.reset_mode)(*wanted)

    def _private_modes(self, modes: list[int], on: bool) -> None:
        screen = self.screen
        for mode in modes:
            if mode in (1, 5, 6, 7, 25, 2004):
                (screen.set_mode if on else screen.reset_mode)(mode, private=True)
            elif mode in ALT_SCREEN_MODES:
                if on:
                    screen.enter_alternate(save_cursor=mode == 1049)
                    if mode == 1049:
                        screen.erase_in_display(2)
                else:
                    screen.exit_alternate()
            elif mode == 1048:
                (screen.save_cursor if on else screen.restore_cursor)()
            # 3 (DECCOLM, would resize to 132 columns), mouse modes, ...: ignored.
