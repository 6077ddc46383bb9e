"""Bounds on everything a guest controls, and the mode numbers the widget asks about.

A hostile guest must not be able to make the emulator allocate or loop without bound: every
buffer, count and number the parser or the screen keeps is clamped to one of these.
"""

MAX_PARAM = 9999  # VT220 clamps parameters to 9999 too
MAX_PARAMS = 32  # xterm keeps at most 30
MAX_CSI_LEN = 128  # longer control sequences are consumed and ignored
MAX_OSC_LEN = 1024  # OSC payload we keep (titles); the rest of the string is discarded unseen
MAX_TITLE_LEN = 256
MAX_CELL_LEN = 8  # combining characters piled onto one cell (zalgo floods)
MAX_RESPONSES = 16  # DA/DSR replies queued per feed; a flood of requests gets no more
MAX_CHAR_CACHES = 256  # distinct attribute sets with an interned Char table
MAX_SGR_CACHE = 4096  # (attributes, SGR sequence) -> attributes

DEFAULT_SCROLLBACK = 5000

# Private mode numbers (pyte stores private modes shifted left by 5).
DECCKM = 1 << 5  # application cursor keys
BRACKETED_PASTE = 2004 << 5
ALT_SCREEN_MODES = (47, 1047, 1049)
