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
from collections.abc import Callable
from typing import ClassVar

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
    TerminalEmulator,
)
from tui.widgets.terminal import styles
from tui.widgets.terminal.hint import HintState, render_hint
from tui.widgets.terminal.keys import encode_key, normalize_key
from tui.widgets.terminal.mouse import TerminalMouse
from tui.widgets.terminal.render import highlight, invert, restyle, runs_to_strip
from tui.widgets.terminal.repaint import RepaintTracker
from tui.widgets.terminal.search import ScrollbackSearch
from tui.widgets.terminal.selection import Selection
from tui.widgets.terminal.viewport import Viewport

FPS = 30
NOTICE_SECONDS = 3.0
SCROLL_KEYS = ("shift+pageup", "shift+pagedown")


class TerminalWidget(TerminalMouse, Widget, can_focus=True):
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

    DEFAULT_CSS = styles.DEFAULT_CSS
    COMPONENT_CLASSES: ClassVar[set[str]] = styles.COMPONENT_CLASSES

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
        # Rendering state: a row's version changes when the emulator dirties it; the line
        # cache is keyed by it (plus overlays) so unchanged lines are never rebuilt.
        self._repaint = RepaintTracker(self._emulator.screen.lines)
        self._cache: dict[tuple[str, int], tuple[tuple[object, ...], Strip]] = {}
        self._style_generation = 0
        self._base: Style | None = None
        self._width: int | None = None  # set on resize: Widget.size is costly per line
        self._hint: tuple[HintState, Strip] | None = None
        self._last_flush = 0.0
        self._view = Viewport(self._emulator)
        self._selection = Selection()
        self._search = ScrollbackSearch()
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
        return self._view.scroll

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
        if self._view.scroll_by(lines):
            self.refresh()

    def scroll_to_live(self) -> None:
        """Back to the live screen; drops the search highlight."""
        if self._view.scroll or self._search.match:
            self._view.scroll = 0
            self._search.match = None
            self.refresh()

    def search(self, text: str) -> bool:
        """Jump to the previous occurrence of ``text`` (case-insensitive) and highlight it.

        Repeated calls with the same text walk further back. Returns False (and keeps the
        current match) when there is no earlier occurrence.
        """
        if not text:
            self._search.match = None
            self.refresh()
            return False
        if not self._search.step(text, self._view):
            return False
        self.refresh()
        return True

    def size_command(self) -> bytes:
        """What the size key types into the guest: its window size, set to the pane's."""
        return f"stty rows {self.rows} cols {self.columns}\r".encode()

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
            self._repaint.resized(rows)
            self._cache.clear()
            self._view.clamp()
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

    # --- keys, paste, search box --------------------------------------------------------
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
            shown = self._hint_state(width)
            if self._hint is None or self._hint[0] != shown:
                self._hint = (shown, render_hint(shown, *self._hint_styles()))
            return self._hint[1]
        if y > rows or width <= 0:
            return Strip.blank(width, self._base_style())
        self._sync()
        screen = self._emulator.screen
        total = screen.history_total
        line = self._view.top + y
        # The cache is keyed by content, not by y: a live row's version follows its text when
        # the screen scrolls, so a flood re-renders only the rows that really changed.
        versions = self._repaint.versions
        content = ("live", versions[line - total]) if line >= total else ("history", line)
        cursor = self._view.cursor_column(line) if self.has_focus else -1
        selection = self._selection.span(line, self.columns)
        match = self._search.span(line)
        overlays = (cursor, selection, match, width, self._style_generation)
        cached = self._cache.get(content)
        if cached is not None and cached[0] == overlays:
            return cached[1]
        strip = runs_to_strip(self._view.runs_for(line), width, self._base_style())
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

    def _hint_state(self, width: int) -> HintState:
        return HintState(
            width=width,
            read_only=self.read_only,
            read_only_reason=self.read_only_reason,
            status=self.status,
            scroll=self._view.scroll,
            history=self._view.history if self._view.scroll else 0,
            notice=self._notice,
            detach_key=self.detach_key,
            size_key=self._size_label if self._size_key else None,
            search_key=self._search_label if self._search_key else None,
            style_generation=self._style_generation,
        )

    def _hint_styles(self) -> tuple[Style, Callable[[str], Style]]:
        base = self.get_component_rich_style("terminal--hint")

        def part(name: str) -> Style:
            return base + self.get_component_rich_style(name, partial=True)

        return base, part

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

    def _sync(self) -> None:
        """Fold the emulator's dirty rows into row versions and pending repaints."""
        self._view.scroll = self._repaint.sync(self._emulator.screen, self._view.scroll)

    def _flush(self) -> None:
        """Timer (~30 fps), or a feed after a quiet frame: repaint only the rows that changed."""
        self._last_flush = time.monotonic()
        self._sync()
        repaint = self._repaint.take(self.rows, self._view.scroll, time.monotonic())
        if repaint == "all":
            self.refresh()
        elif repaint:
            width = self.size.width
            self.refresh(*(Region(0, y, width, height) for y, height in repaint))
