"""The serial-console terminal pane: the widget (``widget``), key encoding (``keys``) and
drawing of style runs to Strips (``render``). The emulation itself is :mod:`tui.vt`."""

from tui.widgets.terminal.widget import TerminalWidget

__all__ = ["TerminalWidget"]
