"""The screen model: a ``pyte.Screen`` with bounded scrollback, an alternate screen, a hardened
SGR and a fast path for floods of plain lines (see the package's docstring)."""

from __future__ import annotations

import unicodedata
from collections import deque
from itertools import repeat
from typing import Any

import pyte
from pyte import charsets as cs
from pyte import modes as mo
from pyte.screens import Char, Cursor, Margins, Savepoint, StaticDefaultDict

from tui.host.text import sanitise
from tui.vt.cells import BLANK, REVERSE_BLANK, Cells, line_cells, wcwidth
from tui.vt.limits import (
    DEFAULT_SCROLLBACK,
    MAX_CELL_LEN,
    MAX_CHAR_CACHES,
    MAX_RESPONSES,
    MAX_SGR_CACHE,
    MAX_TITLE_LEN,
)
from tui.vt.rows import Rows
from tui.vt.sgr import sgr_changes


class _CharTable(dict[str, Char]):
    """Interned Chars for one attribute set: drawing ASCII becomes a C-level dict lookup."""

    __slots__ = ("attrs",)

    def __init__(self, attrs: Char) -> None:
        super().__init__()
        self.attrs = attrs

    def __missing__(self, key: str) -> Char:
        char = self.attrs._replace(data=key)
        if len(self) < 512:
            self[key] = char
        return char


class TerminalScreen(pyte.Screen):
    """A pyte screen with bounded scrollback, an alternate screen and a fast ASCII draw.

    Colours in ``Char.fg``/``Char.bg`` are ``"default"``, a palette index ``"0"``..``"255"`` or
    a ``"rrggbb"`` hex string (see :meth:`sgr`).
    """

    def __init__(self, columns: int, lines: int, scrollback: int = DEFAULT_SCROLLBACK) -> None:
        self.history: deque[Cells] = deque(maxlen=max(0, scrollback))
        self.history_total = 0  # lines ever pushed: absolute line numbers survive eviction
        self.scrolled = 0  # whole-screen scrolls since the renderer last looked (see index)
        self.responses: list[str] = []
        self.last_char = " "
        self._char_tables: dict[Char, _CharTable] = {}
        self._last_attrs: Char | None = None
        self._sgr_cache: dict[tuple[Char, str, bool], Char] = {}
        self._last_table = _CharTable(Char(" "))
        self._main_buffer: dict[int, Any] | None = None  # saved while the alt screen is up
        self._alt_cursor: Savepoint | None = None
        super().__init__(max(1, columns), max(1, lines))
        self.buffer: Rows = Rows(self._new_line)  # type: ignore[assignment]

    def _new_line(self) -> StaticDefaultDict[int, Char]:
        return StaticDefaultDict(self.default_char)

    @property
    def default_char(self) -> Char:
        # pyte builds a new Char on every call; Chars are immutable, so share two.
        return REVERSE_BLANK if mo.DECSCNM in self.mode else BLANK

    # --- state --------------------------------------------------------------------------
    @property
    def alternate(self) -> bool:
        return self._main_buffer is not None

    def reset(self) -> None:
        self._main_buffer = None
        self._alt_cursor = None
        super().reset()
        self.savepoints = []

    def set_title(self, param: str) -> None:
        self.title = sanitise(param, MAX_TITLE_LEN)

    def set_icon_name(self, param: str) -> None:
        self.icon_name = sanitise(param, MAX_TITLE_LEN)

    def write_process_input(self, data: str) -> None:
        if len(self.responses) < MAX_RESPONSES:
            self.responses.append(data)

    def report_device_status(self, mode: int) -> None:
        if mode != 6:
            super().report_device_status(mode)
            return
        # The cursor position (CPR), which resize tools read after CUP 999;999. pyte's own
        # fails under origin mode without a scrolling region (CSI r resets the region, not
        # DECOM), so the guest would wait for an answer that never comes; and it reports
        # one column too far while a wrap is pending at the right edge.
        y = self.cursor.y + 1
        if mo.DECOM in self.mode and self.margins is not None:
            y -= self.margins.top
        x = min(self.cursor.x, self.columns - 1) + 1
        self.write_process_input(f"\x1b[{y};{x}R")

    def save_cursor(self) -> None:
        # xterm has one save slot; pyte's unbounded stack would let ESC 7 floods eat memory
        # (and copy.copy is slow).
        self.savepoints = [self._savepoint()]

    def _savepoint(self) -> Savepoint:
        cursor = Cursor(self.cursor.x, self.cursor.y, self.cursor.attrs)
        cursor.hidden = self.cursor.hidden
        return Savepoint(
            cursor,
            self.g0_charset,
            self.g1_charset,
            self.charset,
            mo.DECOM in self.mode,
            mo.DECAWM in self.mode,
        )

    def restore_cursor(self) -> None:
        if not self.savepoints:
            super().restore_cursor()  # home, origin mode off
            return
        saved = self.savepoints[-1]  # kept: DECRC may be repeated
        self.g0_charset, self.g1_charset = saved.g0_charset, saved.g1_charset
        self.charset = saved.charset
        if saved.origin:
            self.set_mode(mo.DECOM)
        if saved.wrap:
            self.set_mode(mo.DECAWM)
        cursor = Cursor(saved.cursor.x, saved.cursor.y, saved.cursor.attrs)
        cursor.hidden = saved.cursor.hidden
        self.cursor = cursor  # a copy: moving it must not move the save slot
        self.ensure_hbounds()
        self.ensure_vbounds(use_margins=True)

    # --- scrolling and scrollback -------------------------------------------------------
    def index(self) -> None:
        cursor = self.cursor
        margins = self.margins
        bottom = self.lines - 1 if margins is None else margins.bottom
        if cursor.y != bottom:
            if margins is None:
                cursor.y += 1  # cursor_down(), without its Margins tuple
            else:
                self.cursor_down()
            return
        top = 0 if margins is None else margins.top
        if top == 0 and bottom == self.lines - 1:
            # Whole screen scrolls: O(1), the rows are re-keyed, not copied. Rows keep their
            # content, just one row up: count it instead of dirtying every row, so a renderer
            # can reuse what it drew. Dirty rows move up with their content until the whole
            # screen has scrolled since the renderer last looked (then every row is new
            # anyway, and tracking them would cost a set per line feed).
            buffer = self.buffer
            line = buffer.scroll()
            if len(buffer) > bottom + 1:
                buffer.prune(bottom + 1)  # O(1) check; never true unless a bug left a row
            if self._main_buffer is None:
                if self.history.maxlen:
                    self.history.append(line_cells(line, self.columns))
                self.history_total += 1
            scrolled = self.scrolled
            self.scrolled = scrolled + 1
            if scrolled < bottom:
                dirty = self.dirty
                if dirty:
                    self.dirty = dirty = {y - 1 for y in dirty if y > 0}
                dirty.add(bottom)
            return
        if top == 0 and self._main_buffer is None:
            if self.history.maxlen:
                self.history.append(line_cells(self.buffer.get(0), self.columns))
            self.history_total += 1
        self.dirty.update(range(top, bottom + 1))
        buffer = self.buffer
        rows = list(map(buffer.pop, range(top + 1, bottom + 1), repeat(None)))
        buffer.pop(top, None)
        buffer.update({y: row for y, row in zip(range(top, bottom), rows, strict=True) if row})

    def scroll_up(self, count: int) -> None:
        """SU: scroll the region up without moving the cursor."""
        saved = (self.cursor.x, self.cursor.y)
        _top, bottom = self.margins or Margins(0, self.lines - 1)
        for _ in range(min(count or 1, self.lines)):
            self.cursor.y = bottom
            self.index()
        self.cursor.x, self.cursor.y = saved

    def scroll_down(self, count: int) -> None:
        """SD: scroll the region down without moving the cursor."""
        saved = (self.cursor.x, self.cursor.y)
        top, _bottom = self.margins or Margins(0, self.lines - 1)
        for _ in range(min(count or 1, self.lines)):
            self.cursor.y = top
            self.reverse_index()
        self.cursor.x, self.cursor.y = saved

    def clear_history(self) -> None:
        self.history.clear()

    def erase_in_display(self, how: int = 0, *args: Any, **kwargs: Any) -> None:
        if how == 3:
            self.clear_history()  # xterm's "clear scrollback" (used by `clear`)
        if how in (0, 1, 2, 3):
            super().erase_in_display(how)

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        if how in (0, 1, 2):
            super().erase_in_line(how)

    def resize(self, lines: int | None = None, columns: int | None = None) -> None:
        """Resize keeping the cursor's line on screen (lines above it go to scrollback)."""
        lines = max(1, lines or self.lines)
        columns = max(1, columns or self.columns)
        if lines == self.lines and columns == self.columns:
            return
        if lines < self.lines:
            shift = max(0, self.cursor.y - (lines - 1))
            if shift:
                saved_margins, self.margins = self.margins, None
                saved = (self.cursor.x, self.cursor.y)
                for _ in range(shift):
                    self.cursor.y = self.lines - 1
                    self.index()
                self.cursor.x, self.cursor.y = saved[0], saved[1] - shift
                self.margins = saved_margins
            self.buffer.prune(lines)
        if columns < self.columns:
            for line in self.buffer.values():
                for x in [x for x in line if x >= columns]:
                    del line[x]
        self.tabstops = {t for t in self.tabstops if t < columns}
        if columns > self.columns:
            self.tabstops.update(range((self.columns + 7) // 8 * 8, columns, 8))
        self.lines, self.columns = lines, columns
        self.margins = None
        self.cursor.x = min(self.cursor.x, columns - 1)
        self.cursor.y = min(self.cursor.y, lines - 1)
        self.dirty.update(range(lines))

    # --- alternate screen ---------------------------------------------------------------
    def enter_alternate(self, save_cursor: bool) -> None:
        if self._main_buffer is not None:
            return
        if save_cursor:
            self._alt_cursor = self._savepoint()
        self._main_buffer = dict(self.buffer.items())
        self.buffer.clear()
        self.dirty.update(range(self.lines))

    def exit_alternate(self) -> None:
        if self._main_buffer is None:
            return
        self.buffer.clear()
        self.buffer.update({y: line for y, line in self._main_buffer.items() if y < self.lines})
        self._main_buffer = None
        if self._alt_cursor is not None:
            saved = self._alt_cursor
            self._alt_cursor = None
            self.cursor = saved.cursor
            self.g0_charset, self.g1_charset, self.charset = (
                saved.g0_charset,
                saved.g1_charset,
                saved.charset,
            )
            self.ensure_hbounds()
            self.ensure_vbounds()
        self.dirty.update(range(self.lines))

    # --- drawing ------------------------------------------------------------------------
    def _table(self, attrs: Char) -> _CharTable:
        if attrs is self._last_attrs:
            return self._last_table
        table = self._char_tables.get(attrs)
        if table is None:
            if len(self._char_tables) >= MAX_CHAR_CACHES:
                # Bounded: truecolour output creates many attribute sets. Evict the oldest.
                del self._char_tables[next(iter(self._char_tables))]
            table = self._char_tables[attrs] = _CharTable(attrs)
        self._last_attrs, self._last_table = attrs, table
        return table

    def draw(self, data: str) -> None:
        """Draw printable text (the parser never passes control characters here)."""
        if not data:
            return
        data = data.translate(self.g1_charset if self.charset else self.g0_charset)
        if data.isascii() and mo.IRM not in self.mode:
            self._draw_ascii(data)
        else:
            self._draw_unicode(data)
        self.last_char = data[-1]

    def draw_lines(self, block: str) -> None:
        """Draw lines of printable text, each ended by CR LF: the same as ``draw(line)``,
        ``carriage_return()``, ``linefeed()`` for each line, but the lines that scroll in at
        the bottom of the screen are laid out together (:meth:`_scroll_in`), so a flood of
        short lines costs little more per line than a list append."""
        texts = block.split("\r\n")
        texts.pop()  # the block ends with CR LF
        cursor = self.cursor
        margins = self.margins
        lines = self.lines
        bottom = lines - 1
        bulk = (
            (margins is None or margins == (0, bottom))
            and (self.g1_charset if self.charset else self.g0_charset) is cs.LAT1_MAP
            and mo.DECAWM in self.mode
            and mo.IRM not in self.mode
            and mo.DECSCNM not in self.mode
            and block.isascii()
        )
        rows = self.buffer
        for i, text in enumerate(texts):
            # An empty row that exists keeps its own blank (see DECSCNM): draw into it as usual.
            if bulk and cursor.x == 0 and cursor.y == bottom and rows.get(bottom) is None:
                self._scroll_in(texts[i:] if i else texts)
                return
            if text:
                self.draw(text)
            cursor.x = 0
            self.linefeed()

    def _scroll_in(self, texts: list[str]) -> None:
        """Lines of printable ASCII, each followed by CR LF, drawn from the start of a bottom
        row that does not exist yet, in a whole-screen scrolling region (see :meth:`draw_lines`).

        Equivalent to drawing and indexing line by line: with ``S`` the screen's rows but the
        bottom one, then the new rows (long lines wrapped), then an empty row, the screen ends
        up with the last ``lines`` rows of ``S`` and the scrollback with the others. Rows keep
        their keys in :class:`Rows`; only the base moves.
        """
        columns = self.columns
        lines = self.lines
        if max(map(len, texts)) <= columns:
            new = texts
        else:
            new = []
            for text in texts:
                if len(text) <= columns:
                    new.append(text)
                else:
                    new.extend([text[j : j + columns] for j in range(0, len(text), columns)])
        count = len(new)
        get = self._table(self.cursor.attrs).__getitem__
        rows = self.buffer
        store = rows.lines
        base = rows.base
        old_count = min(count, lines - 1)  # rows now on screen that scroll off it
        old = [store.pop(key, None) for key in range(base, base + old_count)]
        if count >= lines:
            store.pop(base + lines - 1, None)  # the empty bottom row scrolls off too
        if self._main_buffer is None:
            maxlen = self.history.maxlen
            if maxlen:
                skip = max(0, count - maxlen)  # pushed, then evicted at once: never built
                pushed = [line_cells(line, columns) for line in old[skip:]]
                pushed.extend(
                    tuple(map(get, text))
                    for text in new[max(0, skip - old_count) : count - old_count]
                )
                self.history.extend(pushed)
            self.history_total += count
        key = base + lines - 1
        for index in range(max(0, count - lines + 1), count):
            text = new[index]
            if text:
                line = StaticDefaultDict(BLANK)
                line.update(enumerate(map(get, text)))
                store[key + index] = line
        rows.base = base + count
        if len(store) > lines:
            rows.prune(lines)  # see index
        scrolled = self.scrolled
        self.scrolled = scrolled + count
        if scrolled + count < lines:  # else every row is new to the renderer (see index)
            dirty = {y - count for y in self.dirty if y >= count}
            dirty.update(range(lines - 1 - count, lines))
            self.dirty = dirty
        for text in reversed(new):
            if text:
                self.last_char = text[-1]
                break

    def _draw_ascii(self, data: str) -> None:
        cursor = self.cursor
        columns = self.columns
        table = self._table(cursor.attrs)
        x, n = cursor.x, len(data)
        if x + n <= columns:
            # Fits on the current line: the common case, one C-level dict update.
            rows = self.buffer
            rows.lines[cursor.y + rows.base].update(enumerate(map(table.__getitem__, data), x))
            cursor.x = x + n
            self.dirty.add(cursor.y)
            return
        autowrap = mo.DECAWM in self.mode
        i, n = 0, len(data)
        while i < n:
            if cursor.x >= columns:
                if not autowrap:
                    # Without autowrap the last column is overwritten: the last character wins.
                    self.buffer[cursor.y][columns - 1] = table[data[-1]]
                    cursor.x = columns
                    break
                self.dirty.add(cursor.y)
                self.carriage_return()
                self.linefeed()
            x = cursor.x
            take = min(columns - x, n - i)
            self.buffer[cursor.y].update(
                zip(range(x, x + take), map(table.__getitem__, data[i : i + take]), strict=True)
            )
            cursor.x = x + take
            i += take
        self.dirty.add(cursor.y)

    def _draw_unicode(self, data: str) -> None:
        cursor = self.cursor
        table = self._table(cursor.attrs)
        for char in data:
            width = wcwidth(char)
            if width < 0:
                char, width = "?", 1
            columns = self.columns
            if width == 0:
                self._combine(char)
                continue
            if cursor.x >= columns or (width == 2 and cursor.x == columns - 1):
                if mo.DECAWM in self.mode:
                    if cursor.x == columns - 1:  # a wide char that does not fit: wrap early
                        self.buffer[cursor.y][cursor.x] = table[" "]
                    self.dirty.add(cursor.y)
                    self.carriage_return()
                    self.linefeed()
                else:
                    cursor.x = max(0, columns - width)
            if mo.IRM in self.mode:
                self.insert_characters(width)
            line = self.buffer[cursor.y]
            line[cursor.x] = table[char]
            if width == 2 and cursor.x + 1 < columns:
                line[cursor.x + 1] = table[""]
            cursor.x = min(cursor.x + width, columns)
            self.dirty.add(cursor.y)

    def _combine(self, char: str) -> None:
        """Attach a zero-width character to the previous cell (pyte drops the whole text)."""
        x, y = self.cursor.x - 1, self.cursor.y
        if x < 0:
            if y == 0:
                return
            x, y = self.columns - 1, y - 1
        line = self.buffer[y]
        if line[x].data == "" and x > 0:
            x -= 1  # the stub of a wide character
        last = line[x]
        if len(last.data) >= MAX_CELL_LEN:
            return
        line[x] = last._replace(data=unicodedata.normalize("NFC", last.data + char))
        self.dirty.add(y)

    def repeat_last(self, count: int) -> None:
        """REP: repeat the last graphic character (ncurses uses it with xterm-256color)."""
        self.draw(self.last_char * max(1, min(count, self.columns * self.lines)))

    # --- graphic rendition --------------------------------------------------------------
    def select_graphic_rendition(self, *attrs: int, **kwargs: Any) -> None:
        # pyte calls this itself (DECSCNM); route through the hardened implementation.
        self.sgr([[a] for a in attrs])

    def sgr_cached(self, params: str, groups: list[list[int]]) -> None:
        """SGR through a small cache: output repeats a handful of colour changes endlessly,
        and sharing the resulting Char also keeps the draw path's table lookup hot."""
        key = (self.cursor.attrs, params, mo.DECSCNM in self.mode)
        attrs = self._sgr_cache.get(key)
        if attrs is None:
            self.sgr(groups)
            if len(self._sgr_cache) >= MAX_SGR_CACHE:
                self._sgr_cache.clear()
            self._sgr_cache[key] = self.cursor.attrs
        else:
            self.cursor.attrs = attrs

    def sgr(self, groups: list[list[int]]) -> None:
        """SGR with 16/256/truecolour, both ``38;5;n`` and ``38:2::r:g:b`` spellings."""
        if not groups or groups == [[0]]:
            self.cursor.attrs = self.default_char
            return
        replace = sgr_changes(groups, self.default_char)
        if replace:
            self.cursor.attrs = self.cursor.attrs._replace(**replace)
