"""The serial-console terminal pane: the widget (``widget``) wiring the pieces below to
Textual's events; key encoding (``keys``); drawing of style runs to Strips (``render``); the
hint bar (``hint``); which rows to repaint (``repaint``); the view's place in the scrollback
(``viewport``); scrollback search (``search``); the mouse selection (``selection``) and the
mouse handlers that make and copy it (``mouse``); the pane's CSS (``styles``). The emulation
itself is :mod:`tui.vt`."""

from tui.widgets.terminal.widget import TerminalWidget

__all__ = ["TerminalWidget"]
