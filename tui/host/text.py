"""The one sanitiser for text from outside (state dirs, runners, systemd, QMP, nix, guests).

Every string that came from outside passes :func:`sanitise` before it reaches a terminal: the
`list` command's output (text and JSON), every widget (through ``tui.widgets.outside``) and the
text the terminal emulator hands out (a guest's title). A string is shown as it is when every
character is printable; otherwise each character that is not is replaced by a visible
placeholder of one cell:

* C0 controls (ESC, BEL, BS, ...) by their control picture (``␛``, ``␇``, ``␈``), DEL by ``␡``;
* everything else Python does not call printable by ``?``: C1 controls (``\\x9b`` is CSI to
  many terminals), bidi controls and isolates (U+202A-202E, U+2066-2069, U+200E/F, U+061C:
  they reorder what the admin reads, "Trojan Source" style), the other format characters (Cf),
  lone surrogates (bytes that were not UTF-8, kept by ``surrogateescape``), private-use and
  unassigned code points, line and paragraph separators;
* spaces other than U+0020 (no-break, ideographic, ...) by a plain space.

One character in, one character out, so a length bound and column widths stay honest.
"""

from __future__ import annotations

import unicodedata

# C0 -> control pictures; DEL -> its picture. A visible mark says "a control was here".
_PICTURES = {c: chr(0x2400 + c) for c in range(0x20)}
_PICTURES[0x7F] = "\u2421"
ELLIPSIS = "…"


def _placeholder(ch: str) -> str:
    code = ord(ch)
    picture = _PICTURES.get(code)
    if picture is not None:
        return picture
    if unicodedata.category(ch) == "Zs":
        return " "
    return "?"


def sanitise(text: object, limit: int | None = None, *, newlines: bool = False) -> str:
    """TEXT (``str()`` of it) with every character that is not printable replaced.

    LIMIT: at most that many characters, the last one an ellipsis when cut. NEWLINES: keep
    ``\\n`` (multi-line text such as a dialog body or a log); otherwise it is shown as ``␊``.
    """
    s = text if isinstance(text, str) else str(text)
    if limit is not None and len(s) > limit:
        s = s[: max(limit - 1, 0)] + ELLIPSIS if limit > 0 else ""
    if s.isprintable():  # the common case, at C speed
        return s
    if newlines:
        return "\n".join(_replace(part) for part in s.split("\n"))
    return _replace(s)


def _replace(s: str) -> str:
    if s.isprintable():
        return s
    return "".join(ch if ch.isprintable() else _placeholder(ch) for ch in s)


def is_clean(text: str, *, newlines: bool = False) -> bool:
    """True when :func:`sanitise` would leave TEXT as it is (tests and assertions use it)."""
    return all(part.isprintable() for part in text.split("\n")) if newlines else text.isprintable()


def sanitise_tree(value: object) -> object:
    """A copy of a JSON-shaped value (dicts, lists, scalars) with every string sanitised,
    keys included: what `list --json` prints."""
    if isinstance(value, str):
        return sanitise(value)
    if isinstance(value, dict):
        return {sanitise(k): sanitise_tree(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitise_tree(v) for v in value]
    return value
