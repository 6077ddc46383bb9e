"""Screen + parser in one object: what the terminal widget holds."""

from __future__ import annotations

from tui.vt.limits import BRACKETED_PASTE, DECCKM, DEFAULT_SCROLLBACK
from tui.vt.parser import TerminalParser
from tui.vt.screen import TerminalScreen


class TerminalEmulator:
    """Screen + parser: feed bytes, read ``screen`` / ``screen.history``."""

    def __init__(self, columns: int = 80, lines: int = 24, scrollback: int = DEFAULT_SCROLLBACK):
        self.screen = TerminalScreen(columns, lines, scrollback)
        self.parser = TerminalParser(self.screen)

    def feed(self, data: bytes) -> None:
        try:
            self.parser.feed(data)
        except Exception:
            # Defence in depth: a bug must cost at most the rest of this chunk, never the
            # console. Back to a clean parser state; the screen keeps what it has.
            self.parser.reset_state()

    def resize(self, columns: int, lines: int) -> None:
        self.screen.resize(lines, columns)

    def take_responses(self) -> bytes:
        """Replies the guest asked for (DA, DSR), to be sent back as input."""
        screen = self.screen
        if not screen.responses:
            return b""
        data = "".join(screen.responses).encode()
        screen.responses.clear()
        return data

    @property
    def application_cursor(self) -> bool:
        return DECCKM in self.screen.mode

    @property
    def bracketed_paste(self) -> bool:
        return BRACKETED_PASTE in self.screen.mode
