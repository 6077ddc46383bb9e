"""Snapshots of the serial-console widget fed from recorded byte streams.

SVGs live in the top-level ``snapshots/test_terminal_snapshots/`` (see tests/snapshot_support.py).
Refresh with ``pytest tests/test_terminal_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from pathlib import Path

from textual.app import App, ComposeResult
from textual.pilot import Pilot

from tests.snapshot_support import snapshots_in_top_level_folder  # noqa: F401
from tui.widgets.terminal import TerminalWidget

CONSOLE = Path(__file__).parent / "fixtures" / "console"


class ConsoleApp(App[None]):
    """A screen-filling terminal, as the console screen will show it."""

    AUTO_FOCUS = None  # focus is part of what each snapshot shows: set it explicitly

    def __init__(self, terminal: TerminalWidget, stream: str, focus: bool) -> None:
        super().__init__()
        self.terminal = terminal
        self.stream = (CONSOLE / stream).read_bytes()
        self.focus_terminal = focus

    def compose(self) -> ComposeResult:
        yield self.terminal

    def on_mount(self) -> None:
        # Fed in small chunks, like a socket reader would, to exercise split sequences.
        for start in range(0, len(self.stream), 7):
            self.terminal.feed(self.stream[start : start + 7])
        if self.focus_terminal:
            self.terminal.focus()


async def settle(pilot: Pilot[None]) -> None:
    await pilot.pause()


def test_attached_with_colours_and_prompt(snap_compare) -> None:
    """Boot log with 16/256/truecolor, bold/underline/italic/reverse, DEC box, CJK, prompt +
    cursor; the guest's OSC 0 titles must not show anywhere."""
    terminal = TerminalWidget(status="connected to /var/lib/microvms/vm-a/console.sock")
    assert snap_compare(ConsoleApp(terminal, "attached.bin", focus=True), run_before=settle)


def test_read_only_with_reason(snap_compare) -> None:
    """Read-only: the hint bar says so, with the owner's reason."""
    terminal = TerminalWidget(
        read_only=True, read_only_reason="vm-b is attached by another session (pid 4242)"
    )
    assert snap_compare(ConsoleApp(terminal, "read_only.bin", focus=True), run_before=settle)


def test_detached_with_hint(snap_compare) -> None:
    """Not focused (no cursor), guest gone: last output stays, the hint bar still shows."""
    terminal = TerminalWidget(status="detached: vm-c powered off")
    assert snap_compare(ConsoleApp(terminal, "detached.bin", focus=False), run_before=settle)
