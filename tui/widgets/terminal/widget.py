"""A VT100/xterm terminal widget for a MicroVM's serial console.

The widget knows nothing about sockets: the owner pushes guest output in with
:meth:`TerminalWidget.feed` and receives the admin's keystrokes as
:class:`TerminalWidget.Input` messages.

Security model (the TUI often runs as root over SSH; guests are untrusted):

* guest bytes are interpreted by :mod:`tui.vt` and only ever reach the
  admin's terminal as text of Segments built from the emulated screen, with every control
  character replaced (:func:`~tui.host.text.sanitise`);
* titles are kept (sanitized) but never forwarded; OSC 52, DCS, APC, PM and SOS are dropped;
* every parser buffer and every count is bounded, the scrollback too, so a hostile or
  flooding guest costs bounded memory and cannot stall the UI: :meth:`feed` only updates the
  emulator, a ~30 fps timer repaints the dirty lines.

Threading: every method, :meth:`feed` included, must be called on the app's event-loop
thread. A reader thread must use ``app.call_from_thread(terminal.feed, data)``, which also
gives natural back-pressure; :meth:`feed` raises ``RuntimeError`` if called from another thread
once mounted. Keep chunks moderate (<= 64 KiB) so keys are handled between them.
"""

from __future__ import annotations

import threading
import time

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.app import ComposeResult
from textual.geometry import Region
from textual.message import Message
from textual.reactive import reactive
from textual.strip import Strip
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Input as TextInput

from tui.vt import (
    DEFAULT_SCROLLBACK,
    Runs,
    TerminalEmulator,
    line_cells,
    line_runs,
)
from tui.widgets.terminal.keys import encode_key, normalize_key
from tui.widgets.terminal.render import (
    highlight,
    invert,
    restyle,
    run_cells,
    runs_to_strip,
    safe_text,
)

FPS = 30
FLOOD_REPAINT_INTERVAL = 0.1  # while whole screens scroll by, 10 repaints/s are plenty
WHEEL_LINES = 3
NOTICE_SECONDS = 3.0
SCROLL_KEYS = ("shift+pageup", "shift+pagedown")

Cell = tuple[int, int]  # (absolute line number, column)


class TerminalWidget(Widget, can_focus=True):
    """Emulated serial console: colours, scrollback, search, mouse selection, hint bar.

    Args:
        scrollback: lines of history kept (bounded; 0 disables scrollback).
        detach_key: key that posts :class:`Detach` instead of being sent (Textual key syntax,
            e.g. ``"ctrl+]"``).
        search_key: key that opens the scrollback search box, or None to send it to the guest.
        size_key: key that types ``stty rows R cols C`` (the pane's size) into the guest: a
            serial line cannot tell the guest its window size. None: sent to the guest.
        read_only: start read-only (keys are not sent; detach/scroll/search still work).
        read_only_reason: shown in the hint bar while read-only.
        status: owner status text for the hint bar (e.g. "connected to ...").
    """

    DEFAULT_CSS = """
    TerminalWidget {
        width: 1fr;
        height: 1fr;
        background: $background;
        color: $foreground;
    }
    TerminalWidget > .terminal--hint {
        background: $panel;
        color: $text-muted;
    }
    TerminalWidget > .terminal--hint-key {
        color: $text-accent;
        text-style: bold;
    }
    TerminalWidget > .terminal--hint-status {
        color: $foreground;
    }
    TerminalWidget > .terminal--hint-read-only {
        background: $warning-muted;
        color: $text-warning;
        text-style: bold;
    }
    TerminalWidget > .terminal--hint-scroll {
        color: $text-warning;
    }
    TerminalWidget > .terminal--selection {
        background: $primary;
        color: $text;
    }
    TerminalWidget > .terminal--search-match {
        background: $warning;
        color: $background;
    }
    TerminalWidget > #terminal-search, TerminalWidget > #terminal-search:focus {
        dock: bottom;
        height: 1;
        border: none;
        padding: 0 1;
        background: $panel;
        display: none;
    }
    TerminalWidget > #terminal-search.-open {
        display: block;
    }
    """

    COMPONENT_CLASSES = {
        "terminal--hint",
        "terminal--hint-key",
        "terminal--hint-status",
        "terminal--hint-read-only",
        "terminal--hint-scroll",
        "terminal--selection",
        "terminal--search-match",
    }

    # Textual's own text selection does not know about our grid: we do it ourselves.
    ALLOW_SELECT = False

    class Input(Message):
        """Bytes to send to the guest (a key, a paste, or a reply to a DA/DSR query)."""

        def __init__(self, data: bytes) -> None:
            super().__init__()
            self.data = data
            self.terminal: TerminalWidget | None = None

        @property
        def control(self) -> TerminalWidget | None:
            return self.terminal

    class Detach(Message):
        """The admin pressed the detach key."""

        def __init__(self) -> None:
            super().__init__()
            self.terminal: TerminalWidget | None = None

        @property
        def control(self) -> TerminalWidget | None:
            return self.terminal

    class Resized(Message):
        """The emulated screen changed size (columns x rows, hint bar excluded)."""

        def __init__(self, cols: int, rows: int) -> None:
            super().__init__()
            self.cols = cols
            self.rows = rows
            self.terminal: TerminalWidget | None = None

        @property
        def control(self) -> TerminalWidget | None:
            return self.terminal

    read_only: reactive[bool] = reactive(False)
    read_only_reason: reactive[str] = reactive("")
    status: reactive[str] = reactive("")
    detach_key: reactive[str] = reactive("ctrl+]")

    def __init__(
        self,
        *,
        scrollback: int = DEFAULT_SCROLLBACK,
        detach_key: str = "ctrl+]",
        search_key: str | None = "ctrl+f",
        size_key: str | None = None,
        read_only: bool = False,
        read_only_reason: str = "",
        status: str = "",
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
        disabled: bool = False,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes, disabled=disabled)
        self._emulator = TerminalEmulator(80, 24, scrollback)
        self._search_key = normalize_key(search_key) if search_key else None
        self._search_label = search_key or ""
        self._size_key = normalize_key(size_key) if size_key else None
        self._size_label = size_key or ""
        self._detach_normalized = normalize_key(detach_key)
        self.set_reactive(TerminalWidget.detach_key, detach_key)
        self.set_reactive(TerminalWidget.read_only, read_only)
        self.set_reactive(TerminalWidget.read_only_reason, read_only_reason)
        self.set_reactive(TerminalWidget.status, status)
        # Rendering state: a row's version changes when pyte dirties it; the line cache is
        # keyed by it (plus overlays) so unchanged lines are never rebuilt.
        self._version = 0
        self._row_versions = self._new_versions(self._emulator.screen.lines)
        self._cache: dict[tuple[str, int], tuple[tuple[object, ...], Strip]] = {}
        self._style_generation = 0
        self._base: Style | None = None
        self._width: int | None = None  # set on resize: Widget.size is costly per line
        self._hint: tuple[tuple[object, ...], Strip] | None = None  # (what it shows, strip)
        self._pending_rows: set[int] = set()
        self._pending_full = False
        self._scrolled_since_paint = 0
        self._last_full_paint = 0.0
        self._last_flush = 0.0
        self._last_cursor = (-1, -1, False)
        self._last_total = 0
        self._scroll = 0  # lines scrolled back into history; 0 = live view
        self._anchor: Cell | None = None  # selection start
        self._head: Cell | None = None  # selection end (follows the mouse)
        self._selecting = False
        self._match: tuple[int, int, int] | None = None  # (line, start column, end column)
        self._search_text = ""
        self._notice = ""
        self._notice_timer: Timer | None = None
        self._ui_thread: int | None = None
        self._reported_size: tuple[int, int] | None = None

    # --- public API ---------------------------------------------------------------------
    @property
    def emulator(self) -> TerminalEmulator:
        return self._emulator

    @property
    def columns(self) -> int:
        return self._emulator.screen.columns

    @property
    def rows(self) -> int:
        return self._emulator.screen.lines

    @property
    def guest_title(self) -> str:
        """Title set by the guest (OSC 0/2), sanitized. Never sent to the admin's terminal."""
        return self._emulator.screen.title

    @property
    def scrollback_offset(self) -> int:
        """How many lines the view is scrolled back (0 = live)."""
        return self._scroll

    @property
    def cursor_position(self) -> tuple[int, int]:
        """Guest cursor as (column, row) on the live screen."""
        cursor = self._emulator.screen.cursor
        return min(cursor.x, self.columns - 1), cursor.y

    def feed(self, data: bytes) -> None:
        """Process guest output. UI thread only (use ``app.call_from_thread``)."""
        if self._ui_thread is not None and threading.get_ident() != self._ui_thread:
            raise RuntimeError("TerminalWidget.feed() must run on the UI thread")
        self._emulator.feed(data)
        replies = self._emulator.take_responses()
        if replies and not self.read_only:
            self._send(replies)
        if time.monotonic() - self._last_flush >= 1 / FPS:
            self._flush()  # output after a quiet spell (an echo) is painted now, not next frame

    def scroll_history(self, lines: int) -> None:
        """Scroll back (positive) or forward (negative) through the scrollback."""
        history = len(self._emulator.screen.history)
        scroll = max(0, min(history, self._scroll + lines))
        if scroll != self._scroll:
            self._scroll = scroll
            self.refresh()

    def scroll_to_live(self) -> None:
        """Back to the live screen; drops the search highlight."""
        if self._scroll or self._match:
            self._scroll = 0
            self._match = None
            self.refresh()

    def search(self, text: str) -> bool:
        """Jump to the previous occurrence of ``text`` (case-insensitive) and highlight it.

        Repeated calls with the same text walk further back. Returns False (and keeps the
        current match) when there is no earlier occurrence.
        """
        if not text:
            self._match = None
            self.refresh()
            return False
        screen = self._emulator.screen
        total = screen.history_total
        oldest = total - len(screen.history)
        if self._match is not None and text == self._search_text:
            line, limit = self._match[0], self._match[1]
        else:
            line, limit = total + screen.lines - 1, None
        self._search_text = text
        while line >= oldest:
            span = _find_last(run_cells(self._runs_for(line)), text, limit)
            if span is not None:
                self._match = (line, *span)
                self._reveal(line)
                self.refresh()
                return True
            line -= 1
            limit = None
        return False

    def size_command(self) -> bytes:
        """What the size key types into the guest: its window size, set to the pane's."""
        return f"stty rows {self.rows} cols {self.columns}\r".encode()

    def selected_text(self) -> str:
        """Characters of the selected cells, lines joined with newlines."""
        bounds = self._selection_bounds()
        if bounds is None:
            return ""
        (first, _), (last, _) = bounds
        lines = []
        for line in range(first, last + 1):
            span = self._selection_span(line)
            if span is None:
                continue
            cells = run_cells(self._runs_for(line))
            lines.append("".join(cells[span[0] : span[1]]).rstrip())
        return "\n".join(lines)

    def clear_selection(self) -> None:
        if self._anchor is not None:
            self._anchor = self._head = None
            self.refresh()

    def open_search(self) -> None:
        search = self.query_one("#terminal-search", TextInput)
        search.add_class("-open")
        search.focus()

    def close_search(self) -> None:
        self.query_one("#terminal-search", TextInput).remove_class("-open")
        self.focus()

    # --- Textual plumbing ---------------------------------------------------------------
    def compose(self) -> ComposeResult:
        yield TextInput(
            placeholder="search scrollback · enter: older match · esc: close", id="terminal-search"
        )

    def on_mount(self) -> None:
        self._ui_thread = threading.get_ident()
        self.set_interval(1 / FPS, self._flush)

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._style_generation += 1
        self._cache.clear()
        self._hint = None
        self._base = None

    def _base_style(self) -> Style:
        # Widget.rich_style walks the ancestors on every call: too slow for every line.
        if self._base is None:
            self._base = self.rich_style
        return self._base

    def on_resize(self, event: events.Resize) -> None:
        self._width = self.size.width
        size = self.content_size
        cols, rows = max(1, size.width), max(1, size.height - 1)
        screen = self._emulator.screen
        if (cols, rows) != (screen.columns, screen.lines):
            self._sync()
            self._emulator.resize(cols, rows)
            self._row_versions = self._new_versions(rows)
            self._cache.clear()
            self._scroll = min(self._scroll, len(screen.history))
            self._pending_full = True
            self.refresh()
        if self._reported_size != (cols, rows):
            self._reported_size = (cols, rows)
            self._post(self.Resized(cols, rows))

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    def watch_read_only(self) -> None:
        self.refresh()

    def watch_read_only_reason(self) -> None:
        self.refresh()

    def watch_status(self) -> None:
        self.refresh()

    def watch_detach_key(self, key: str) -> None:
        self._detach_normalized = normalize_key(key)
        self.refresh()

    # --- keys, paste, mouse -------------------------------------------------------------
    async def _on_key(self, event: events.Key) -> None:
        if not self.has_focus:
            # Bubbled up from the search box.
            if event.key == "escape":
                event.stop()
                self.close_search()
            return
        aliases = event.aliases
        if self._detach_normalized in aliases:
            event.stop()
            self._post(self.Detach())
            return
        if self._search_key is not None and self._search_key in aliases:
            event.stop()
            self.open_search()
            return
        if self._size_key is not None and self._size_key in aliases:
            event.stop()
            if self.read_only:
                self._show_notice("read-only: the size is not sent")
            else:
                self.scroll_to_live()
                self._send(self.size_command())
                self._show_notice(f"sent: stty rows {self.rows} cols {self.columns}")
            return
        if event.key in SCROLL_KEYS:
            event.stop()
            page = max(1, self.rows - 1)
            self.scroll_history(page if event.key == "shift+pageup" else -page)
            return
        self.scroll_to_live()
        if self.read_only:
            return  # not ours: let the app's bindings see it
        event.stop()
        event.prevent_default()
        data = encode_key(
            event.key, event.character, application_cursor=self._emulator.application_cursor
        )
        if data:
            self._send(data)

    async def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        if self.read_only or not self.has_focus:
            return
        self.scroll_to_live()
        text = event.text.replace("\r\n", "\r").replace("\n", "\r")
        if self._emulator.bracketed_paste:
            # The paste must not be able to end bracketed-paste mode early.
            text = "\x1b[200~" + text.replace("\x1b[201~", "") + "\x1b[201~"
        if text:
            self._send(text.encode("utf-8", "replace"))

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        event.stop()
        self.scroll_history(WHEEL_LINES)

    def on_mouse_scroll_down(self, event: events.MouseScrollDown) -> None:
        event.stop()
        self.scroll_history(-WHEEL_LINES)

    def on_mouse_down(self, event: events.MouseDown) -> None:
        if event.button != 1:
            return
        event.stop()
        cell = self._cell_at(event)
        if cell is None:
            return
        self._anchor = self._head = cell
        self._selecting = True
        self.capture_mouse()
        self.refresh()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if not self._selecting:
            return
        offset = event.get_content_offset_capture(self)
        if offset.y < 0:
            self.scroll_history(1)
        elif offset.y >= self.rows:
            self.scroll_history(-1)
        cell = self._cell_at(event)
        if cell is not None and cell != self._head:
            self._head = cell
            self.refresh()

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if not self._selecting:
            return
        event.stop()
        self._selecting = False
        self.release_mouse()
        cell = self._cell_at(event)
        if cell is not None:
            self._head = cell
        if self._anchor == self._head:
            self.clear_selection()  # a plain click
            return
        text = self.selected_text()
        if text:
            # OSC 52 to the admin's terminal, written by Textual's driver (base64, trusted).
            self.app.copy_to_clipboard(text)
            self._show_notice(f"copied {len(text)} characters")
        self.refresh()

    def on_input_submitted(self, event: TextInput.Submitted) -> None:
        event.stop()
        if not self.search(event.value):
            self._show_notice(f"not found: {event.value}" if event.value else "")

    def on_input_changed(self, event: TextInput.Changed) -> None:
        event.stop()  # the search box is our business, not the owner's

    def on_descendant_blur(self, event: events.DescendantBlur) -> None:
        # Clicking back into the terminal (or anywhere) closes the search box.
        if event.widget.id == "terminal-search":
            event.widget.remove_class("-open")

    # --- rendering ----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        width = self._width if self._width is not None else self.size.width
        rows = self.rows
        if y == rows:
            shown = (
                width,
                self.read_only,
                self.read_only_reason,
                self.status,
                self._scroll,
                len(self._emulator.screen.history) if self._scroll else 0,
                self._notice,
                self.detach_key,
                self._style_generation,
            )
            if self._hint is None or self._hint[0] != shown:
                self._hint = (shown, self._render_hint(width))
            return self._hint[1]
        if y > rows or width <= 0:
            return Strip.blank(width, self._base_style())
        self._sync()
        screen = self._emulator.screen
        total = screen.history_total
        line = total - self._scroll + y
        # The cache is keyed by content, not by y: a live row's version follows its text when
        # the screen scrolls, so a flood re-renders only the rows that really changed.
        content = ("live", self._row_versions[line - total]) if line >= total else ("history", line)
        cursor = self._cursor_column(line)
        selection = self._selection_span(line)
        match = self._match[1:] if self._match and self._match[0] == line else None
        overlays = (cursor, selection, match, width, self._style_generation)
        cached = self._cache.get(content)
        if cached is not None and cached[0] == overlays:
            return cached[1]
        strip = runs_to_strip(self._runs_for(line), width, self._base_style())
        if match is not None:
            style = self.get_component_rich_style("terminal--search-match", partial=True)
            strip = restyle(strip, *match, highlight(style))
        if selection is not None:
            style = self.get_component_rich_style("terminal--selection", partial=True)
            strip = restyle(strip, *selection, highlight(style))
        if cursor >= 0:
            strip = restyle(strip, cursor, cursor + 1, invert)
        if len(self._cache) > 4 * rows + 64:
            self._cache.clear()  # bounded: lines scrolled away are not coming back
        self._cache[content] = (overlays, strip)
        return strip

    def _render_hint(self, width: int) -> Strip:
        """Status (or read-only reason) on the left, key hints on the right.

        Priority when narrow: the detach hint, then the status, then the other hints.
        """
        base = self.get_component_rich_style("terminal--hint")

        def part(name: str) -> Style:
            return base + self.get_component_rich_style(name, partial=True)

        left: list[Segment] = []
        if self.read_only:
            reason = safe_text(self.read_only_reason)
            text = f" read-only: {reason} " if reason else " read-only "
            left.append(Segment(text, part("terminal--hint-read-only")))
        elif self.status:
            left.append(Segment(f" {safe_text(self.status)}", part("terminal--hint-status")))
        if self._scroll:
            history = len(self._emulator.screen.history)
            scrolled = f" [scrollback -{self._scroll}/{history}]"
            left.append(Segment(scrolled, part("terminal--hint-scroll")))
        if self._notice:
            left.append(Segment(f" {safe_text(self._notice)}", base))
        left_strip = Strip(left)

        key_style = part("terminal--hint-key")
        hints = [(safe_text(self.detach_key, 32), "detach")]
        if self._size_key and not self.read_only:
            hints.append((safe_text(self._size_label, 32), "send size"))
        hints.append(("shift+pgup", "scroll"))
        if self._search_key:
            hints.append((safe_text(self._search_label, 32), "search"))
        right: list[Segment] = []
        for number, (key, label) in enumerate(hints):
            candidate = [
                Segment(" · " if right else " ", base),
                Segment(key, key_style),
                Segment(f" {label}", base),
            ]
            needed = Strip(right + candidate).cell_length + 1
            if number and needed + left_strip.cell_length > width:
                break
            right += candidate
        if right:
            right.append(Segment(" ", base))
        right_strip = Strip(right)

        room = max(0, width - right_strip.cell_length)
        if left_strip.cell_length > room:
            left_strip = left_strip.crop(0, max(0, room - 1))
            left_strip = Strip.join([left_strip, Strip([Segment("…", base)])])
        left_strip = left_strip.adjust_cell_length(room, base)
        return Strip.join([left_strip, right_strip]).adjust_cell_length(width, base)

    # --- internals ----------------------------------------------------------------------
    def _post(self, message: Input | Detach | Resized) -> None:
        message.terminal = self
        self.post_message(message)

    def _send(self, data: bytes) -> None:
        self._post(self.Input(data))

    def _show_notice(self, text: str) -> None:
        self._notice = text
        if self._notice_timer is not None:
            self._notice_timer.stop()
        self._notice_timer = self.set_timer(NOTICE_SECONDS, self._clear_notice)
        self.refresh()

    def _clear_notice(self) -> None:
        self._notice = ""
        self.refresh()

    def _runs_for(self, line: int) -> Runs:
        """Style runs of an absolute line (history or live screen)."""
        screen = self._emulator.screen
        total = screen.history_total
        if line >= total:
            row = screen.buffer.get(line - total)
            return line_runs(line_cells(row, screen.columns), screen.columns) if row else ()
        index = line - (total - len(screen.history))
        if index < 0:
            return ()
        return line_runs(screen.history[index], screen.columns)

    def _sync(self) -> None:
        """Fold pyte's dirty rows into row versions and remember what needs a repaint."""
        screen = self._emulator.screen
        versions = self._row_versions
        if screen.scrolled:
            # Rows moved up: their versions move with them; the new rows are dirty anyway.
            shift = min(screen.scrolled, len(versions))
            screen.scrolled = 0
            del versions[:shift]
            versions.extend(self._new_versions(shift))
            self._scrolled_since_paint += shift
            self._pending_full = True
        if screen.dirty:
            for row in screen.dirty:
                if 0 <= row < len(versions):
                    self._version += 1
                    versions[row] = self._version
            self._pending_rows.update(screen.dirty)
            screen.dirty.clear()
        cursor = screen.cursor
        position = (cursor.x, cursor.y, cursor.hidden)
        if position != self._last_cursor:
            self._pending_rows.update((self._last_cursor[1], cursor.y))
            self._last_cursor = position
        total = screen.history_total
        if total != self._last_total:
            grew = total - self._last_total
            self._last_total = total
            if self._scroll:
                # Keep the scrolled-back view on the same text while output continues.
                self._scroll = min(self._scroll + grew, len(screen.history))
                self._pending_full = True
        if self._scroll > len(screen.history):
            self._scroll = len(screen.history)  # the guest cleared the scrollback (CSI 3 J)
            self._pending_full = True

    def _new_versions(self, count: int) -> list[int]:
        """Fresh, unique row versions (two rows never share one: it keys the line cache)."""
        first = self._version + 1
        self._version += count
        return list(range(first, first + count))

    def _flush(self) -> None:
        """Timer (~30 fps), or a feed after a quiet frame: repaint only the rows that changed."""
        self._last_flush = time.monotonic()
        self._sync()
        if self._pending_full:
            now = time.monotonic()
            if (
                self._scrolled_since_paint >= self.rows
                and now - self._last_full_paint < FLOOD_REPAINT_INTERVAL
            ):
                return  # a flood: every line on screen is new each frame, paint less often
            self._scrolled_since_paint = 0
            self._last_full_paint = now
            self._pending_full = False
            self._pending_rows.clear()
            self.refresh()
            return
        if not self._pending_rows:
            return
        width = self.size.width
        rows = self.rows
        ys = sorted(r + self._scroll for r in self._pending_rows if 0 <= r + self._scroll < rows)
        self._pending_rows.clear()
        if len(ys) > rows // 2:
            self.refresh()
            return
        regions: list[Region] = []
        start = previous = None
        for y in ys:
            if start is None or previous is None:
                start = previous = y
            elif y == previous + 1:
                previous = y
            else:
                regions.append(Region(0, start, width, previous - start + 1))
                start = previous = y
        if start is not None and previous is not None:
            regions.append(Region(0, start, width, previous - start + 1))
        if regions:
            self.refresh(*regions)

    def _cursor_column(self, line: int) -> int:
        screen = self._emulator.screen
        if not self.has_focus or screen.cursor.hidden:
            return -1
        if line != screen.history_total + screen.cursor.y:
            return -1
        return min(screen.cursor.x, screen.columns - 1)

    def _reveal(self, line: int) -> None:
        """Scroll so that an absolute line is on screen (centred if it was not)."""
        screen = self._emulator.screen
        total = screen.history_total
        top = total - self._scroll
        if top <= line < top + self.rows:
            return
        self._scroll = max(0, min(len(screen.history), total + self.rows // 2 - line))

    def _cell_at(self, event: events.MouseEvent) -> Cell | None:
        offset = event.get_content_offset_capture(self)
        if self.rows <= 0:
            return None
        x = max(0, min(self.columns - 1, offset.x))
        y = max(0, min(self.rows - 1, offset.y))
        return self._emulator.screen.history_total - self._scroll + y, x

    def _selection_bounds(self) -> tuple[Cell, Cell] | None:
        if self._anchor is None or self._head is None or self._anchor == self._head:
            return None
        return min(self._anchor, self._head), max(self._anchor, self._head)

    def _selection_span(self, line: int) -> tuple[int, int] | None:
        bounds = self._selection_bounds()
        if bounds is None:
            return None
        (first, start), (last, end) = bounds
        if not first <= line <= last:
            return None
        return (start if line == first else 0, end + 1 if line == last else self.columns)


def _find_last(cells: list[str], text: str, limit: int | None) -> tuple[int, int] | None:
    """Columns [start, end) of the last match of ``text`` starting before column ``limit``."""
    haystack = "".join(cells)
    if not haystack:
        return None
    column_of: list[int] = []  # haystack index -> column (a wide char's stub has no index)
    first_index: list[int] = []  # column -> first haystack index at or after it
    for column, cell in enumerate(cells):
        first_index.append(len(column_of))
        column_of.extend([column] * len(cell))
    folded, needle = haystack.lower(), text.lower()
    if len(folded) != len(haystack) or len(needle) != len(text):
        folded, needle = haystack, text  # case folding changed lengths: match exactly
    end = len(folded)
    if limit is not None and limit < len(first_index):
        end = first_index[limit] - 1 + len(needle)  # the match must start before the limit
    index = folded.rfind(needle, 0, end)
    if index < 0:
        return None
    start_column = column_of[index]
    end_column = column_of[index + len(needle) - 1] + 1
    while end_column < len(cells) and cells[end_column] == "":
        end_column += 1  # include the stub of a wide character
    return start_column, end_column
